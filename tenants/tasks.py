"""Thin Celery wrappers: each tenant operation kind is one of the provisioning sagas."""

from __future__ import annotations

from typing import Any

from inferencemgmt.operations.execution import OperationRun, operation_task
from tenants import provisioning


@operation_task("tenants.provision")
def provision_tenant(run: OperationRun) -> dict[str, Any]:
    """Create a tenant's namespace, bucket, secrets, quota, RBAC and network policy, or nothing."""
    return provisioning.provision(run)


@operation_task("tenants.delete")
def delete_tenant(run: OperationRun) -> dict[str, Any]:
    """Delete a tenant's endpoints, namespace, uploads, objects and bucket."""
    return provisioning.deprovision(run)
