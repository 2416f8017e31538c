"""Live-platform fixtures for the endpoint routes: real tenants made through POST /tenants, real tokens,
and the real controller where a test needs live status.

Tenants are made once per module (provisioning takes seconds) by a Celery worker of the module's
own, on a Redis database of its own, so a tenant or model test running beside never takes our
messages. Each tenant is deleted through DELETE /tenants afterwards, and its namespace and bucket
by hand should that fail.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import urllib3
import yaml
from django.test import override_settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.conftest import ROOT, WorkerPool, _test_database_url, persona_caller, use_broker
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.platform_admin import admin_s3_client, namespaces_delete_started, remove_tenant
from tests.servings.conftest import ControllerProcess, controller_sandbox
from tests.tenants.test_tenants_api import CERT

ENDPOINTS_REDIS_DB = 13


def platform_values(env: dict[str, str]) -> dict[str, Any]:
    """The settings a deployment would set for this platform (as the shared `platform_settings`)."""
    return {
        "OIDC_ISSUER": env["OIDC_ISSUER"].rstrip("/"),
        "OIDC_CA_FILE": env["OIDC_CA_FILE"],
        "OIDC_API_CLIENT_ID": env["OIDC_API_CLIENT_ID"],
        "OIDC_API_CLIENT_SECRET": env["OIDC_API_CLIENT_SECRET"],
        "OIDC_CLI_CLIENT_ID": env["OIDC_CLI_CLIENT_ID"],
        "OIDC_AUDIENCES": [env["OIDC_API_CLIENT_ID"], env["OIDC_CLI_CLIENT_ID"]],
        "IMM_KUBECONFIG": env["IMM_KUBECONFIG"],
        "S3_ENDPOINT_URL": env["S3_ENDPOINT_URL"],
        "S3_ACCESS_KEY_ID": env["S3_ACCESS_KEY_ID"],
        "S3_SECRET_ACCESS_KEY": env["S3_SECRET_ACCESS_KEY"],
        "S3_REGION": env["S3_REGION"],
        "REDIS_URL": env["REDIS_URL"],
        "PLATFORM_DOMAIN": env["PLATFORM_DOMAIN"],
        "SERVING_TEMPLATES_NAMESPACE": env["SERVING_TEMPLATES_NAMESPACE"],
        "IMM_SYSTEM_NAMESPACE": env["IMM_SYSTEM_NAMESPACE"],
    }


@dataclass
class Platform:
    """The module's view of the live platform: call the API as a demo user, make tenants."""

    env: dict[str, str]
    token: Callable[[str], str]
    k8s: client.ApiClient
    s3: Any
    tenants: list[str] = field(default_factory=list)

    def call(self, user: str, method: str, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        """``raw`` is sent as the body as it is (for malformed JSON)."""
        from rest_framework.test import APIClient

        return persona_caller(APIClient(), self.token)(user, method, path, body, raw=raw)

    def tenant(self, scope: str = "team-a", **quota: Any) -> str:
        """A new tenant made by the admin through the API (deleted when the module ends)."""
        name = f"e{uuid.uuid4().hex[:10]}"
        self.tenants.append(name)
        body = {"name": name, "cert": CERT, "scope": scope, "quota": quota}
        created = self.call("admin", "post", "/tenants", body)
        assert created.status_code == 200, created.content
        return name

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.k8s)

    def cr(self, tenant: str, name: str) -> dict[str, Any] | None:
        try:
            found = cast(
                dict[str, Any], self.custom().get_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def crs(self, tenant: str) -> list[str]:
        items = self.custom().list_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL)["items"]
        return sorted(item["metadata"]["name"] for item in items)

    def cleanup(self) -> None:
        """Delete the module's tenants through the API, their namespaces' deletions started first.

        The API deletes one tenant at a time and waits for its namespace to be gone, and the namespace
        controller waits out a pod's grace period (30 s) before it looks again: 43 s for each tenant
        that ran an endpoint, measured. Started together here, with the pods removed at once, those
        waits shrink to the namespace controller's few seconds and overlap; the API's deletion then
        finds the namespace terminating or gone and removes the rest (a deletion it handles anyway).
        Only a head start: when it fails, the API's deletions below still do the whole job. A 404 (no
        namespace left and no bucket: a tenant a test already took apart) still gets ``remove_tenant``,
        which removes a store identity such a tenant may have left.
        """
        with contextlib.suppress(ApiException, urllib3.exceptions.HTTPError, OSError):
            namespaces_delete_started(self.env, self.tenants)
        for name in self.tenants:
            deleted = self.call("admin", "delete", f"/tenants/{name}")
            if deleted.status_code != 200:
                remove_tenant(self.env, name)


def apply_management_api_rbac(k8s: client.ApiClient) -> None:
    """The cluster's roles of the API's own identity, as this checkout has them (the devstack applies
    the same file when it starts; a devstack started from an older checkout lacks the host-claim rules)."""
    from kubernetes import dynamic

    api = dynamic.DynamicClient(k8s)
    for manifest in yaml.safe_load_all((ROOT / "helm/imm/files/rbac/management-api.yaml").read_text()):
        if manifest:
            resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
            api.server_side_apply(resource, body=manifest, field_manager="imm-devstack", force_conflicts=True)


@pytest.fixture(scope="module")
def platform(
    request: pytest.FixtureRequest,
    devstack_env: dict[str, str],
    user_token: Callable[[str], str],
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    # A module may name a database of its own (`BROKER_REDIS_DB`): its operations then never meet another
    # endpoints module's worker on the shared devstack.
    database = getattr(request.module, "BROKER_REDIS_DB", ENDPOINTS_REDIS_DB)
    broker = devstack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{database}"
    logs = tmp_path_factory.mktemp("endpoint-workers")
    with override_settings(**platform_values(devstack_env)), django_db_blocker.unblock():
        previous_broker = use_broker(broker)
        env = {
            **os.environ,
            **devstack_env,
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": broker,
        }
        pool = WorkerPool(env, logs)
        pool.start("endpoints")
        found = Platform(
            env=devstack_env,
            token=user_token,
            k8s=config.new_client_from_config(devstack_env["KUBECONFIG"]),
            s3=admin_s3_client(devstack_env),
        )
        apply_management_api_rbac(found.k8s)
        try:
            yield found
        finally:
            found.cleanup()
            pool.stop_all()
            use_broker(previous_broker)


@pytest.fixture(scope="module")
def controller(devstack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """A real `manage.py run_controller` with this checkout's controller RBAC and templates, and a lease of its own
    (tests.servings.conftest.controller_sandbox; the API still checks servings in `imm-servings`)."""
    admin = config.new_client_from_config(devstack_env["KUBECONFIG"])
    with controller_sandbox(admin, devstack_env["KUBECONFIG"]) as sandbox:
        env = {**os.environ, **devstack_env, **sandbox, "PYTHONUNBUFFERED": "1"}
        env.setdefault("DJANGO_SECRET_KEY", "integration-tests-only")
        env["DATABASE_URL"] = "sqlite://:memory:"
        lease = f"imm-controller-endpoints-{uuid.uuid4().hex[:6]}"
        process = ControllerProcess(env, lease, Path(tmp_path_factory.mktemp("controller")) / "controller.log").start()
        try:
            process.wait_leading()
            yield process
        finally:
            process.stop()
            sys.stdout.write(process.text()[-2000:] if process.text() else "")
