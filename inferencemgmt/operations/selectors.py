"""Reads of operations, scoped to what the caller may see."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q, QuerySet

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound
from inferencemgmt.operations.models import Operation
from inferencemgmt.paging import PageRequest, invalid_continue


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


def operation_page(operations: QuerySet[Operation], page: PageRequest) -> tuple[list[Operation], str | None]:
    """One page, newest first, and the next page's token: a keyset cursor on ``(created_at, id)``.

    The position is the last row given (its time and id), so a page is one indexed range read
    whatever the number of operations, and rows created meanwhile never shift later pages (an
    offset would repeat or skip rows).
    """
    ordered = operations.order_by("-created_at", "-id")
    position = page.position or {}
    if position:
        try:
            created = datetime.fromisoformat(str(position["t"]))
            after = uuid.UUID(str(position["i"]))
        except (KeyError, ValueError):
            raise invalid_continue("The continue token names no position.") from None
        ordered = ordered.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=after))
    rows = list(ordered[: page.limit + 1])
    found = rows[: page.limit]
    if len(rows) <= page.limit:
        return found, None
    last = found[-1]
    return found, page.token({"t": last.created_at.isoformat(), "i": str(last.id)})


def operation_states(operation_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The current state of each operation (any requester): for the audit trail's outcomes."""
    return dict(Operation.objects.filter(pk__in=operation_ids).values_list("pk", "state"))
