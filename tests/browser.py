"""The headless Chromium the browser tests drive, trusting the devstack CA as a user's browser would."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def browser_home_trusting(ca_file: str) -> Iterator[str]:
    """A throw-away HOME whose NSS database trusts the CA in `ca_file`."""
    if shutil.which("certutil") is None:
        pytest.fail("certutil is not installed (Debian package libnss3-tools)", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (Debian package chromium)", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="imm-chromium-") as home:
        nssdb = f"sql:{home}/.pki/nssdb"
        os.makedirs(f"{home}/.pki/nssdb")
        subprocess.run(["certutil", "-d", nssdb, "-N", "--empty-password"], check=True)
        subprocess.run(["certutil", "-d", nssdb, "-A", "-t", "C,,", "-n", "imm-devstack-ca", "-i", ca_file], check=True)
        yield home


def launch_chromium(playwright: Any, home: str) -> Any:
    """Chromium under Playwright with `home` as its HOME (and so its NSS trust store)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, "HOME": home})
