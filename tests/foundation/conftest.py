"""Fixtures for the foundation's integration tests against the live local platform."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# --- lead replaces: everything in this block ------------------------------------------------------
# Temporary stand-ins for the lead's tests/conftest.py (which starts the devstack and provides
# `devstack_env`) and for the `devstack` Python package, neither of which is on this branch yet.
# They read the platform another checkout started (/work/main) and skip when it is absent.
# After the merge: delete this block; `_devstack_python` becomes sys.executable and `_devstack_root`
# becomes ROOT.
_FALLBACK_ROOT = Path("/work/main")


def _devstack_root() -> Path:
    return ROOT if (ROOT / "devstack" / "token.py").exists() else _FALLBACK_ROOT


def _devstack_python() -> str:
    fallback = _FALLBACK_ROOT / ".venv" / "bin" / "python"
    return sys.executable if _devstack_root() == ROOT or not fallback.exists() else str(fallback)


@pytest.fixture(scope="session")
def devstack_env() -> dict[str, str]:  # lead replaces
    env_file = _devstack_root() / ".devstack" / "env"
    if not env_file.exists():
        pytest.skip(f"no local platform: {env_file} is absent")
    env: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


# --- end of the block the lead replaces -----------------------------------------------------------


@pytest.fixture(scope="session")
def user_token(devstack_env: dict[str, str]) -> Callable[[str], str]:
    """A fresh id_token of a demo user (admin, alice, bob, carol, dave) from the platform's provider."""
    cache: dict[str, str] = {}

    def token(user: str) -> str:
        if user not in cache:
            result = subprocess.run(
                [_devstack_python(), "-m", "devstack.token", user],
                cwd=_devstack_root(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            cache[user] = result.stdout.strip().splitlines()[-1]
        return cache[user]

    return token


@pytest.fixture
def platform_settings(devstack_env: dict[str, str], settings: Any) -> Any:
    """Point this process's settings at the live platform (the same variables a deployment sets)."""
    settings.OIDC_ISSUER = devstack_env["OIDC_ISSUER"].rstrip("/")
    settings.OIDC_CA_FILE = devstack_env["OIDC_CA_FILE"]
    settings.OIDC_API_CLIENT_ID = devstack_env["OIDC_API_CLIENT_ID"]
    settings.OIDC_API_CLIENT_SECRET = devstack_env["OIDC_API_CLIENT_SECRET"]
    settings.OIDC_CLI_CLIENT_ID = devstack_env["OIDC_CLI_CLIENT_ID"]
    settings.OIDC_AUDIENCES = [devstack_env["OIDC_API_CLIENT_ID"], devstack_env["OIDC_CLI_CLIENT_ID"]]
    settings.IMM_KUBECONFIG = devstack_env["IMM_KUBECONFIG"]
    settings.S3_ENDPOINT_URL = devstack_env["S3_ENDPOINT_URL"]
    settings.S3_ACCESS_KEY_ID = devstack_env["S3_ACCESS_KEY_ID"]
    settings.S3_SECRET_ACCESS_KEY = devstack_env["S3_SECRET_ACCESS_KEY"]
    settings.S3_REGION = devstack_env["S3_REGION"]
    settings.REDIS_URL = devstack_env["REDIS_URL"]
    return settings


@pytest.fixture
def api() -> Any:
    from rest_framework.test import APIClient

    return APIClient()
