"""Writing the audit trail: one record per audited request, its outcome once its task ends, and the
retention purge. Nothing else writes audit records (``models.AuditRecord`` refuses updates)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils import timezone

from audit.models import AuditRecord
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.selectors import operation_states
from inferencemgmt.operations.services import operation_finished

logger = logging.getLogger(__name__)
Outcome = AuditRecord.Outcome
_FINAL = {state.value: state.value for state in Operation.FINAL_STATES}


@dataclass(frozen=True)
class AuditEntry:
    """What the middleware learned about one audited request."""

    time: datetime
    username: str
    groups: tuple[str, ...]
    robot: bool
    action: str
    tenant: str
    target: str
    method: str
    route: str
    status_code: int
    error: str
    operation_ids: tuple[uuid.UUID, ...]
    request_id: str
    client_address: str


def _bounded(text: str, limit: int) -> str:
    """Printable and short: names come from paths and bodies, which the caller chose."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def outcome_of(status_code: int, failed: bool) -> str:
    """A 202 waits for its task; any other 2xx/3xx succeeded unless the page reported an error."""
    if status_code >= 400 or failed:
        return Outcome.FAILED
    if status_code == 202:
        return Outcome.PENDING
    return Outcome.SUCCEEDED


def audit_record(entry: AuditEntry) -> AuditRecord | None:
    """Store one record; a database failure is logged, never turned into the request's failure
    (the action already happened: failing its answer would only hide that it did)."""
    operation_id = entry.operation_ids[0] if entry.operation_ids else None
    outcome = outcome_of(entry.status_code, bool(entry.error))
    try:
        record = AuditRecord(
            time=entry.time,
            username=_bounded(entry.username, 255),
            groups=[_bounded(group, 255) for group in entry.groups[:100]],
            robot=entry.robot,
            action=entry.action,
            tenant=_bounded(entry.tenant, 63),
            target=_bounded(entry.target, 255),
            method=entry.method,
            route=entry.route,
            status_code=entry.status_code,
            outcome=outcome,
            error=_bounded(entry.error, 300),
            operation_id=operation_id,
            request_id=entry.request_id,
            client_address=entry.client_address,
        )
        record.save()
        if outcome == Outcome.PENDING and operation_id is not None:
            # The task may have ended before the record existed (its signal then found nothing).
            state = operation_states([operation_id]).get(operation_id)
            if state in _FINAL:
                audit_outcome_settle(operation_id, state)
        return record
    except DatabaseError:
        logger.exception("Audit record for %s %s could not be stored", entry.action, entry.target)
        return None


def audit_outcome_settle(operation_id: uuid.UUID, state: str) -> int:
    """The one update a record takes: PENDING -> the final state of the task its request started."""
    if state not in _FINAL:
        return 0
    return AuditRecord.objects.filter(operation_id=operation_id, outcome=Outcome.PENDING).update(outcome=state)


@receiver(operation_finished)
def _operation_finished(sender: Any, *, operation_id: uuid.UUID, state: str, **kwargs: Any) -> None:
    try:
        audit_outcome_settle(operation_id, state)
    except DatabaseError:
        logger.exception("Audit outcome of operation %s could not be stored", operation_id)


def audit_settle_pending() -> int:
    """Settle records whose task ended without the signal reaching us (a worker killed between the
    two writes): the purge task runs it as a backstop."""
    pending = [
        operation_id
        for operation_id in AuditRecord.objects.filter(outcome=Outcome.PENDING, operation_id__isnull=False)
        .values_list("operation_id", flat=True)
        .distinct()[:1000]
        if operation_id is not None
    ]
    settled = 0
    for operation_id, state in operation_states(pending).items():
        settled += audit_outcome_settle(operation_id, state)
    return settled


def audit_purge(now: datetime | None = None) -> int:
    """Delete records older than ``IMM_AUDIT_RETENTION_DAYS``; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.IMM_AUDIT_RETENTION_DAYS)
    deleted, _ = AuditRecord.objects.filter(time__lt=cutoff).delete()
    if deleted:
        logger.info("Audit purge: %d records older than %s removed", deleted, cutoff.isoformat())
    return deleted
