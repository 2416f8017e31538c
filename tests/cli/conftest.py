"""Fixtures for the CLI's integration tests: a real API server, a Celery worker and the controller.

Each runs as a subprocess against the live devstack (Kubernetes, S3, Redis, Dex) with a database of
its own (a temporary SQLite file, migrated first) and a Celery queue of its own
(``tests/cli/settings.py``), so neither a `make dev` worker nor another suite's worker takes our
tasks. The CLI itself runs as a
subprocess too (`python -m imm_cli`), exactly as a user runs it, with a config file per user.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import WorkerPool, stop_process_group

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    env: dict[str, str]
    logs: Path


def platform_env(devstack_env: dict[str, str]) -> dict[str, str]:
    """The devstack's variables, completed from its own modules when `.devstack/env` lacks some.

    The env file is rewritten by whichever checkout last ran `devstack up`; an older one may leave
    out the identity provider's or the controller's variables, which the platform still serves.
    """
    from devstack import idp
    from devstack.layout import STATE

    env = dict(devstack_env)
    for key, value in idp.env().items():
        env.setdefault(key, value)
    controller = STATE / "conf" / "controller.kubeconfig"
    if "IMM_CONTROLLER_KUBECONFIG" not in env and controller.exists():
        env["IMM_CONTROLLER_KUBECONFIG"] = str(controller)
    return env


@pytest.fixture(scope="session")
def cli_server_env(devstack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the API, worker and controller subprocesses (one temporary database)."""
    work = tmp_path_factory.mktemp("cli-server")
    env = {
        **os.environ,
        **platform_env(devstack_env),
        "DJANGO_SETTINGS_MODULE": "tests.cli.settings",
        "IMM_CLI_TEST_QUEUE": f"imm-cli-tests-{uuid.uuid4().hex[:12]}",
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "cli-tests-only",
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "IMM_OPERATION_PROGRESS_INTERVAL_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOWED_HOSTS", None)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    env["IMM_CLI_TEST_LOGS"] = str(work)
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="session")
def cli_worker(cli_server_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker for tenant provisioning and the other tasks."""
    pool = WorkerPool(cli_server_env, Path(cli_server_env["IMM_CLI_TEST_LOGS"]))
    yield pool.start("worker", "-Q", cli_server_env["IMM_CLI_TEST_QUEUE"])
    pool.stop_all()


@pytest.fixture(scope="session")
def cli_controller(cli_server_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes] | None]:
    """The InferenceEndpoint controller (renders Deployments; kwok runs their pods).

    It takes a lease of its own name; when another controller of the devstack already renders
    endpoints (a `make dev`), both act on the same objects idempotently.
    """
    logs = Path(cli_server_env["IMM_CLI_TEST_LOGS"])
    kubeconfig = cli_server_env.get("IMM_CONTROLLER_KUBECONFIG")
    if not kubeconfig:
        yield None
        return
    controller = _spawn(
        [sys.executable, "manage.py", "run_controller", "--kubeconfig", kubeconfig,
         "--lease-name", f"imm-cli-tests-{uuid.uuid4().hex[:8]}"],
        cli_server_env,
        logs / "controller.log",
    )  # fmt: skip
    yield controller
    stop_process_group(controller)


@pytest.fixture(scope="session")
def cli_server(cli_server_env: dict[str, str], cli_worker: subprocess.Popen[bytes]) -> Iterator[Server]:
    """`manage.py runserver` on a free loopback port, ready (``/healthz``) before the tests start."""
    logs = Path(cli_server_env["IMM_CLI_TEST_LOGS"])
    port = free_port()
    server = _spawn(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cli_server_env,
        logs / "api.log",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_process_group(server)
            pytest.fail(f"the API did not start:\n{(logs / 'api.log').read_text()[-3000:]}", pytrace=False)
        time.sleep(0.3)
    yield Server(url=url, env=cli_server_env, logs=logs)
    stop_process_group(server)
    for log in sorted(logs.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


ImmRunner = Callable[..., Run]


@pytest.fixture
def imm(cli_server: Server, tmp_path: Path) -> ImmRunner:
    """Run the CLI as a subprocess: ``imm("ls", "t", user="admin")`` with that user's config file."""

    def run(*args: str, user: str | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        full_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("IMM_", "MANAGEMENT_", "CERT", "TENANT_RESOURCES", "ENDPOINT_RESOURCES"))
        }
        full_env.update(
            {
                "IMM_API_URL": cli_server.url,
                "IMM_CONFIG_PATH": str(tmp_path / f"{user or 'nobody'}.immconfig"),
                "IMM_OIDC_CA_FILE": cli_server.env["OIDC_CA_FILE"],
                "IMM_UPLOAD_STATE_DIR": str(tmp_path / "upload-state"),
                "HOME": str(tmp_path),
            }
        )
        full_env.update(env or {})
        result = subprocess.run(
            [sys.executable, "-m", "imm_cli", *args],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Run(result.returncode, result.stdout, result.stderr)

    return run


@pytest.fixture
def logged_in(imm: ImmRunner) -> Callable[[str], None]:
    """Log a demo user in by the password grant (``imm login --username``), once per test."""
    done: set[str] = set()

    def login(user: str) -> None:
        if user in done:
            return
        result = imm("login", "--username", user, "--password", f"{user}-password", user=user)
        assert result.returncode == 0, result.stderr
        done.add(user)

    return login


@pytest.fixture
def tenant_name() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"
