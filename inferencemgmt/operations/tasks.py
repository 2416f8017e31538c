"""Operation kinds owned by the operations app itself."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings

from inferencemgmt.celery import app
from inferencemgmt.operations.execution import OperationRun, operation_task
from inferencemgmt.operations.services import operations_requeue_stalled


@app.task(name="operations.requeue_stalled", ignore_result=True)  # type: ignore[untyped-decorator]
def requeue_stalled() -> int:
    """Periodic (Celery beat): wake the operations whose task message the broker lost."""
    return len(operations_requeue_stalled(timedelta(seconds=settings.IMM_OPERATION_REQUEUE_AFTER_SECONDS)))


@operation_task("operations.canary")
def canary(run: OperationRun) -> dict[str, Any]:
    """A harmless operation that exercises the worker pool end to end.

    Operators use it to check that workers pick up, report progress and finish work; the tests
    use it to kill a worker half-way. ``params``: ``steps`` (count), ``step_seconds`` (sleep per
    step) and optionally ``counter_key``, a Redis key incremented once when the work completes.
    """
    params = run.params
    steps = int(params.get("steps", 3))
    pause = float(params.get("step_seconds", 0.1))
    for index in range(steps):
        name = f"step-{index + 1}"
        if run.completed(name):
            continue
        with run.step(name, total=10) as progress:
            for _ in range(10):
                time.sleep(pause / 10)
                progress.advance()
    counter_key = params.get("counter_key")
    completions = None
    if counter_key and not run.completed("record"):
        with run.step("record"):
            completions = redis.Redis.from_url(settings.REDIS_URL).incr(str(counter_key))
    return {"steps": steps, "completions": completions}
