"""Cross-app fixtures: the live local platform for integration tests.

`devstack_env` starts the devstack (or reuses a running one) once per test session and hands out
the variables of `.devstack/env`. It leaves the platform running for the next run; `make
devstack-down` stops it, and CI does so at the end.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="session")
def devstack_env() -> dict[str, str]:
    """The running devstack's client variables (KUBECONFIG, IMM_KUBECONFIG, S3_*, REDIS_URL, OIDC_*)."""
    result = subprocess.run([sys.executable, "-m", "devstack", "up"], cwd=ROOT)
    if result.returncode != 0:
        pytest.fail("the devstack did not start; see the [devstack] lines above and .devstack/logs/", pytrace=False)
    return _read_env(Path(os.environ.get("IMM_DEVSTACK_STATE", ROOT / ".devstack")) / "env")
