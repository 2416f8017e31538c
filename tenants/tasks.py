"""Thin Celery wrappers: each tenant operation kind is one of the provisioning sagas."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from inferencemgmt.celery import app
from inferencemgmt.operations.execution import OperationRun, operation_task
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import operation_create
from tenants import provisioning, rotation

logger = logging.getLogger(__name__)


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


def rotations_start_due(now: datetime | None = None) -> list[Operation]:
    """Start a rotation, as the platform's rotation identity, for every tenant whose key is older than
    IMM_STORE_KEY_ROTATION_DAYS (tenants.rotation.tenants_due_now)."""
    identity = rotation.rotation_identity()
    started = []
    for name in rotation.tenants_due_now(now or datetime.now(UTC)):
        started.append(operation_create(task=rotate_credentials, target=name, identity=identity, params={"name": name}))
        logger.info(
            "tenant %s: store key older than %s days; rotation started", name, settings.IMM_STORE_KEY_ROTATION_DAYS
        )
    return started


@app.task(name="tenants.rotate_old_credentials", ignore_result=True)  # type: ignore[untyped-decorator]
def rotate_old_credentials() -> int:
    """Periodic (Celery beat): start a rotation for every tenant whose key is older than
    IMM_STORE_KEY_ROTATION_DAYS (0: never); returns how many were started."""
    return len(rotations_start_due())
