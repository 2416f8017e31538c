"""Real Celery workers (subprocesses) on the platform's Redis, sharing the test database.

The worker kill test is the point of late acknowledgement plus the Operation row: a worker killed
mid-task loses nothing, and the new worker finishes the work exactly once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from inferencemgmt.celery import app as celery_app
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.tasks import canary
from tests.conftest import WorkerPool, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 4
STALE_SECONDS = 2


@pytest.fixture
def queue() -> str:
    """A queue of our own, so no other worker on the same Redis takes our messages."""
    return f"imm-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_worker(devstack_env: dict[str, str], queue: str, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Starts named workers on our own queue of the platform's Redis; all are stopped afterwards."""
    env = worker_env(
        devstack_env,
        devstack_env["REDIS_URL"],
        IMM_CELERY_VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY_TIMEOUT),
        IMM_OPERATION_STALE_SECONDS=str(STALE_SECONDS),
    )
    pool = WorkerPool(env, tmp_path)
    yield lambda name: pool.start(name, "-Q", queue)
    pool.stop_all()
    pool.print_logs()


def _enqueue(devstack_env: dict[str, str], queue: str, params: dict[str, Any]) -> Operation:
    """What operation_create does, sent to our queue on the platform's Redis."""
    operation = Operation.objects.create(
        kind=canary.name,
        target="canary",
        params=params,
        requested_by="alice@example.com",
        requested_identity={"username": "alice@example.com", "groups": ["team-a"]},
        celery_task_id=str(uuid.uuid4()),
    )
    with celery_app.connection_for_write(devstack_env["REDIS_URL"]) as broker:
        canary.apply_async(args=[str(operation.pk)], task_id=operation.celery_task_id, queue=queue, connection=broker)
    return operation


def _wait_for(operation: Operation, condition: Callable[[Operation], bool], seconds: float) -> Operation:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if condition(operation):
            return operation
        time.sleep(0.2)
    raise AssertionError(f"timed out; operation is {operation.state} with steps {operation.steps}")


def test_a_real_worker_runs_an_operation(devstack_env, queue, start_worker):
    start_worker("solo")
    operation = _enqueue(devstack_env, queue, {"steps": 2, "step_seconds": 0.2})
    operation = _wait_for(operation, lambda op: op.is_final, 60)
    assert operation.state == Operation.State.SUCCEEDED
    assert [step["state"] for step in operation.steps] == ["done", "done"]
    assert operation.attempts == 1
    assert operation.progress == 100


def test_a_worker_killed_mid_task_loses_nothing_and_the_work_runs_once(devstack_env, queue, start_worker):
    counter_key = f"imm-test-completions-{uuid.uuid4().hex}"
    first = start_worker("first")
    operation = _enqueue(devstack_env, queue, {"steps": 5, "step_seconds": 1.0, "counter_key": counter_key})
    operation = _wait_for(operation, lambda op: any(s["name"] == "step-2" for s in op.steps), 60)
    assert operation.state == Operation.State.RUNNING
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker, as when its node dies
    first.wait()
    assert operation.started_at is not None

    # Redis hands an unacknowledged message out again once its visibility timeout has passed.
    time.sleep(VISIBILITY_TIMEOUT + 1)
    start_worker("second")
    operation = _wait_for(operation, lambda op: op.is_final, 120)

    assert operation.state == Operation.State.SUCCEEDED
    assert operation.attempts == 2
    assert [step["name"] for step in operation.steps] == [f"step-{i}" for i in range(1, 6)] + ["record"]
    assert all(step["state"] == "done" for step in operation.steps)
    completions = redis.Redis.from_url(devstack_env["REDIS_URL"])
    try:
        assert completions.get(counter_key) == b"1"
    finally:
        completions.delete(counter_key)
    assert operation.result == {"steps": 5, "completions": 1}
