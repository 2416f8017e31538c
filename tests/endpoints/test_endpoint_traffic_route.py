"""`GET /tenants/<t>/endpoints/<e>/metrics` against the live platform, without serving pods: who may ask,
what is refused, and the answers when Prometheus is not configured or not reachable."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from rest_framework.test import APIClient

from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.platform_admin import admin_s3_client, remove_tenant, team_a_tenant_create

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenant_with_endpoint(devstack_env: dict[str, str]) -> Iterator[str]:
    """A team-a tenant with one InferenceEndpoint CR (on the fake nodes: no traffic, no series)."""
    admin = config.new_client_from_config(devstack_env["KUBECONFIG"])
    tenant = f"trr-{uuid.uuid4().hex[:8]}"
    try:
        team_a_tenant_create(admin, admin_s3_client(devstack_env), tenant, "metrics-test")
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceEndpoint",
            "metadata": {"name": "quiet"},
            "spec": {
                "endpointName": "quiet",
                "modelName": "quiet-model",
                "subjectName": "client",
                "servingName": "triton",
                "replicas": 0,
            },
        }
        client.CustomObjectsApi(admin).create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, body)
        yield tenant
    finally:
        remove_tenant(devstack_env, tenant)


def _get(token: str, path: str) -> Any:
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_members_get_empty_series_for_an_endpoint_without_traffic(
    tenant_with_endpoint: str, platform_settings: Any, user_token: Any, devstack_env: dict[str, str]
) -> None:
    if not devstack_env.get("PROMETHEUS_URL"):
        pytest.skip("the devstack's Prometheus is not configured (python -m devstack up starts it)")
    platform_settings.PROMETHEUS_URL = devstack_env["PROMETHEUS_URL"]
    for user in ("alice", "admin"):
        answer = _get(user_token(user), f"/tenants/{tenant_with_endpoint}/endpoints/quiet/metrics?range=15m")
        assert answer.status_code == 200, answer.content
        data = answer.json()["data"]
        assert data["end"] - data["start"] == 900
        assert data["step"] == 7  # about 120 points by default
        assert data["series"] == {"requestRate": [], "errorRate": [], "latencyP50Ms": [], "latencyP95Ms": []}


def test_outsiders_are_refused_and_unknown_endpoints_are_404(
    tenant_with_endpoint: str, platform_settings: Any, user_token: Any, devstack_env: dict[str, str]
) -> None:
    platform_settings.PROMETHEUS_URL = devstack_env.get("PROMETHEUS_URL", "")
    outsider = _get(user_token("bob"), f"/tenants/{tenant_with_endpoint}/endpoints/quiet/metrics")
    assert outsider.status_code == 403
    assert outsider.json()["code"] == "kubernetes_forbidden"
    missing = _get(user_token("alice"), f"/tenants/{tenant_with_endpoint}/endpoints/nothing/metrics")
    assert missing.status_code == 404
    assert missing.json()["code"] == "endpoint_not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("range=1w", "range"),
        ("range=1m", "range"),
        ("range=8d", "range"),
        ("range=1h&step=1s", "step"),
        ("range=7d&step=10s", "step"),
        ("range=1h&step=2h", "step"),
        ("range=1h&query=up", "query"),
        ('range=1h"}or{', "range"),
    ],
)
def test_bad_ranges_and_steps_are_400_in_the_one_error_shape(
    tenant_with_endpoint: str, platform_settings: Any, user_token: Any, query: str, field: str
) -> None:
    platform_settings.PROMETHEUS_URL = f"http://127.0.0.1:{_closed_port()}"
    answer = _get(user_token("alice"), f"/tenants/{tenant_with_endpoint}/endpoints/quiet/metrics?{query}")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "validation_failed"
    assert field in body["description"]


def test_without_prometheus_url_a_clear_503(tenant_with_endpoint: str, platform_settings: Any, user_token: Any) -> None:
    platform_settings.PROMETHEUS_URL = ""
    answer = _get(user_token("alice"), f"/tenants/{tenant_with_endpoint}/endpoints/quiet/metrics")
    assert answer.status_code == 503
    body = answer.json()
    assert body["code"] == "metrics_not_configured"
    assert "PROMETHEUS_URL" in body["description"]
    assert answer["Retry-After"]


def test_prometheus_down_is_a_503_naming_it(tenant_with_endpoint: str, platform_settings: Any, user_token: Any) -> None:
    platform_settings.PROMETHEUS_URL = f"http://127.0.0.1:{_closed_port()}"
    answer = _get(user_token("alice"), f"/tenants/{tenant_with_endpoint}/endpoints/quiet/metrics?range=1h")
    assert answer.status_code == 503
    body = answer.json()
    assert body["code"] == "prometheus_unavailable"
    assert body["title"] == "Prometheus is unavailable"


@pytest.mark.django_db
def test_console_endpoint_page_draws_the_charts_or_says_why_not(
    tenant_with_endpoint: str, platform_settings: Any, devstack_env: dict[str, str]
) -> None:
    from tests.console.test_console_units import signed_in

    browser = signed_in("alice@example.com", ["team-a"])
    page = f"/console/tenants/{tenant_with_endpoint}/endpoints/quiet/"
    platform_settings.PROMETHEUS_URL = ""
    answer = browser.get(page)
    assert answer.status_code == 200
    assert b'id="traffic-unavailable"' in answer.content
    assert b"PROMETHEUS_URL" in answer.content
    if not devstack_env.get("PROMETHEUS_URL"):
        return
    platform_settings.PROMETHEUS_URL = devstack_env["PROMETHEUS_URL"]
    answer = browser.get(page + "?range=15m")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert html.count("<svg viewBox=") == 4
    assert html.count(">no data</text>") == 4  # no pods, no series
    assert 'class="range current" href="?range=15m#traffic"' in html
    assert "<script>" not in html
    assert "style=" not in html
