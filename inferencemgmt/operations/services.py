"""Creating operations, changing their state (compare-and-set only), and waiting for them."""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from kombu.exceptions import OperationalError

from inferencemgmt.auth.identity import Identity
from inferencemgmt.celery import app
from inferencemgmt.errors import REDIS, ImmError, UpstreamUnavailable
from inferencemgmt.operations import wakeup
from inferencemgmt.operations.models import Operation

logger = logging.getLogger(__name__)
State = Operation.State


#: Sent once when an operation reaches a final state (``sender`` is Operation; ``operation_id`` and
#: ``state`` as keywords). Other apps (the audit trail) learn the end of a task without polling.
operation_finished = Signal()

# The operations created while a block of ``operations_collected`` runs (one request, in practice).
_collected: contextvars.ContextVar[list[uuid.UUID] | None] = contextvars.ContextVar(
    "imm_operations_collected", default=None
)


@contextmanager
def operations_collected() -> Iterator[list[uuid.UUID]]:
    """Collect the ids of the operations ``operation_create`` makes inside the block.

    The audit trail wraps each request in it to tie the request's record to the task it started,
    without every route having to say so.
    """
    collected: list[uuid.UUID] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def operation_transition(operation_id: uuid.UUID | str, from_state: str, to_state: str, **fields: Any) -> bool:
    """Move ``from_state`` -> ``to_state`` only if nobody moved it first; True when we did."""
    updated = Operation.objects.filter(pk=operation_id, state=from_state).update(state=to_state, **fields)
    return updated == 1


def _enqueue(task: Task, operation: Operation) -> None:
    try:
        task.apply_async(args=[str(operation.pk)], task_id=operation.celery_task_id)
    except OperationalError as exc:
        # The broker is down: say so in the row instead of leaving it PENDING for ever.
        error = UpstreamUnavailable(REDIS, "the task could not be queued")
        if operation_transition(
            operation.pk,
            State.PENDING,
            State.FAILED,
            error=error_record(error),
            error_detail=detail_bounded(f"{type(exc).__name__}: {exc}"),
            finished_at=timezone.now(),
        ):
            operation_finished.send(Operation, operation_id=operation.pk, state=State.FAILED)
        logger.error("Could not enqueue operation %s: %s", operation.pk, type(exc).__name__)


def operation_create(*, task: Task, target: str, identity: Identity, params: dict[str, Any] | None = None) -> Operation:
    """Record the operation in the caller's transaction; the task is sent only once it commits.

    Sending before the commit would let a fast worker look for a row that does not exist yet, and
    a rolled-back request would still have queued work.
    """
    operation = Operation.objects.create(
        kind=task.name,
        target=target,
        params=params or {},
        requested_by=identity.username,
        requested_identity=identity.as_record(),
        celery_task_id=str(uuid.uuid4()),
    )
    collected = _collected.get()
    if collected is not None:
        collected.append(operation.pk)
    transaction.on_commit(lambda: _enqueue(task, operation))
    return operation


# --- what an operation stores ------------------------------------------------------------------------
# A result or an error is written once and then shown by every `GET /tasks` (up to 200 rows) and by
# the waiting request, so its size must not be decided by input: a hostile archive once made one
# result 20 MB. Each operation kind summarises its own result (counts and the first few names); these
# bounds are the floor under all of them.
SHOWN_ITEMS = 10
SHOWN_CHARACTERS = 256
SHOWN_DICT_KEYS = 50
ERROR_DESCRIPTION_MAX = 1024
ERROR_DETAIL_MAX = 8192


