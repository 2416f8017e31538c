"""How the devstack reports a part that cannot start: by name, with its log, never as ready."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import proc

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(proc, "PIDS", tmp_path / "pids")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_in_use_names_the_part_and_starts_nothing(taken_port: int) -> None:
    part = proc.Part("probe", [sys.executable, "-c", "pass"], ready=lambda: True, ports=(taken_port,))
    with pytest.raises(proc.StackError, match=rf"probe: port {taken_port} is already in use"):
        part.start()
    assert proc.recorded_pid("probe") is None


def test_part_that_dies_reports_its_log() -> None:
    part = proc.Part(
        "crashy", [sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(3)"], ready=lambda: False
    )
    with pytest.raises(proc.StackError) as failed:
        part.start()
    message = str(failed.value)
    assert message.startswith("crashy: exited before it was ready")
    assert "bad config line 3" in message
    assert "crashy.log" in message


def test_part_never_ready_times_out_and_is_stoppable() -> None:
    part = proc.Part("sleepy", [sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda: False, timeout=1)
    with pytest.raises(proc.StackError, match="sleepy: not ready after 1s"):
        part.start()
    assert proc.recorded_pid("sleepy") is not None
    assert proc.stop("sleepy") is True
    assert proc.recorded_pid("sleepy") is None


def test_running_part_is_reused_not_restarted() -> None:
    part = proc.Part("steady", [sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda: True)
    part.start()
    first = proc.recorded_pid("steady")
    part.start()
    assert proc.recorded_pid("steady") == first
    proc.stop("steady")


def test_missing_program_is_reported() -> None:
    part = proc.Part("ghost", ["/nonexistent/program"], ready=lambda: True)
    with pytest.raises(proc.StackError, match="ghost: cannot run /nonexistent/program"):
        part.start()
