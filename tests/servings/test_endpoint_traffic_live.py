"""Endpoint traffic on the real node: the devstack's Prometheus scrapes a real Triton endpoint, and
`GET /tenants/<t>/endpoints/<e>/metrics` returns its request rate after requests were sent.

The tenant is made from the tenants app's manifests (no provisioning task), the InferenceEndpoint CR
by the admin, and its children rendered as the controller renders them (owned by the CR, so the
namespace's deletion takes everything). Skipped when the real node or Prometheus is off.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from rest_framework.test import APIClient

from servings.catalogue import shipped_templates
from servings.controller.rendering import ServingTemplate, render_endpoint
from tenants import manifests
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.platform_admin import admin_s3_client, remove_tenant, team_a_tenant_create
from tests.servings.conftest import wait_for
from tests.servings.test_triton_live import ADDER_CONFIG, ADDER_MODEL, devstack_platform

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

REQUESTS_SENT = 40


def _prometheus_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=3) as answer:  # noqa: S310 -- the devstack's loopback URL
            return bool(answer.status == 200)
    except OSError:
        return False


def _has(prometheus: str, query: str) -> bool:
    """True when an instant query (asked of Prometheus directly, as the test's own check) finds a series."""
    encoded = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query?{encoded}", timeout=5) as answer:  # noqa: S310 -- loopback
        return bool(json.load(answer)["data"]["result"])


def _infer(url: str) -> None:
    body = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]})
    request = urllib.request.Request(url, data=body.encode())  # noqa: S310 -- a Service on this machine
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        assert json.load(answer)["outputs"][0]["data"] == [3.75]


def _create(create: Callable[[], Any]) -> None:
    """Create an object; a controller running beside (make dev) may have made it from the CR first."""
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise


@pytest.mark.django_db
def test_prometheus_scrapes_a_triton_endpoint_and_the_route_returns_its_request_rate(
    admin: client.ApiClient, devstack_env: dict[str, str], platform_settings: Any, user_token: Any
) -> None:
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    prometheus = devstack_env.get("PROMETHEUS_URL", "")
    if not prometheus or not _prometheus_up(prometheus):
        pytest.skip("the devstack's Prometheus is not running (python -m devstack up starts it)")
    platform_settings.PROMETHEUS_URL = prometheus
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    custom = client.CustomObjectsApi(admin)
    s3 = admin_s3_client(devstack_env)
    tenant = f"trf-{uuid.uuid4().hex[:8]}"
    try:
        team_a_tenant_create(admin, s3, tenant, "metrics-test")
        for key, text in (("adder/1/config.pbtxt", ADDER_CONFIG), ("adder/1/model.py", ADDER_MODEL)):
            s3.put_object(Bucket=tenant, Key=key, Body=text.replace("FACTOR", "1").encode())
        secret = manifests.store_secret(
            tenant,
            access_key=devstack_env["S3_ACCESS_KEY_ID"],
            secret_key=devstack_env["S3_SECRET_ACCESS_KEY"],
            endpoint_url=devstack_env["IMM_DEVSTACK_S3_CLUSTER_URL"],
            region=devstack_env["S3_REGION"],
        )
        core.create_namespaced_secret(tenant, secret)
        spec = {
            "endpointName": "adder",
            "modelName": "adder",
            "modelVersionPolicy": "{latest{}}",
            "subjectName": "client",
            "servingName": "triton",
            "replicas": 1,
        }
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceEndpoint",
            "metadata": {"name": "adder"},
            "spec": spec,
        }
        cr = custom.create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, body)
        template = ServingTemplate("triton", shipped_templates()["triton"])
        objects = {obj["kind"]: obj for obj in render_endpoint(cr, template, devstack_platform(devstack_env))}
        _create(lambda: core.create_namespaced_config_map(tenant, objects["ConfigMap"]))
        _create(lambda: core.create_namespaced_service(tenant, objects["Service"]))
        _create(lambda: apps.create_namespaced_deployment(tenant, objects["Deployment"]))

        def ready() -> bool:
            status = apps.read_namespaced_deployment("adder", tenant).status
            return bool(status.ready_replicas == 1)

        wait_for(ready, timeout=240, what="the triton endpoint to be ready on the real node")
        # A counter's first scraped value is its baseline: requests count only once Prometheus scrapes the pod.
        scraped = f'up{{job="serving-pods",namespace="{tenant}"}} == 1'
        wait_for(lambda: _has(prometheus, scraped), timeout=120, interval=2, what="Prometheus to scrape the pod")
        url = f"http://{core.read_namespaced_service('adder', tenant).spec.cluster_ip}:8000/v2/models/adder/infer"
        for _ in range(REQUESTS_SENT):  # over about ten seconds: two scrapes or more see them grow
            _infer(url)
            time.sleep(0.25)

        def traffic(user: str) -> Any:
            return APIClient().get(
                f"/tenants/{tenant}/endpoints/adder/metrics?range=5m&step=5s",
                HTTP_AUTHORIZATION=f"Bearer {user_token(user)}",
            )

        def seen(key: str) -> Callable[[], dict[str, list[float]] | None]:
            def points() -> dict[str, list[float]] | None:
                """The non-null points of each series, once series ``key`` shows the requests."""
                answer = traffic("alice")
                assert answer.status_code == 200, answer.content
                series = answer.json()["data"]["series"]
                found = {name: [value for _, value in series[name] if value is not None] for name in series}
                return found if any(found[key]) else None

            return points

        points = wait_for(seen("requestRate"), timeout=120, interval=5, what="the route to show the request rate")
        assert max(points["requestRate"]) > 0
        # Every request succeeded: the error rate is a series of zeros, not missing.
        assert points["errorRate"]
        assert set(points["errorRate"]) == {0}
        # Latency comes from Triton's summaries (the template turns them on). A controller of another
        # test on the shared cluster may re-render the pods from an older template without them.
        if _has(prometheus, f'nv_inference_request_summary_us{{namespace="{tenant}",quantile="0.5"}} > 0'):
            points = wait_for(seen("latencyP50Ms"), timeout=60, interval=5, what="the route to show latency")
            assert max(points["latencyP95Ms"]) >= max(points["latencyP50Ms"]) > 0

        # The console's endpoint page draws the request rate (server-rendered SVG).
        from tests.console.test_console_units import signed_in

        # Its points are whole steps of the 15-minute range, so the requests show once the newest step
        # has passed them (up to a step after the API route, which was asked at 5 s steps).
        console = signed_in("alice@example.com", ["team-a"])

        def drawn() -> bool:
            page = console.get(f"/console/tenants/{tenant}/endpoints/adder/?range=15m")
            assert page.status_code == 200
            figure = page.content.decode().split('data-series="requestRate"', 1)[1].split("</figure>", 1)[0]
            return '<polyline class="series" points="' in figure

        wait_for(drawn, timeout=150, interval=5, what="the console page to draw the request rate")

        outsider = traffic("bob")
        assert outsider.status_code == 403
        assert set(outsider.json()) >= {"title", "code"}
    finally:
        remove_tenant(devstack_env, tenant)