def text_shortened(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _larger_than(value: Any, limit: int) -> bool:
    """Whether ``value`` as JSON exceeds ``limit`` bytes.

    A hostile result can be a gigabyte of repeated strings, and serialising it just to measure it
    is the harm; so a walk first sums a lower bound (one byte per character) and stops as soon as
    that passes the limit. Only a value whose lower bound is within the limit, and which is
    therefore small, is serialised to be measured exactly.
    """
    least, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            least += len(item) + 2
        elif isinstance(item, dict):
            least += 1 + 2 * len(item)
            pending.extend(str(key) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            least += 1 + len(item)
            pending.extend(item)
        else:
            least += 1
        if least > limit:
            return True
    return len(json.dumps(value, default=str, ensure_ascii=False).encode()) > limit


def _shortened(value: Any) -> Any:
    if isinstance(value, str):
        return text_shortened(value)
    if isinstance(value, list | tuple):
        return [_shortened(item) for item in value[:SHOWN_ITEMS]]
    if isinstance(value, dict):
        return {text_shortened(str(key)): _shortened(item) for key, item in list(value.items())[:SHOWN_DICT_KEYS]}
    return value


def result_bounded(result: Any) -> Any:
    """The result as stored: unchanged within ``IMM_OPERATION_RESULT_MAX_BYTES``; otherwise shortened
    (strings cut, lists cut to their first items, a dict marked ``truncated``) or, when even that is
    too large, only ``{"truncated": true, "maxBytes": <the setting>}``."""
    limit = settings.IMM_OPERATION_RESULT_MAX_BYTES
    if not _larger_than(result, limit):
        return result
    logger.warning("An operation result larger than %d bytes was shortened", limit)
    shortened = _shortened(result)
    if isinstance(shortened, dict):
        shortened["truncated"] = True
    if not _larger_than(shortened, limit):
        return shortened
    return {"truncated": True, "maxBytes": limit}


def detail_bounded(detail: str) -> str:
    """Operator-only error text (an exception's message can echo hostile input whole)."""
    return text_shortened(detail, ERROR_DETAIL_MAX)


def error_record(error: ImmError) -> dict[str, Any]:
    """The API error shape plus the HTTP status, so a waiting request can answer with it.

    The description is cut to ``ERROR_DESCRIPTION_MAX`` characters: it may quote input.
    """
    record = error.as_body()
    record["title"] = text_shortened(str(record["title"]), SHOWN_CHARACTERS)
    if "description" in record:
        record["description"] = text_shortened(str(record["description"]), ERROR_DESCRIPTION_MAX)
    record["status"] = error.status
    if error.retry_after is not None:
        record["retry_after"] = error.retry_after
    return record


def error_from_record(record: dict[str, Any] | None) -> ImmError:
    record = record or {}
    return ImmError(
        str(record.get("title", "Internal server error")),
        record.get("description"),
        code=str(record.get("code", "internal_error")),
        status=int(record.get("status", 500)),
        retry_after=record.get("retry_after"),
    )


def operation_wait(operation_id: uuid.UUID | str, timeout: float) -> Operation:
    """Wait until the operation is final or ``timeout`` passed; returns the latest row either way.

    Woken by the run that ends it (``wakeup``: a Redis message on the operation's channel, subscribed
    to before the row is read), so the answer follows the end by a message's latency rather than by
    up to a poll interval; the row is re-read every ``wakeup.RECHECK_SECONDS`` regardless. Without
    Redis it polls the row (50 ms doubling to 1 s). Must run after the creating transaction
    committed, or the task was never sent.
    """
    if connection.in_atomic_block:
        raise RuntimeError("operation_wait() inside a transaction would wait for a task never sent")
    deadline = time.monotonic() + timeout
    pause = 0.05
    with wakeup.subscribed(operation_id) as waiter:
        while True:
            operation = Operation.objects.get(pk=operation_id)
            remaining = deadline - time.monotonic()
            if operation.is_final or remaining <= 0:
                return operation
            if waiter is not None:
                waiter.wait(min(wakeup.RECHECK_SECONDS, remaining))
            else:
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, 1.0)


def operations_requeue_stalled(older_than: timedelta) -> list[str]:
    """Send the task message again for operations whose message is gone; returns their ids.

    The row is the truth and the message only a wake-up call: a broker restarted without
    persistence forgets queued and unacknowledged messages, and an operation would then wait
    PENDING (or RUNNING for a dead worker) for ever. An operation qualifies when it has been PENDING,
    or RUNNING without a heartbeat, for longer than ``older_than`` (``heartbeat_at`` is also set
    when a run hands it back for a retry). Each one is reset to PENDING by compare-and-set on the
    values just read, so a run that moved meanwhile is left alone, and a duplicate message is
    harmless: runs claim the row by compare-and-set too.
    """
    cutoff = timezone.now() - older_than
    stalled = Operation.objects.filter(
        Q(state=State.PENDING, heartbeat_at__lt=cutoff)
        | Q(state=State.PENDING, heartbeat_at__isnull=True, created_at__lt=cutoff)
        | Q(state=State.RUNNING, heartbeat_at__lt=cutoff)
    ).values_list("pk", "kind", "state", "heartbeat_at", "celery_task_id")
    requeued: list[str] = []
    for pk, kind, state, heartbeat, task_id in stalled:
        unchanged: dict[str, Any] = (
            {"heartbeat_at": heartbeat} if heartbeat is not None else {"heartbeat_at__isnull": True}
        )
        if not Operation.objects.filter(pk=pk, state=state, **unchanged).update(
            state=State.PENDING, owner="", heartbeat_at=timezone.now()
        ):
            continue
        try:
            app.send_task(kind, args=[str(pk)], task_id=task_id or None)
        except OperationalError as exc:
            logger.error("Could not requeue operation %s (%s); trying again later", pk, type(exc).__name__)
            break
        logger.warning("Operation %s (%s) was %s with no sign of life; its task was sent again", pk, kind, state)
        requeued.append(str(pk))
    return requeued
