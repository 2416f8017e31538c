"""Thin Celery wrappers: each tenant operation kind is one of the provisioning sagas."""

from __future__ import annotations

from typing import Any

from inferencemgmt.celery import app
from inferencemgmt.operations.execution import OperationRun, operation_task
from tenants import provisioning, rotation


@operation_task("tenants.provision")
def provision_tenant(run: OperationRun) -> dict[str, Any]:
    """Create a tenant's namespace, bucket, secrets, quota, RBAC and network policy, or nothing."""
    return provisioning.provision(run)


@operation_task("tenants.delete")
def delete_tenant(run: OperationRun) -> dict[str, Any]:
    """Delete a tenant's endpoints, namespace, uploads, objects and bucket."""
    return provisioning.deprovision(run)


@operation_task(rotation.KIND)
def rotate_credentials(run: OperationRun) -> dict[str, Any]:
    """Issue the tenant a new store key, roll its endpoints onto it, then revoke the old one."""
    return rotation.rotate(run)


@app.task(name="tenants.rotate_old_credentials", ignore_result=True)  # type: ignore[untyped-decorator]
def rotate_old_credentials() -> int:
    """Periodic (Celery beat): start a rotation for every tenant whose key is older than
    IMM_STORE_KEY_ROTATION_DAYS (0: never); returns how many were started."""
    from tenants import services  # services sends this module's tasks

    return len(services.tenant_credentials_rotate_due())
