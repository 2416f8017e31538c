"""Cross-app fixtures: the live local platform for integration tests.

`devstack_env` starts the devstack (or reuses a running one) once per test session and hands out
the variables of `.devstack/env`. It leaves the platform running for the next run; `make
devstack-down` stops it, and CI does so at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


@pytest.fixture(scope="session")
def user_token(devstack_env: dict[str, str]) -> Callable[[str], str]:
    """A fresh id_token of a demo user (admin, alice, bob, carol, dave) from the platform's provider."""
    cache: dict[str, str] = {}

    def token(user: str) -> str:
        if user not in cache:
            result = subprocess.run(
                [sys.executable, "-m", "devstack.token", user],
                cwd=ROOT,
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
    settings.S3_SERVING_ENDPOINT_URL = devstack_env.get("S3_SERVING_ENDPOINT_URL", "")
    settings.S3_ACCESS_KEY_ID = devstack_env["S3_ACCESS_KEY_ID"]
    settings.S3_SECRET_ACCESS_KEY = devstack_env["S3_SECRET_ACCESS_KEY"]
    settings.S3_REGION = devstack_env["S3_REGION"]
    settings.S3_IAM_ENDPOINT_URL = devstack_env.get("S3_IAM_ENDPOINT_URL", "")
    settings.REDIS_URL = devstack_env["REDIS_URL"]
    settings.PLATFORM_DOMAIN = devstack_env["PLATFORM_DOMAIN"]
    settings.SERVING_TEMPLATES_NAMESPACE = devstack_env["SERVING_TEMPLATES_NAMESPACE"]
    settings.IMM_SYSTEM_NAMESPACE = devstack_env["IMM_SYSTEM_NAMESPACE"]
    return settings


@pytest.fixture
def api() -> Any:
    from rest_framework.test import APIClient

    return APIClient()


#: ``caller(user, method, path, body=None, *, raw=None, bare=False, **headers)``: one request as a persona.
PersonaCaller = Callable[..., Any]


def persona_caller(client: Any, token_of: Callable[[str], str]) -> PersonaCaller:
    """Requests through a test client as a demo user (admin, alice, bob, carol, dave) with a real token.

    ``body`` is sent as JSON; ``raw`` as it is (``bytes`` as application/octet-stream, ``str`` labelled
    JSON, for malformed bodies); ``bare`` sends the token without ``Bearer``, as the original clients
    do; other keywords are request headers (``HTTP_PREFER=...``).
    """

    def call(
        user: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        bare: bool = False,
        **headers: str,
    ) -> Any:
        token = token_of(user)
        if isinstance(raw, bytes):
            data: Any = raw
            content_type = "application/octet-stream"
        else:
            data = raw if raw is not None else None if body is None else json.dumps(body)
            content_type = "application/json"
        return getattr(client, method)(
            path,
            data=data,
            content_type=content_type,
            HTTP_AUTHORIZATION=token if bare else f"Bearer {token}",
            **headers,
        )

    return call


@pytest.fixture
def as_user(api: Any, user_token: Callable[[str], str], platform_settings: Any) -> PersonaCaller:
    """``as_user("alice", "get", "/tenants")``: the one way a live test calls the API as a persona."""
    return persona_caller(api, user_token)


# Tests queue their operations on a Redis database of their own, so a `make dev` worker on the
# same local platform never takes a test's message (and the reverse).
TEST_REDIS_DB = 15
#: And on a queue of this run's own: two runs on one platform (two checkouts, or a run beside an
#: engineer's) never take each other's messages either.
TEST_QUEUE = f"imm-tests-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
def celery_test_queue() -> str:
    """This process sends to the run's own queue; workers started by the tests take from it."""
    from inferencemgmt.celery import app as celery_app

    celery_app.conf.task_default_queue = TEST_QUEUE
    return TEST_QUEUE


def use_broker(url: str) -> str:
    """Point this process's Celery sends at `url`; returns the previous URL.

    Test modules use Redis databases of their own. Celery's connection and producer pools bind to
    the URL they were first built with, so the app forgets both and looks them up again for the new
    URL. They are not closed: kombu keeps one pool per URL and hands the same one out again when a
    later module returns to that URL.
    """
    from inferencemgmt.celery import app as celery_app

    previous = str(celery_app.conf.broker_url)
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    return previous


def _test_database_url() -> str:
    """The test database, as a URL a worker's settings can read."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(devstack_env: dict[str, str], broker: str, **overrides: str) -> dict[str, str]:
    """The environment of a test's Celery worker: the platform, the test database, quick clocks."""
    return {
        **os.environ,
        **devstack_env,
        "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": broker,
        "IMM_CELERY_VISIBILITY_TIMEOUT_SECONDS": "4",
        "IMM_OPERATION_STALE_SECONDS": "2",
        "IMM_OPERATION_PROGRESS_INTERVAL_SECONDS": "0.2",
        "IMM_CELERY_QUEUE": TEST_QUEUE,
        **overrides,
    }


def suite_broker_url(devstack_env: dict[str, str]) -> str:
    """The Redis database the general suite's workers and senders use as their broker."""
    return devstack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}"


@pytest.fixture
def operations_worker(devstack_env: dict[str, str], platform_settings: Any, tmp_path: Path) -> Any:
    """A real Celery worker (subprocess) acting on the platform, sharing the test database.

    Yields a function that starts one more worker (named), so a test can kill one and start
    another. The test process sends to the same broker database.
    """
    broker = suite_broker_url(devstack_env)
    previous = use_broker(broker)
    pool = WorkerPool(worker_env(devstack_env, broker), tmp_path)
    pool.start("first")
    yield pool
    pool.stop_all()
    use_broker(previous)
    pool.print_logs()


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """End a subprocess started with ``start_new_session=True`` and its children: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class WorkerPool:
    """Celery worker subprocesses of one test; `kill` ends one as abruptly as a lost node."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        # Workers take from this run's queue unless the caller names another (see TEST_QUEUE).
        self.env, self.logs = {"IMM_CELERY_QUEUE": TEST_QUEUE, **env}, logs
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        """Start a worker; ``extra`` arguments go to ``celery worker`` (e.g. ``-B`` for beat)."""
        log = (self.logs / f"{name}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "inferencemgmt", "worker", "--pool=solo",
             "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "-l", "INFO", *extra],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    def stop_all(self) -> None:
        for worker in self.workers:
            stop_process_group(worker)

    def print_logs(self) -> None:
        """Shown by pytest when the test failed: the end of each worker's log."""
        for log in sorted(self.logs.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
