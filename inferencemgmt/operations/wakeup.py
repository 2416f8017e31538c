"""Wake the requests that wait for an operation the moment it ends, instead of polling its row.

The run that finishes an operation publishes its id on a Redis channel of that operation; a route
that waits (``operations.services.operation_wait``) subscribes to the channel BEFORE it reads the
row, so an end that happens between the read and the wait is never missed. The row stays the truth:
the message only says "read the row now". A lost message (Redis restarted, publish failed) costs
at most ``RECHECK_SECONDS``, because the waiter reads the row again that often anyway; with Redis
unreachable the waiter falls back to polling the row.

Pub/sub channels are server-wide (not per Redis database), so the API and the workers meet whatever
database each uses as its broker; the channel names the operation's UUID, so waiters never mix.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "imm:operation-ended:"
#: How often a waiter reads the row even without a message (a lost message costs at most this).
RECHECK_SECONDS = 1.0
#: Redis calls here are quick or skipped: never let a slow Redis hold a request or a run.
SOCKET_SECONDS = 2.0


def channel(operation_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{operation_id}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=SOCKET_SECONDS, socket_connect_timeout=SOCKET_SECONDS
    )


def announce_end(operation_id: uuid.UUID | str) -> None:
    """Tell the waiters that the operation's row is final (best effort: they re-read it anyway)."""
    try:
        _client().publish(channel(operation_id), "ended")
    except redis.RedisError as exc:
        logger.warning(
            "Operation %s ended; waiters not woken (%s): they re-read within %ss", operation_id, exc, RECHECK_SECONDS
        )


class Waiter:
    """A subscription to one operation's end; ``wait(seconds)`` is True when a message came."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    def wait(self, seconds: float) -> bool:
        try:
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=max(0.0, seconds))
        except redis.RedisError:
            return False
        return message is not None


@contextmanager
def subscribed(operation_id: uuid.UUID | str) -> Iterator[Waiter | None]:
    """A Waiter for the operation's end, or None when Redis cannot be reached (then poll)."""
    pubsub = None
    try:
        pubsub = _client().pubsub()  # type: ignore[no-untyped-call]
        pubsub.subscribe(channel(operation_id))
        # The subscription is in force once Redis confirmed it: only then may the row be read.
        confirmed = pubsub.get_message(timeout=SOCKET_SECONDS)
        if not confirmed or confirmed.get("type") != "subscribe":
            raise redis.RedisError("the subscription was not confirmed")
    except redis.RedisError as exc:
        logger.info("Waiting for operation %s by polling (%s)", operation_id, exc)
        if pubsub is not None:
            _close(pubsub)
        yield None
        return
    try:
        yield Waiter(pubsub)
    finally:
        _close(pubsub)


def _close(pubsub: Any) -> None:
    with suppress(redis.RedisError):
        pubsub.close()
