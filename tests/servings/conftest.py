# The generated Kubernetes models make every field Optional; these tests read fields they just asserted exist.
# mypy: disable-error-code="union-attr,index,arg-type,type-var,no-any-return,return-value,misc,no-untyped-call"
"""Live-cluster fixtures for the controller: a tenant namespace, and controller processes to start and kill.

The controller runs as a real ``manage.py run_controller`` process. The devstack is shared by several
checkouts, and every test session re-applies its own checkout's bootstrap (the serving templates in
``imm-servings``, the ``imm-controller`` ClusterRole), so a test controller reading those would test
whichever checkout started a session last. :func:`controller_sandbox` therefore gives each session's
controllers THIS checkout's serving templates (a namespace of their own) and THIS checkout's
helm/imm/files/rbac/controller.yaml, bound to a user of their own that the controller acts as
(``--as`` on the admin kubeconfig): exactly those rights, so these tests also prove the RBAC is
sufficient. Each test session uses its own Lease name, so a controller a developer runs beside
(``make dev``) never takes the tests' lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from servings.catalogue import serving_template_configmaps
from tests.inference_endpoints import serving_namespace_create

ROOT = Path(__file__).resolve().parents[2]
CONTROLLER_RBAC = ROOT / "helm" / "imm" / "files" / "rbac" / "controller.yaml"


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


@contextmanager
def controller_sandbox(admin: client.ApiClient, admin_kubeconfig: str) -> Iterator[dict[str, str]]:
    """Environment for test controllers: this checkout's templates and RBAC under names of their own.

    Yields ``SERVING_TEMPLATES_NAMESPACE`` (a new namespace holding the shipped templates),
    ``IMM_CONTROLLER_KUBECONFIG`` (the admin's) and ``IMM_CONTROLLER_AS`` (a user bound only to the
    ClusterRole and the Lease Role of controller.yaml, renamed); everything is deleted afterwards.
    """
    suffix = uuid.uuid4().hex[:6]
    user = f"imm-controller-test-{suffix}"
    templates = f"imm-servings-{suffix}"
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    ref = "rbac.authorization.k8s.io"
    subjects = [{"apiGroup": ref, "kind": "User", "name": user}]
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(CONTROLLER_RBAC.read_text()) if doc}
    cluster_role, role = documents["ClusterRole"], documents["Role"]
    lease_namespace = role["metadata"]["namespace"]
    cluster_role["metadata"]["name"] = role["metadata"]["name"] = user
    try:
        core.create_namespace({"metadata": {"name": templates}})
        for configmap in serving_template_configmaps(templates):
            core.create_namespaced_config_map(templates, configmap)
        rbac.create_cluster_role(cluster_role)
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": user},
                "roleRef": {"apiGroup": ref, "kind": "ClusterRole", "name": user},
                "subjects": subjects,
            }
        )
        rbac.create_namespaced_role(lease_namespace, role)
        rbac.create_namespaced_role_binding(
            lease_namespace,
            {
                "metadata": {"name": user},
                "roleRef": {"apiGroup": ref, "kind": "Role", "name": user},
                "subjects": subjects,
            },
        )
        yield {
            "SERVING_TEMPLATES_NAMESPACE": templates,
            "IMM_CONTROLLER_KUBECONFIG": admin_kubeconfig,
            "IMM_CONTROLLER_AS": user,
        }
    finally:
        for delete in (
            lambda: rbac.delete_namespaced_role_binding(user, lease_namespace),
            lambda: rbac.delete_namespaced_role(user, lease_namespace),
            lambda: rbac.delete_cluster_role_binding(user),
            lambda: rbac.delete_cluster_role(user),
            lambda: core.delete_namespace(templates),
        ):
            with suppress(ApiException):
                delete()


class ControllerProcess:
    def __init__(self, env: dict[str, str], lease: str, log: Path) -> None:
        self.env, self.lease, self.log = env, lease, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        kubeconfig = self.env.get("IMM_CONTROLLER_KUBECONFIG") or str(
            Path(self.env["KUBECONFIG"]).parent / "controller.kubeconfig"
        )
        self._log_file = self.log.open("ab")
        impersonate = ["--as", self.env["IMM_CONTROLLER_AS"]] if self.env.get("IMM_CONTROLLER_AS") else []
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
                *impersonate,
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
def sandbox(devstack_env: dict[str, str], admin: client.ApiClient) -> Iterator[dict[str, str]]:
    with controller_sandbox(admin, devstack_env["KUBECONFIG"]) as overrides:
        yield overrides


@pytest.fixture(scope="session")
def templates_namespace(sandbox: dict[str, str]) -> str:
    """Where the test controllers read serving templates (this checkout's shipped ones, and a test's own)."""
    return sandbox["SERVING_TEMPLATES_NAMESPACE"]


@pytest.fixture(scope="session")
def controller_env(devstack_env: dict[str, str], sandbox: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **devstack_env, **sandbox}
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
