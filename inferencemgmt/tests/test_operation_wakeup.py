"""A waiting route wakes on its operation's end (a Redis message), not on a poll; without Redis it
polls the row as before (inferencemgmt/operations/wakeup.py, services.operation_wait)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from inferencemgmt.operations import services, wakeup
from inferencemgmt.operations.models import Operation

pytestmark = [pytest.mark.unit, pytest.mark.django_db(transaction=True)]


class FakePubSub:
    """Confirms the subscription; on the first wait the "worker" ends the operation and publishes."""

    def __init__(self, operation: Operation, end_after: float) -> None:
        self.operation = operation
        self.end_after = end_after
        self.subscribed: list[str] = []
        self.waits: list[float] = []
        self.closed = False

    def subscribe(self, name: str) -> None:
        self.subscribed.append(name)

    def get_message(self, ignore_subscribe_messages: bool = False, timeout: float = 0.0) -> Any:
        if not ignore_subscribe_messages:
            return {"type": "subscribe", "channel": self.subscribed[-1]}
        self.waits.append(timeout)
        time.sleep(self.end_after)
        Operation.objects.filter(pk=self.operation.pk).update(state=Operation.State.SUCCEEDED)
        return {"type": "message", "data": b"ended"}

    def close(self) -> None:
        self.closed = True


class FakeRedis:
    def __init__(self, pubsub: FakePubSub | None = None) -> None:
        self._pubsub = pubsub
        self.published: list[str] = []

    def pubsub(self) -> FakePubSub:
        if self._pubsub is None:
            raise redis.ConnectionError("Redis is down")
        return self._pubsub

    def publish(self, name: str, message: str) -> int:
        if self._pubsub is None:
            raise redis.ConnectionError("Redis is down")
        self.published.append(name)
        return 1


def pending() -> Operation:
    return Operation.objects.create(kind="test.wait", requested_by="alice@example.com")


def test_the_wait_returns_on_the_message_not_on_a_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    operation = pending()
    pubsub = FakePubSub(operation, end_after=0.02)
    monkeypatch.setattr(wakeup, "_client", lambda: FakeRedis(pubsub))
    started = time.monotonic()
    found = services.operation_wait(operation.pk, timeout=30)
    elapsed = time.monotonic() - started
    assert found.state == Operation.State.SUCCEEDED
    assert pubsub.subscribed == [wakeup.channel(operation.pk)]
    assert pubsub.waits == [wakeup.RECHECK_SECONDS]  # one wait, woken by the message
    assert elapsed < 0.5
    assert pubsub.closed


def test_the_subscription_comes_before_the_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operation already final when the wait starts answers at once, with no wait at all."""
    operation = pending()
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.FAILED)
    pubsub = FakePubSub(operation, end_after=0)
    monkeypatch.setattr(wakeup, "_client", lambda: FakeRedis(pubsub))
    assert services.operation_wait(operation.pk, timeout=30).state == Operation.State.FAILED
    assert pubsub.subscribed
    assert pubsub.waits == []


def test_without_redis_the_wait_polls_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    operation = pending()
    monkeypatch.setattr(wakeup, "_client", lambda: FakeRedis(None))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            Operation.objects.filter(pk=operation.pk).update(state=Operation.State.SUCCEEDED)

    monkeypatch.setattr(time, "sleep", sleep)
    assert services.operation_wait(operation.pk, timeout=30).state == Operation.State.SUCCEEDED
    assert sleeps == [0.05, 0.1, 0.2]


def test_announcing_without_redis_is_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakeup, "_client", lambda: FakeRedis(None))
    wakeup.announce_end("0c4a5f4e-0000-4000-8000-000000000000")  # logs, raises nothing


def test_a_finished_run_announces_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferencemgmt.operations.execution import execute_operation
    from inferencemgmt.tests.test_operations import FakeTask, _operation

    fake = FakeRedis(FakePubSub(pending(), end_after=0))
    monkeypatch.setattr(wakeup, "_client", lambda: fake)
    operation = _operation()
    execute_operation(FakeTask(), str(operation.pk), lambda run: {"done": True})
    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED
    assert fake.published == [wakeup.channel(operation.pk)]
