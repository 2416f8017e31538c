"""Build the devstack's Go programs once and keep them in a cache outside the checkout.

A build is keyed by a hash of the module's go.mod, go.sum and Go sources, so any clone of the
same commit on this machine (including CI's fresh clone) reuses the binary, and a dependency
bump rebuilds it. A cold Kubernetes build takes many minutes on two cores, so progress is shown
(the package being compiled) and the time taken is printed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from devstack.layout import CACHE, LOGS, ROOT
from devstack.proc import StackError, say

GO_MODULES = ROOT / "devstack"


def module_key(module_dir: Path, ldflags: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    # Link-time settings change the binary, so they are part of its identity; none (the usual
    # case) keeps the keys of existing cached builds.
    for flag in ldflags:
        digest.update(flag.encode())
    for path in sorted([module_dir / "go.mod", module_dir / "go.sum", *module_dir.glob("*.go")]):
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise StackError("go: the Go toolchain is not installed (needed to build the devstack)")
    return go


def _watch(process: subprocess.Popen[str], label: str, began: float) -> list[str]:
    """Relay `go build -v` package names as a one-line-per-20s progress report."""
    lines: list[str] = []
    last = 0.0
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        now = time.monotonic()
        if now - last > 20:
            last = now
            say(f"building {label}: {len(lines)} packages compiled, {now - began:.0f}s, now {line.strip()}")
    return lines


def go_binary(module: str, package: str, output: str, ldflags: tuple[str, ...] = ()) -> Path:
    """Return the path of `output` built from `package` in devstack/<module>, building it if needed.

    `ldflags` are extra linker flags (e.g. `-X` version stamps) added to the usual `-s -w`.
    """
    module_dir = GO_MODULES / module
    target_dir = CACHE / "bin" / f"{module}-{module_key(module_dir, ldflags)}"
    target = target_dir / output
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"build-{module}.log"
    say(f"building {output} from devstack/{module} (first time on this machine; cached in {target_dir})")
    began = time.monotonic()
    # One partial file per process: two checkouts (or CI and a developer) may build the same binary
    # at once; each renames its own complete file into place, and rename is atomic.
    partial = target.with_suffix(f".partial-{os.getpid()}")
    env = dict(os.environ)
    process = subprocess.Popen(
        [
            _go(),
            "build",
            "-v",
            "-trimpath",
            f"-ldflags={' '.join(('-s', '-w', *ldflags))}",
            "-o",
            str(partial),
            package,
        ],
        cwd=module_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(_watch(process, output, began)))
    reader.start()
    code = process.wait()
    reader.join()
    log.write_text("\n".join(lines) + "\n")
    if code != 0:
        tail = "\n".join("    " + line for line in lines[-20:])
        raise StackError(f"build of {output} failed (exit {code}); full log {log}:\n{tail}")
    partial.rename(target)
    say(f"built {output} in {time.monotonic() - began:.0f}s")
    return target
