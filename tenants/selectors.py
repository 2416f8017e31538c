"""Reads of tenants, scoped to what the caller may see.

Will hold: tenant_list (only what the caller may see; admins see all), tenant_get (details, quota
usage, groups).
"""
