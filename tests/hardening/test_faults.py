"""Faults: an upstream that does not answer gives a clear 503 (with Retry-After) on every route that
needs it, never a 500, and leaves nothing half-made.

The local platform is shared, so nothing of it is stopped: this process's settings point at a
closed port instead, which is what a stopped part looks like to the API.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.hardening.test_access_matrix import TENANT_ROUTES, fill
from tests.platform_admin import remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def model_routes() -> list[tuple[str, str, Any]]:
    """The model and upload routes (the endpoint, robot and usage routes need no object store)."""
    return [
        (m, t, body)
        for (m, t), (_, body) in TENANT_ROUTES.items()
        if "{tenant}" in t and not any(part in t for part in ("/endpoints", "/robots", "/usage"))
    ]


# Answered from the database alone (an unknown direct upload), or queued for the worker (import),
# so they do not need the object store in this process.
STORE_FREE = {
    ("GET", "/tenants/{tenant}/uploads/{upload_id}"),
    ("DELETE", "/tenants/{tenant}/uploads/{upload_id}"),
    ("POST", "/tenants/{tenant}/uploads/{upload_id}/complete"),
    ("POST", "/tenants/{tenant}/models/import"),
}


def check_all_503(call: Any, persona: str, tenant: str, upstream: str) -> list[str]:
    wrong = []
    for method, template, raw in model_routes():
        if upstream == "object store" and (method, template) in STORE_FREE:
            continue
        body = None if raw is None else json.loads(json.dumps(raw).replace("{tenant}", tenant))
        response = call(persona, method, fill(template, tenant, "no-such-upload"), body)
        shape = json.loads(response.content) if response.content else {}
        if response.status_code != 503 or not response.get("Retry-After") or "code" not in shape:
            wrong.append(
                f"{upstream} down: {persona} {method} {template}: {response.status_code} {response.content[:160]!r}"
            )
    return wrong


def test_store_or_cluster_down_is_503_on_every_model_route(
    call, operations_worker, platform_settings, devstack_env, tmp_path
):
    from tests.tenants.test_tenants_api import CERT

    tenant = f"hf{uuid.uuid4().hex[:8]}"
    body = {"name": tenant, "cert": CERT, "scope": "team-a", "quota": {}}
    try:
        assert call("admin", "POST", "/tenants", body, HTTP_PREFER="").status_code == 200
        store, kubeconfig = platform_settings.S3_ENDPOINT_URL, platform_settings.IMM_KUBECONFIG

        platform_settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
        platform_settings.S3_MAX_ATTEMPTS = 1
        wrong = check_all_503(call, "alice", tenant, "object store")
        platform_settings.S3_ENDPOINT_URL = store

        broken = yaml.safe_load(Path(kubeconfig).read_text())
        for cluster in broken["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{closed_port()}"
        (tmp_path / "kubeconfig").write_text(yaml.safe_dump(broken))
        platform_settings.IMM_KUBECONFIG = str(tmp_path / "kubeconfig")
        platform_settings.IMM_KUBE_RETRIES = 0
        platform_settings.IMM_MODEL_ACCESS_CACHE_SECONDS = 0  # no cached "may act here" from before
        wrong += check_all_503(call, "alice", tenant, "kubernetes")
        detail = call("alice", "GET", f"/tenants/{tenant}")
        if detail.status_code != 503:
            wrong.append(f"kubernetes down: GET /tenants/{{name}}: {detail.status_code}")
        platform_settings.IMM_KUBECONFIG = kubeconfig
        assert not wrong, "\n".join(wrong)
    finally:
        call("admin", "DELETE", f"/tenants/{tenant}", HTTP_PREFER="")
        remove_tenant(devstack_env, tenant)


def test_broker_down_refuses_tenant_creation_with_503_and_creates_nothing(call, platform_settings, devstack_env):
    """The operation cannot be queued: the request says so (503), and no namespace appears."""
    from inferencemgmt.celery import app as celery_app
    from tests.tenants.test_tenants_api import CERT

    tenant = f"hr{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/15"
    forget_broker_connections(celery_app)
    try:
        body = {"name": tenant, "cert": CERT, "scope": "team-a", "quota": {}}
        response = call("admin", "POST", "/tenants", body, HTTP_PREFER="")
        assert response.status_code == 503, response.content
        assert response.get("Retry-After")
        core = client.CoreV1Api(config.new_client_from_config(devstack_env["KUBECONFIG"]))
        with pytest.raises(ApiException) as missing:
            core.read_namespace(tenant)
        assert missing.value.status == 404
    finally:
        celery_app.conf.broker_url = previous
        forget_broker_connections(celery_app)
        remove_tenant(devstack_env, tenant)


def forget_broker_connections(celery_app: Any) -> None:
    """Make the next send connect afresh to the configured broker (the pools are built lazily)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
