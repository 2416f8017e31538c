"""Background processes of the devstack: start, reuse, wait until ready, stop by recorded PID.

Each part is a plain child process in its own session (so it outlives `make devstack`) with its
output in `.devstack/logs/<part>.log` and its PID in `.devstack/pids/<part>.pid`. Starting is
idempotent: a part whose recorded process is alive and ready is reused. A part never counts as
started until its readiness check passes; a failure names the part and its log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from devstack.layout import LOGS, PIDS


class StackError(RuntimeError):
    """A part of the devstack could not be built or started; the message says which and where to look."""


def say(message: str) -> None:
    """Progress on stderr, so scripts can still read stdout."""
    print(f"[devstack] {message}", file=sys.stderr, flush=True)


def log_path(name: str) -> Path:
    return LOGS / f"{name}.log"


def log_tail(name: str, lines: int = 15) -> str:
    path = log_path(name)
    if not path.exists():
        return "(no log written)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_file(name: str) -> Path:
    return PIDS / f"{name}.pid"


def alive(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie, exited but not reaped, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"


def recorded_pid(name: str) -> int | None:
    """The PID of the part if its recorded process is still alive."""
    path = _pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    return pid if alive(pid) else None


@dataclass
class Part:
    """One process of the devstack and how to tell that it is ready."""

    name: str
    argv: Sequence[str]
    ready: Callable[[], bool]
    ports: Sequence[int] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    cwd: Path | None = None

    def start(self) -> float:
        """Start the part (or reuse it) and wait until it is ready; returns seconds waited."""
        began = time.monotonic()
        pid = recorded_pid(self.name)
        if pid is None:
            for port in self.ports:
                if port_open(port):
                    raise StackError(
                        f"{self.name}: port {port} is already in use by another program; stop it or "
                        f"move the devstack's port with its IMM_DEVSTACK_*_PORT variable "
                        f"(log: {log_path(self.name)})"
                    )
            LOGS.mkdir(parents=True, exist_ok=True)
            PIDS.mkdir(parents=True, exist_ok=True)
            with log_path(self.name).open("ab") as log:
                log.write(f"\n==== start {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
                log.flush()
                try:
                    process = subprocess.Popen(
                        list(self.argv),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, **self.env},
                        cwd=self.cwd,
                    )
                except OSError as exc:
                    raise StackError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
            _pid_file(self.name).write_text(str(process.pid))
            pid = process.pid
        deadline = began + self.timeout
        while True:
            try:
                if self.ready():
                    return time.monotonic() - began
            except Exception:  # noqa: S110 -- probes fail in many ways while a server boots; retry
                pass
            if not alive(pid):
                raise StackError(
                    f"{self.name}: exited before it was ready; last lines of {log_path(self.name)}:\n"
                    f"{log_tail(self.name)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: not ready after {self.timeout:.0f}s; last lines of "
                    f"{log_path(self.name)}:\n{log_tail(self.name)}"
                )
            time.sleep(0.25)


def stop(name: str, grace: float = 15.0) -> bool:
    """Stop a part by its recorded PID (its whole process group); True if something was stopped."""
    pid = recorded_pid(name)
    _pid_file(name).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
