"""Operations on tenants, named <entity>_<verb> and taking an Identity.

Will hold: tenant_create / tenant_delete / tenant_update as provisioning sagas (idempotent create-
or-verify steps, compensation on failure), run as Operations.
"""
