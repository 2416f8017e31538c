"""Running an operation: claim it, report progress, finish it, exactly once.

Celery runs our tasks with late acknowledgement, so a worker that dies mid-task leaves its message to
be delivered again. Re-entry is therefore normal, and the Operation row decides what to do:

* already SUCCEEDED / FAILED / ROLLED_BACK: nothing (the work is done);
* PENDING: claim it (compare-and-set PENDING -> RUNNING) and run;
* RUNNING with a stale heartbeat: its worker died; take it over (compare-and-set on the heartbeat)
  and run again, skipping steps recorded as done (every step is idempotent anyway);
* RUNNING with a fresh heartbeat: a duplicate delivery while the first run is alive; come back later
  in case that run dies, but never run twice at the same time.

Every write of a running operation is conditioned on ``owner`` (the id of this run), so a run that was
taken over notices at its next progress write and stops.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from inferencemgmt import metrics
from inferencemgmt.auth.identity import Identity, identity_from_record
from inferencemgmt.celery import app
from inferencemgmt.errors import ImmError
from inferencemgmt.operations import wakeup
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import detail_bounded, error_record, operation_finished, result_bounded
from inferencemgmt.requestlog import request_id_bound

logger = logging.getLogger(__name__)
State = Operation.State


class OperationLost(Exception):
    """Another run took this operation over (ours was presumed dead); stop quietly."""


class OperationRolledBack(Exception):
    """Raised by a body after it undid its completed steps; the operation ends ROLLED_BACK."""

    def __init__(self, error: ImmError) -> None:
        self.error = error
        super().__init__(str(error))


class StepProgress:
    def __init__(self, run: OperationRun, record: dict[str, Any]) -> None:
        self._run = run
        self._record = record

    def advance(self, amount: int = 1) -> None:
        self._record["done"] = self._record.get("done", 0) + amount
        self._run.save_steps()

    def set_total(self, total: int) -> None:
        self._record["total"] = total
        self._run.save_steps()

    def note(self, **values: Any) -> None:
        """Record values a resumed run needs (never a secret: steps are shown by `GET /tasks`), at once.

        A run killed right after an irreversible act (an access key issued) must find out what it did;
        the note is written before the step goes on, so the next run reads it with ``noted``.
        """
        self._record.setdefault("notes", {}).update(values)
        self._run.save_steps(force=True)


class OperationRun:
    """What an operation body gets: who to act as, its params, and progress reporting."""

    def __init__(self, operation: Operation, run_id: str) -> None:
        self.operation = operation
        self.run_id = run_id
        self.steps: list[dict[str, Any]] = list(operation.steps or [])
        self._last_write = 0.0

    @property
    def identity(self) -> Identity:
        return identity_from_record(self.operation.requested_identity)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.operation.params or {})

    def completed(self, name: str) -> bool:
        """True when an earlier (killed) run already finished this step."""
        return any(s["name"] == name and s.get("state") == "done" for s in self.steps)

    def noted(self, name: str) -> dict[str, Any]:
        """What an earlier run of this operation noted in step ``name`` (empty when nothing)."""
        record = next((s for s in self.steps if s["name"] == name), None)
        return dict((record or {}).get("notes") or {})

    def save_steps(self, *, force: bool = False) -> None:
        """Write progress, at most every IMM_OPERATION_PROGRESS_INTERVAL_SECONDS unless forced.

        The write doubles as the heartbeat and as the ownership check.
        """
        now = time.monotonic()
        if not force and now - self._last_write < settings.IMM_OPERATION_PROGRESS_INTERVAL_SECONDS:
            return
        updated = Operation.objects.filter(pk=self.operation.pk, state=State.RUNNING, owner=self.run_id).update(
            steps=self.steps, heartbeat_at=timezone.now()
        )
        if updated != 1:
            raise OperationLost(str(self.operation.pk))
        self._last_write = now

    def heartbeat(self) -> None:
        self.save_steps()

    @contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[StepProgress]:
        record = next((s for s in self.steps if s["name"] == name), None)
        if record is None:
            record = {"name": name}
            self.steps.append(record)
        record.update(state="running", done=0, total=total)
        self.save_steps(force=True)
        try:
            yield StepProgress(self, record)
        except OperationLost:
            raise
        except BaseException:
            record["state"] = "failed"
            with suppress(OperationLost):
                self.save_steps(force=True)
            raise
        record["state"] = "done"
        if total is not None:
            record["done"] = total
        self.save_steps(force=True)


OperationBody = Callable[[OperationRun], Any]


def _claim(task: Task, operation_id: str, run_id: str) -> Operation | None:
    """Compare-and-set ourselves into the operation, or decide there is nothing to do."""
    operation = Operation.objects.filter(pk=operation_id).first()
    if operation is None:
        logger.error("Operation %s does not exist; dropping the message", operation_id)
        return None
    if operation.is_final:
        logger.info("Operation %s is already %s; nothing to do", operation_id, operation.state)
        return None
    now = timezone.now()
    claim = {"owner": run_id, "heartbeat_at": now, "attempts": F("attempts") + 1}
    if Operation.objects.filter(pk=operation_id, state=State.PENDING).update(
        state=State.RUNNING, started_at=Coalesce("started_at", Value(now)), **claim
    ):
        logger.info("Operation %s started (%s)", operation_id, operation.kind)
        # Queued at creation, or handed back for a retry (heartbeat_at then says when).
        queued_at = operation.heartbeat_at if operation.attempts and operation.heartbeat_at else operation.created_at
        metrics.OPERATION_QUEUE_WAIT.labels(operation.kind).observe(max(0.0, (now - queued_at).total_seconds()))
    else:
        stale = timedelta(seconds=settings.IMM_OPERATION_STALE_SECONDS)
        if not Operation.objects.filter(pk=operation_id, state=State.RUNNING, heartbeat_at__lt=now - stale).update(
            **claim
        ):
            refreshed = Operation.objects.filter(pk=operation_id).first()
            if refreshed is None or refreshed.is_final:
                return None
            logger.info("Operation %s is running elsewhere; checking again later", operation_id)
            raise task.retry(countdown=settings.IMM_OPERATION_STALE_SECONDS, max_retries=None)
        logger.warning("Operation %s: previous run stopped heart-beating; taking over", operation_id)
    return Operation.objects.get(pk=operation_id)


def _finish(run: OperationRun, state: str, **fields: Any) -> None:
    """Record the outcome; result and operator detail pass the size bounds of ``services``."""
    if "result" in fields:
        fields["result"] = result_bounded(fields["result"])
    if "error_detail" in fields:
        fields["error_detail"] = detail_bounded(fields["error_detail"])
    updated = Operation.objects.filter(pk=run.operation.pk, state=State.RUNNING, owner=run.run_id).update(
        state=state, steps=run.steps, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
    )
    if updated == 1:
        logger.info("Operation %s %s", run.operation.pk, state)
        operation_id = run.operation.pk
        transaction.on_commit(lambda: wakeup.announce_end(operation_id))
        # Only the run whose compare-and-set recorded the outcome counts it: once per operation.
        started = run.operation.started_at or run.operation.created_at
        metrics.OPERATIONS.labels(run.operation.kind, state).inc()
        metrics.OPERATION_DURATION.labels(run.operation.kind).observe(
            max(0.0, (timezone.now() - started).total_seconds())
        )
        operation_finished.send(Operation, operation_id=run.operation.pk, state=state)
    else:
        logger.warning("Operation %s was taken over before it could be marked %s", run.operation.pk, state)


def retry_countdown(attempts: int) -> float:
    """Exponential backoff (2, 4, 8 ... s) capped, so an operation notices a returned part soon."""
    return float(min(settings.IMM_OPERATION_RETRY_MAX_SECONDS, 2**attempts))


def execute_operation(task: Task, operation_id: str, body: OperationBody) -> None:
    """What every operation task runs: claim, run the body, record the outcome (CAS throughout)."""
    run_id = uuid.uuid4().hex
    operation = _claim(task, operation_id, run_id)
    if operation is None:
        return
    run = OperationRun(operation, run_id)
    try:
        result = body(run)
    except OperationLost:
        logger.warning("Operation %s was taken over by another run; stopping", operation_id)
    except OperationRolledBack as exc:
        _finish(run, State.ROLLED_BACK, error=error_record(exc.error))
    except ImmError as exc:
        if exc.retryable and operation.attempts < settings.IMM_OPERATION_MAX_ATTEMPTS:
            # Hand it back as PENDING so the retried message can claim it normally.
            # heartbeat_at then says when it was handed back (the requeue task's clock).
            if Operation.objects.filter(pk=operation_id, state=State.RUNNING, owner=run_id).update(
                state=State.PENDING, steps=run.steps, owner="", heartbeat_at=timezone.now()
            ):
                countdown = retry_countdown(operation.attempts)
                metrics.OPERATION_RETRIES.labels(operation.kind).inc()
                logger.warning("Operation %s hit %s; retrying in %.1fs", operation_id, exc.code, countdown)
                raise task.retry(countdown=countdown, max_retries=None) from None
            return
        _finish(run, State.FAILED, error=error_record(exc), error_detail=str(exc))
    except Exception as exc:
        logger.exception("Operation %s failed with an unexpected error", operation_id)
        _finish(
            run,
            State.FAILED,
            error=error_record(
                ImmError(description=f"The operation stopped on an internal error ({type(exc).__name__}).")
            ),
            error_detail=f"{type(exc).__name__}: {exc}",
        )
    else:
        _finish(run, State.SUCCEEDED, result=result)


class OperationTask(Task):  # type: ignore[misc]
    """Late acknowledgement: a message is removed only after the task returned or failed for good."""

    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


def operation_task(name: str) -> Callable[[OperationBody], Task]:
    """Declare the body of an operation kind; the Celery task takes only the operation id."""

    def decorate(body: OperationBody) -> Task:
        @app.task(name=name, bind=True, base=OperationTask)  # type: ignore[untyped-decorator]
        def run(self: Task, operation_id: str) -> None:
            with request_id_bound(f"op-{operation_id}"):
                execute_operation(self, operation_id, body)

        run.__doc__ = body.__doc__
        return run

    return decorate
