"""The whole product for a browser: runserver on 127.0.0.1:8000, a Celery worker, and Chromium.

Port 8000 is not a choice: the devstack's Dex client `imm-api` only accepts the console callback
`http://127.0.0.1:8000/oidc/callback/`. The server gets a fresh SQLite database and a Redis database
of its own, so neither a `make dev` worker nor another test run takes its tasks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import browser_home_trusting, launch_chromium
from tests.conftest import ROOT, TEST_QUEUE, WorkerPool

BASE_URL = "http://127.0.0.1:8000"
# Redis databases in use by other suites: 15 (tests/conftest.py), 13 (tests/endpoints).
CONSOLE_REDIS_DB = 11


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def console_server(devstack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The product on port 8000 (DEBUG, a fresh database) plus one Celery worker; yields the base URL."""
    if _port_taken("127.0.0.1", 8000):
        pytest.fail(
            "port 8000 is taken by another process; the Dex client imm-api only accepts the console callback "
            "http://127.0.0.1:8000/oidc/callback/, so stop that process and run again",
            pytrace=False,
        )
    work = tmp_path_factory.mktemp("console-server")
    broker = devstack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{CONSOLE_REDIS_DB}"
    env = {
        **os.environ,
        **devstack_env,
        "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{work / 'console.sqlite3'}",
        "REDIS_URL": broker,
        "IMM_OPERATION_PROGRESS_INTERVAL_SECONDS": "0.2",
        "IMM_CELERY_QUEUE": TEST_QUEUE,
        "PYTHONUNBUFFERED": "1",
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    log_path = work / "runserver.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "127.0.0.1:8000"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    workers = WorkerPool(env, work)
    workers.start("console")
    # The controller renders endpoints into pods (kwok runs them); a lease of its own, so it works
    # whether or not another engineer's controller holds the default lease.
    controller_log = (work / "controller.log").open("wb")
    controller = subprocess.Popen(
        [sys.executable, "manage.py", "run_controller", "--kubeconfig", devstack_env["IMM_CONTROLLER_KUBECONFIG"],
         "--lease-name", f"imm-console-{os.getpid()}", "--lease-seconds", "6"],
        cwd=ROOT, env=env, stdout=controller_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"runserver exited with {server.returncode}:\n{_tail(log_path)}", pytrace=False)
            try:
                if requests.get(f"{BASE_URL}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"runserver did not answer /healthz within 60 s:\n{_tail(log_path)}", pytrace=False)
            time.sleep(0.5)
        yield BASE_URL
    finally:
        workers.stop_all()
        controller.terminate()
        try:
            controller.wait(timeout=15)
        except subprocess.TimeoutExpired:
            controller.kill()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        print(f"--- runserver.log\n{_tail(log_path)}")
        print(f"--- console.log\n{_tail(work / 'console.log')}")
        print(f"--- controller.log\n{_tail(work / 'controller.log')}")


@pytest.fixture(scope="module")
def browser_home(devstack_env: dict[str, str]) -> Iterator[str]:
    """A throw-away HOME whose NSS database trusts the devstack CA, as a user's browser would."""
    with browser_home_trusting(devstack_env["OIDC_CA_FILE"]) as home:
        yield home


@pytest.fixture(scope="module")
def browser(browser_home: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, browser_home)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot under the test's tmp dir (printed, so a person can look at them)."""
    chosen = os.environ.get("IMM_CONSOLE_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots: {directory}")
    counter = iter(range(1, 1000))

    def shoot(page: Any, name: str) -> Path:
        path = directory / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot
