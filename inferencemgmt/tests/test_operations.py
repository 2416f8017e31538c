"""Operations: compare-and-set transitions, outcomes of a run, re-entry, the /tasks API, answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError
from rest_framework.test import APIRequestFactory

from inferencemgmt.api.exceptions import exception_handler
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, ImmError, UpstreamUnavailable
from inferencemgmt.operations.api.answers import answer_operation, prefers_async
from inferencemgmt.operations.execution import OperationRolledBack, execute_operation
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import operation_create, operation_transition, operations_requeue_stalled
from inferencemgmt.operations.tasks import canary

pytestmark = [pytest.mark.unit, pytest.mark.django_db]
State = Operation.State
ALICE = Identity("alice@example.com", ("team-a",))
BOB = Identity("bob@example.com", ("team-b",))


class RetryRequested(Exception):
    def __init__(self, countdown: float) -> None:
        self.countdown = countdown


class FakeTask:
    """Stands in for the bound Celery task: only ``retry`` is used, and we want to see it."""

    name = "tests.fake"

    def retry(self, countdown: float, max_retries: int | None) -> RetryRequested:
        return RetryRequested(countdown)


def _error(operation: Operation) -> dict[str, Any]:
    assert operation.error is not None
    return dict(operation.error)


def _operation(state: str = State.PENDING, **fields) -> Operation:
    return Operation.objects.create(
        kind="tests.fake",
        target="t1",
        state=state,
        requested_by=ALICE.username,
        requested_identity=ALICE.as_record(),
        **fields,
    )


def _run_into_an_outage(operation: Operation) -> None:
    """Run the operation into a retryable error: it is handed back and Celery asked to retry."""

    def body(run):
        raise UpstreamUnavailable("kubernetes", "connection refused")

    with pytest.raises(RetryRequested):
        execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()


def test_transition_is_compare_and_set():
    operation = _operation()
    assert operation_transition(operation.pk, State.PENDING, State.RUNNING)
    assert not operation_transition(operation.pk, State.PENDING, State.FAILED)
    operation.refresh_from_db()
    assert operation.state == State.RUNNING


def test_successful_run_records_steps_result_and_attempt():
    operation = _operation()

    def body(run):
        assert run.identity.username == ALICE.username
        with run.step("one", total=2) as progress:
            progress.advance()
            progress.advance()
        return {"ok": True}

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.state == State.SUCCEEDED
    assert operation.result == {"ok": True}
    assert operation.attempts == 1
    assert operation.steps == [{"name": "one", "state": "done", "done": 2, "total": 2}]
    assert operation.progress == 100
    assert operation.started_at is not None
    assert operation.finished_at is not None


def test_a_task_that_raises_ends_failed_with_its_error():
    operation = _operation()

    def body(run):
        with run.step("create namespace"):
            raise RuntimeError("boom: the disk is on fire")

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.state == State.FAILED
    assert _error(operation)["code"] == "internal_error"
    assert _error(operation)["status"] == 500
    assert "RuntimeError" in _error(operation)["description"]
    assert "disk is on fire" not in str(operation.error)  # internals stay out of the API
    assert "disk is on fire" in operation.error_detail  # but operators see them
    assert operation.steps[0]["state"] == "failed"


def test_a_domain_error_is_recorded_with_its_status_and_code():
    operation = _operation()

    def body(run):
        raise Conflict("Tenant t1 already exists", code="tenant_exists")

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.state == State.FAILED
    assert operation.error == {"title": "Tenant t1 already exists", "code": "tenant_exists", "status": 409}


def test_rolled_back_operation():
    operation = _operation()

    def body(run):
        raise OperationRolledBack(ImmError("Provisioning failed", "bucket", code="provisioning_failed"))

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.state == State.ROLLED_BACK
    assert _error(operation)["code"] == "provisioning_failed"


def test_retryable_error_hands_the_operation_back_and_asks_celery_to_retry():
    operation = _operation()
    _run_into_an_outage(operation)
    assert operation.state == State.PENDING
    assert operation.owner == ""
    first_start = operation.started_at
    assert first_start is not None
    execute_operation(FakeTask(), str(operation.pk), lambda run: None)
    operation.refresh_from_db()
    assert (operation.state, operation.attempts, operation.started_at) == (State.SUCCEEDED, 2, first_start)


def test_retryable_error_fails_after_the_last_attempt(settings):
    settings.IMM_OPERATION_MAX_ATTEMPTS = 1
    operation = _operation()

    def body(run):
        raise UpstreamUnavailable("object store")

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.state == State.FAILED
    assert _error(operation)["code"] == "object_store_unavailable"


@pytest.mark.parametrize("state", [State.SUCCEEDED, State.FAILED, State.ROLLED_BACK])
def test_rerun_of_a_finished_operation_does_nothing(state):
    operation = _operation(state=state, attempts=1)
    calls: list[object] = []
    execute_operation(FakeTask(), str(operation.pk), calls.append)
    operation.refresh_from_db()
    assert calls == []
    assert (operation.state, operation.attempts) == (state, 1)


def test_running_operation_of_a_dead_worker_is_taken_over_skipping_done_steps(settings):
    settings.IMM_OPERATION_STALE_SECONDS = 30
    operation = _operation(
        state=State.RUNNING,
        owner="dead-run",
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(seconds=120),
        steps=[{"name": "one", "state": "done"}, {"name": "two", "state": "running", "done": 3, "total": 10}],
    )
    executed = []

    def body(run):
        for name in ("one", "two"):
            if run.completed(name):
                continue
            with run.step(name):
                executed.append(name)

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert executed == ["two"]
    assert operation.state == State.SUCCEEDED
    assert operation.attempts == 2
    assert operation.owner != "dead-run"


def test_running_operation_with_a_live_owner_is_not_run_twice(settings):
    settings.IMM_OPERATION_STALE_SECONDS = 30
    operation = _operation(state=State.RUNNING, owner="live-run", attempts=1, heartbeat_at=timezone.now())
    calls: list[object] = []
    with pytest.raises(RetryRequested) as retry:
        execute_operation(FakeTask(), str(operation.pk), calls.append)
    assert retry.value.countdown == 30
    operation.refresh_from_db()
    assert calls == []
    assert (operation.state, operation.owner, operation.attempts) == (State.RUNNING, "live-run", 1)


def test_a_run_that_was_taken_over_stops_and_does_not_overwrite_the_outcome():
    operation = _operation()

    def body(run):
        # Simulate another worker taking the operation over while this one was stalled.
        Operation.objects.filter(pk=run.operation.pk).update(owner="usurper")
        with run.step("late"):
            raise AssertionError("must not be reached")

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert (operation.state, operation.owner, operation.finished_at) == (State.RUNNING, "usurper", None)


def test_progress_writes_are_rate_limited(settings, django_assert_num_queries):
    settings.IMM_OPERATION_PROGRESS_INTERVAL_SECONDS = 3600
    operation = _operation()

    def body(run):
        with run.step("many", total=1000) as progress, django_assert_num_queries(0):
            for _ in range(1000):
                progress.advance()

    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    assert operation.steps[0] == {"name": "many", "state": "done", "done": 1000, "total": 1000}


def test_canary_task_runs_through_the_celery_wrapper():
    operation = _operation(params={"steps": 2, "step_seconds": 0})
    canary.apply(args=[str(operation.pk)])
    operation.refresh_from_db()
    assert operation.state == State.SUCCEEDED
    assert [step["name"] for step in operation.steps] == ["step-1", "step-2"]
    assert operation.result == {"steps": 2, "completions": None}


def test_operation_is_enqueued_only_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(canary, "apply_async", lambda args, task_id: sent.append((args, task_id)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        operation = operation_create(task=canary, target="t1", identity=ALICE, params={"steps": 1})
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [([str(operation.pk)], operation.celery_task_id)]
    assert operation.kind == "operations.canary"
    assert operation.requested_identity == {"username": ALICE.username, "groups": ["team-a"], "is_admin": False}


def test_broker_down_at_enqueue_fails_the_operation_naming_redis(monkeypatch, django_capture_on_commit_callbacks):
    def refuse(args, task_id):
        raise OperationalError("Error 111 connecting to redis")

    monkeypatch.setattr(canary, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        operation = operation_create(task=canary, target="t1", identity=ALICE)
    operation.refresh_from_db()
    assert operation.state == State.FAILED
    assert _error(operation)["code"] == "redis_unavailable"
    assert _error(operation)["status"] == 503


# --- /tasks -----------------------------------------------------------------------------------------
def _as(api, issuer, identity: Identity):
    api.credentials(HTTP_AUTHORIZATION=issuer.mint(email=identity.username, groups=list(identity.groups)))
    return api


def test_users_see_their_own_tasks_and_admins_see_all(api, issuer):
    mine = _operation()
    theirs = Operation.objects.create(kind="k", requested_by=BOB.username, requested_identity=BOB.as_record())
    listed = _as(api, issuer, ALICE).get("/tasks").json()["data"]["tasks"]
    assert [task["id"] for task in listed] == [str(mine.pk)]
    assert listed[0]["url"] == f"/tasks/{mine.pk}"
    admin = Identity("admin@example.com", ("admin",))
    listed = _as(api, issuer, admin).get("/tasks/").json()["data"]["tasks"]
    assert {task["id"] for task in listed} == {str(mine.pk), str(theirs.pk)}


def test_someone_elses_task_is_404(api, issuer):
    theirs = Operation.objects.create(kind="k", requested_by=BOB.username, requested_identity=BOB.as_record())
    response = _as(api, issuer, ALICE).get(f"/tasks/{theirs.pk}")
    assert response.status_code == 404
    assert response.json()["description"] == f"Task {theirs.pk} does not exist"
    assert _as(api, issuer, BOB).get(f"/tasks/{theirs.pk}/").json()["data"]["id"] == str(theirs.pk)


def test_task_list_filters_are_validated(api, issuer):
    _operation(state=State.FAILED)
    _operation()
    client = _as(api, issuer, ALICE)
    assert len(client.get("/tasks?state=FAILED").json()["data"]["tasks"]) == 1
    assert client.get("/tasks?state=BOGUS").status_code == 400
    assert client.get("/tasks?limit=0").status_code == 400
    # Issue 17, finding 6: "²".isdigit() is true and int("²") raises (a 500); an Arabic-Indic one was read as 1.
    for limit in ("%C2%B2", "%D9%A1", "+1", " 1", "1_0", "9" * 30):
        response = client.get(f"/tasks?limit={limit}")
        assert response.status_code == 400, limit
        assert response.json()["code"] == "validation_failed"
    # A NUL in a filter is a database error on PostgreSQL (a 500): refused before the query.
    for kind in ("a%00b", "a%0Ab"):
        response = client.get(f"/tasks?kind={kind}")
        assert (response.status_code, response.json()["code"]) == (400, "validation_failed")


# --- answering a request that started an operation --------------------------------------------------
def _request(prefer: str | None = None):
    from rest_framework.request import Request

    headers = {"HTTP_PREFER": prefer} if prefer else {}
    return Request(APIRequestFactory().post("/tenants", **headers))


def test_prefer_respond_async_gets_202_with_the_task_link():
    operation = _operation()
    response = answer_operation(_request("respond-async, wait=5"), operation, name="t1", done_status="CREATED")
    assert response.status_code == 202
    assert response.data == {
        "status": "ACCEPTED",
        "data": {"name": "t1", "task": {"id": str(operation.pk), "url": f"/tasks/{operation.pk}", "state": "PENDING"}},
    }
    assert response["Location"] == f"/tasks/{operation.pk}"
    assert response["Preference-Applied"] == "respond-async"


def test_prefer_parsing():
    assert prefers_async(_request("respond-async"))
    assert prefers_async(_request("wait=10, Respond-Async"))
    assert not prefers_async(_request("return=minimal"))
    assert not prefers_async(_request())


@pytest.mark.django_db(transaction=True)
def test_synchronous_answer_for_a_finished_operation():
    operation = _operation(state=State.SUCCEEDED)
    response = answer_operation(_request(), operation, name="t1", done_status="CREATED")
    assert (response.status_code, response.data) == (200, {"status": "CREATED", "data": {"name": "t1"}})


@pytest.mark.django_db(transaction=True)
def test_synchronous_answer_for_a_failed_operation_is_its_error():
    operation = _operation(state=State.FAILED, error={"title": "409 Conflict", "code": "conflict", "status": 409})
    with pytest.raises(ImmError) as raised:
        answer_operation(_request(), operation, name="t1", done_status="CREATED")
    response = exception_handler(raised.value, {})
    assert (response.status_code, response.data) == (409, {"title": "409 Conflict", "code": "conflict"})


@pytest.mark.django_db(transaction=True)
def test_synchronous_answer_gives_up_waiting_with_202(settings):
    settings.IMM_OPERATION_WAIT_SECONDS = 0.2
    operation = _operation(state=State.RUNNING)
    response = answer_operation(_request(), operation, name="t1", done_status="CREATED")
    assert response.status_code == 202
    assert response.data["data"]["task"]["state"] == "RUNNING"
    assert "Preference-Applied" not in response


def test_retry_backoff_doubles_and_is_capped(settings):
    from inferencemgmt.operations.execution import retry_countdown

    settings.IMM_OPERATION_RETRY_MAX_SECONDS = 10
    assert [retry_countdown(attempt) for attempt in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def test_a_retried_operation_records_when_it_was_handed_back():
    """The requeue task measures a PENDING operation's wait from its hand-back, not its creation."""
    operation = _operation(created_at=timezone.now())
    Operation.objects.filter(pk=operation.pk).update(created_at=timezone.now() - timedelta(hours=1))
    _run_into_an_outage(operation)
    assert operation.state == State.PENDING
    assert operation.heartbeat_at is not None
    assert timezone.now() - operation.heartbeat_at < timedelta(seconds=30)
    assert operations_requeue_stalled(timedelta(minutes=5)) == []


def test_requeue_leaves_live_waiting_and_finished_operations_alone():
    """Only work with no sign of life for the whole period qualifies (the broker is not touched here)."""
    now = timezone.now()
    fresh_pending = _operation()
    retried_recently = _operation(heartbeat_at=now - timedelta(seconds=10))
    live_running = _operation(state=State.RUNNING, owner="run", heartbeat_at=now - timedelta(seconds=10))
    old_finished = [_operation(state=state, heartbeat_at=now - timedelta(hours=1)) for state in Operation.FINAL_STATES]
    Operation.objects.filter(pk__in=[o.pk for o in old_finished]).update(created_at=now - timedelta(hours=1))
    assert operations_requeue_stalled(timedelta(minutes=5)) == []
    for operation in (fresh_pending, retried_recently, live_running, *old_finished):
        before = operation.state
        operation.refresh_from_db()
        assert operation.state == before
    live_running.refresh_from_db()
    assert live_running.owner == "run"
