"""The controller's work queue: keys, not events.

Why keys: a burst of events for one endpoint (its CR, its Deployment, each pod) must cost one
reconcile, and a reconcile always reads the current state, so only "this endpoint needs a look"
matters. The rules (those of client-go's workqueue, which proved them):

- a key is queued at most once (dedupe);
- a key is never handed to two workers at once; a key added while it is being processed is queued
  again when that worker is done, so no change is lost;
- a failed key comes back after an exponential backoff (per key, capped), reset on success;
- an urgent key (a tenant's namespace changed: someone, such as a key rotation, waits on it) goes to
  the front, ahead of the resync of thousands of endpoints that would otherwise delay it for minutes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.5, max_delay: float = 60.0) -> None:
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._urgent: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._counter = itertools.count()
        self._failures: dict[str, int] = {}
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._shut_down = False

    def add(self, key: str, *, urgent: bool = False) -> None:
        """Queue ``key`` now (no-op if it is queued; deferred if a worker holds it); ``urgent`` puts it
        first (and moves it there if it was queued further back)."""
        with self._cond:
            if self._shut_down:
                return
            if key in self._processing:
                self._dirty.add(key)
                if urgent:
                    self._urgent.add(key)
                return
            if key in self._queued:
                if urgent:
                    self._queue.remove(key)
                    self._queue.appendleft(key)
                return
            self._queued.add(key)
            if urgent:
                self._queue.appendleft(key)
            else:
                self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._counter), key))
            self._cond.notify()

    def retry(self, key: str) -> float:
        """Queue ``key`` again after its next backoff delay; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self._max_delay, self._base_delay * 2.0**failures)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def _promote_due(self, now: float) -> float | None:
        """Move due delayed keys to the queue; return seconds to the next one."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to process (the caller must call ``done``), or None on timeout/shutdown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shut_down:
                    return None
                wait = self._promote_due(time.monotonic())
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)
                if key in self._urgent:
                    self._queue.appendleft(key)
                else:
                    self._queue.append(key)
                self._cond.notify()
            self._urgent.discard(key)

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def shut_down(self) -> None:
        with self._cond:
            self._shut_down = True
            self._cond.notify_all()
