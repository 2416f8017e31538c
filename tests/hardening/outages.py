"""Stopping one part of the local platform for a fault test, and bringing the platform back.

A part is stopped the way an outage looks from outside: its processes end and its port closes.
Bringing it back is the devstack's own ``up`` (it reuses the parts still running and starts the
stopped one from its kept data), so the rest of the suite finds the platform as it was.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from devstack import proc
from tests.conftest import ROOT

# What a client of each upstream talks to: stopping it is that upstream's outage.
KUBERNETES = ("kube-apiserver",)
OBJECT_STORE = ("s3",)
REDIS = ("redis",)
IDENTITY_PROVIDER = ("dex",)


def stop(parts: tuple[str, ...]) -> None:
    for name in parts:
        assert proc.stop(name), f"devstack part {name} was not running"


def restore() -> None:
    """Start whatever is stopped and wait until every part answers (the devstack's readiness)."""
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "up"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"the devstack did not come back:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


@contextmanager
def outage(parts: tuple[str, ...]) -> Iterator[Callable[[], None]]:
    """Stop ``parts``; yields a function that ends the outage early. It always ends on exit."""
    ended = False

    def end() -> None:
        nonlocal ended
        if not ended:
            ended = True
            restore()

    stop(parts)
    try:
        yield end
    finally:
        end()


def wait_for(condition: Callable[[], object], timeout: float, what: str, pause: float = 0.5) -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(pause)
