# The generated Kubernetes models make every field Optional; these tests read fields they just asserted exist.
# mypy: disable-error-code="union-attr,index,arg-type,type-var,no-any-return,return-value,misc,no-untyped-call"
"""Live-cluster fixtures for the controller: a tenant namespace, and controller processes to start and kill.

The controller runs as a real ``manage.py run_controller`` process with the devstack's controller
certificate (user ``imm-controller``, bound to helm/imm/files/rbac/controller.yaml), so these tests
also prove that its RBAC is sufficient. Each test session uses its own Lease name, so a controller
a developer runs beside (``make dev``) never takes the tests' lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.inference_endpoints import serving_namespace_create

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float = 90.0, interval: float = 0.5, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ApiException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}: last={last!r}")


class ControllerProcess:
    def __init__(self, env: dict[str, str], lease: str, log: Path) -> None:
        self.env, self.lease, self.log = env, lease, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        kubeconfig = self.env.get("IMM_CONTROLLER_KUBECONFIG") or str(
            Path(self.env["KUBECONFIG"]).parent / "controller.kubeconfig"
        )
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_controller",
                "--kubeconfig",
                kubeconfig,
                "--lease-name",
                self.lease,
                "--lease-seconds",
                "6",
                "--resync-seconds",
                "60",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_leading(self, timeout: float = 30.0) -> None:
        wait_for(lambda: "leading; starting watches" in self.text(), timeout, what=f"{self.log.name} to lead")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._log_file.close()


@pytest.fixture(scope="session")
def controller_env(devstack_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **devstack_env}
    env.setdefault("DJANGO_SECRET_KEY", "integration-tests-only")
    env.setdefault("DATABASE_URL", "sqlite://:memory:")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def admin(devstack_env: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(devstack_env["KUBECONFIG"])


@pytest.fixture(scope="session")
def lease_name() -> str:
    return f"imm-controller-test-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def start_controller(
    controller_env: dict[str, str], lease_name: str, tmp_path: Path
) -> Iterator[Callable[[str], ControllerProcess]]:
    started: list[ControllerProcess] = []

    def start(name: str = "controller") -> ControllerProcess:
        process = ControllerProcess(controller_env, lease_name, tmp_path / f"{name}.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process is not None:
            process.stop()


@pytest.fixture
def controller(start_controller: Callable[[str], ControllerProcess]) -> ControllerProcess:
    process = start_controller("controller")
    process.wait_leading()
    return process


@pytest.fixture
def tenant(admin: client.ApiClient) -> Iterator[str]:
    """A tenant namespace with the access secret the serving pods read (as provisioning creates it)."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(admin)
    serving_namespace_create(core, name)
    yield name
    core.delete_namespace(name)
