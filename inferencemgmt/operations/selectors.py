"""Reads of operations, scoped to what the caller may see."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound
from inferencemgmt.operations.models import Operation


def operations_visible_to(identity: Identity) -> QuerySet[Operation]:
    """A user sees the operations they requested; platform admins see all."""
    operations = Operation.objects.all()
    if not identity.is_admin:
        operations = operations.filter(requested_by=identity.username)
    return operations


def operation_get(identity: Identity, operation_id: str) -> Operation:
    """404 for someone else's operation too: its existence is not the caller's business."""
    try:
        key = uuid.UUID(operation_id)
    except ValueError:
        raise NotFound(description=f"Task {operation_id} does not exist") from None
    operation = operations_visible_to(identity).filter(pk=key).first()
    if operation is None:
        raise NotFound(description=f"Task {operation_id} does not exist")
    return operation


def operation_states(operation_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The current state of each operation (any requester): for the audit trail's outcomes."""
    return dict(Operation.objects.filter(pk__in=operation_ids).values_list("pk", "state"))
