# The generated Kubernetes models are typed with Optional fields and model bodies; this script passes dicts.
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,misc,index"
"""Cost of the endpoint list and view routes on a 1,000-endpoint tenant, and create -> available latency.

Usage (with the devstack's env sourced):

    python benchmarks/endpoints_api.py [--endpoints 1000] [--samples 30] [--ready 20]

Figures are ratios against a baseline measured in the same run on the same machine:

- list: ``GET /tenants/<t>/endpoints`` as alice (token check, tenant check, both lists AS alice through
  impersonation, the merge, the JSON answer), against listing the same CRs and Deployments straight
  from the API server over the same transport (kube.py's client, raw JSON, no models), once as alice
  (the ratio that counts: target <= 1.5) and once with the admin's certificate (for reference: the
  API server's priority and fairness rules exempt the admin, so a busy cluster slows only alice).
- view: ``GET /tenants/<t>/endpoints/<e>`` against reading the same CR, Deployment and pods directly.
- create -> available: ``POST`` through the API, then the list route until the endpoint is
  ``available``, through a controller of the benchmark's own; p50 over ``--ready`` endpoints.

The tenant is made the way provisioning makes it (namespace, Role, RoleBinding, ResourceQuota from
``tenants.manifests``), without a bucket (the answers then carry the model warning). The 1,000
endpoints have 0 replicas and get the Deployment the controller would render (so kwok stays idle);
everything is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from kubernetes import client, config  # noqa: E402
from models_upload import controller_argv  # noqa: E402

from inferencemgmt import kube  # noqa: E402
from inferencemgmt.auth.identity import Identity  # noqa: E402
from servings.catalogue import shipped_templates  # noqa: E402
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint  # noqa: E402
from tenants import manifests  # noqa: E402
from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(samples: int, calls: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Each call ``samples`` times, taking turns, so that every variant sees the same cluster load
    (the shared API server's load drifts; timing one variant after the other measures the drift)."""
    for call in calls.values():
        call()  # warm caches (token keys, clients) once, outside the figures
    seconds: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(samples):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[label].append(time.perf_counter() - start)
    return seconds


def token(user: str) -> str:
    out = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "devstack.token", user], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def make_tenant(admin: client.ApiClient, name: str, max_endpoints: int) -> None:
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespace(manifests.namespace(name, ["team-a"], {}, "benchmark", "platform_admin"))
    rbac.create_namespaced_role(name, manifests.role(name))
    rbac.create_namespaced_role_binding(name, manifests.role_binding(name, ["team-a"]))
    core.create_namespaced_resource_quota(name, manifests.resource_quota(name, {"maxEndpoints": max_endpoints}))
    deadline = time.monotonic() + 60
    while not (core.read_namespaced_resource_quota(name, name).status.hard or {}):  # counted: creates may start
        if time.monotonic() > deadline:
            raise SystemExit(f"the quota controller did not count {name}/{name} within 60 s")
        time.sleep(0.2)


def fill(admin: client.ApiClient, tenant: str, count: int, domain: str) -> None:
    """``count`` endpoints at 0 replicas, each with the Deployment the controller would render."""
    template = ServingTemplate("tf-serving", shipped_templates()["tf-serving"])
    platform = Platform(domain=domain)

    def one(index: int) -> None:
        custom, apps = client.CustomObjectsApi(admin), client.AppsV1Api(admin)
        cr = custom.create_namespaced_custom_object(
            GROUP, VERSION, tenant, PLURAL, endpoint_body(f"ep{index:04d}", replicas=0)
        )
        cr["metadata"]["namespace"] = tenant
        deployment = next(obj for obj in render_endpoint(cr, template, platform) if obj["kind"] == "Deployment")
        try:
            apps.create_namespaced_deployment(tenant, deployment)
        except client.exceptions.ApiException as exc:
            if exc.status != 409:  # a controller running on the platform rendered it first: the same object
                raise

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))


def direct_json(direct: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """One call with the same transport the product uses (kube.py's client), as the admin, raw JSON."""
    return kube.call_json(direct, api, method, *args, **kwargs)


def report(label: str, ours: list[float], base: list[float]) -> float:
    ratio = statistics.median(ours) / statistics.median(base)
    print(
        f"{label:<22} API p50 {statistics.median(ours) * 1000:8.1f} ms  p95 {percentile(ours, 0.95) * 1000:8.1f} ms | "
        f"direct p50 {statistics.median(base) * 1000:8.1f} ms  p95 {percentile(base, 0.95) * 1000:8.1f} ms | "
        f"ratio (p50) {ratio:.2f}"
    )
    return ratio


def start_controller(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 -- our own interpreter and manage.py
        controller_argv(env), cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def create_to_available(api: Client, headers: dict[str, str], tenant: str, count: int) -> list[float]:
    seconds = []
    for index in range(count):
        name = f"ready{index:02d}"
        start = time.perf_counter()
        response = api.post(
            f"/tenants/{tenant}/endpoints",
            json.dumps({"endpointName": name, "modelName": "resnet", "subjectName": "client"}),
            content_type="application/json",
            **headers,
        )
        assert response.status_code == 200, response.content
        deadline = start + 300
        while time.perf_counter() < deadline:
            entries = api.get(f"/tenants/{tenant}/endpoints", **headers).json()["data"]["endpoints"]
            if next(entry["status"] for entry in entries if entry["name"] == name) == "available":
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"{name} did not become available within 300 s")
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--ready", type=int, default=20)
    args = parser.parse_args()

    setup_test_environment()
    env = dict(os.environ)
    admin = config.new_client_from_config(env["KUBECONFIG"])
    direct = kube.own_api_client(env["KUBECONFIG"])
    # The route acts as alice (impersonation), and the API server's priority and fairness rules treat
    # her requests unlike the admin's (exempt); the baseline that isolates the route's own cost is
    # the same calls as alice over the same client.
    as_alice = kube.api_client_for(Identity("alice@example.com", ("team-a",)))
    big, small = f"bench-ep-{uuid.uuid4().hex[:6]}", f"bench-ready-{uuid.uuid4().hex[:6]}"
    api = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token('alice')}"}
    controller = None
    try:
        make_tenant(admin, big, args.endpoints + 10)
        started = time.perf_counter()
        fill(admin, big, args.endpoints, env["PLATFORM_DOMAIN"])
        print(f"{args.endpoints} endpoints and Deployments made in {time.perf_counter() - started:.1f} s")

        listed = api.get(f"/tenants/{big}/endpoints", **headers)
        assert listed.status_code == 200, listed.content
        assert len(listed.json()["data"]["endpoints"]) == args.endpoints

        def lists(transport: Any) -> Callable[[], Any]:
            return lambda: (
                direct_json(
                    transport, "CustomObjectsApi", "list_namespaced_custom_object", GROUP, VERSION, big, PLURAL
                ),
                direct_json(transport, "AppsV1Api", "list_namespaced_deployment", big),
            )

        found = timed(
            args.samples,
            {
                "api": lambda: api.get(f"/tenants/{big}/endpoints", **headers),
                "as alice": lists(as_alice),
                "as admin": lists(direct),
            },
        )
        list_ratio = report("list, direct as alice", found["api"], found["as alice"])
        report("list, direct as admin", found["api"], found["as admin"])

        middle = f"ep{args.endpoints // 2:04d}"
        selector = f"ai.intel.com/inference-endpoint={middle}"

        def reads(transport: Any) -> Callable[[], Any]:
            return lambda: (
                direct_json(
                    transport, "CustomObjectsApi", "get_namespaced_custom_object", GROUP, VERSION, big, PLURAL, middle
                ),
                direct_json(transport, "AppsV1Api", "list_namespaced_deployment", big, label_selector=selector),
                direct_json(transport, "CoreV1Api", "list_namespaced_pod", big, label_selector=selector),
            )

        found = timed(
            args.samples,
            {
                "api": lambda: api.get(f"/tenants/{big}/endpoints/{middle}", **headers),
                "as alice": reads(as_alice),
                "as admin": reads(direct),
            },
        )
        report("view, direct as alice", found["api"], found["as alice"])
        report("view, direct as admin", found["api"], found["as admin"])

        if args.ready:
            make_tenant(admin, small, args.ready + 1)
            log = Path(tempfile.mkdtemp(prefix="imm-bench-")) / "controller.log"
            controller = start_controller(env, log)
            ready = create_to_available(api, headers, small, args.ready)
            print(
                f"create -> available over {args.ready} endpoints: p50 {statistics.median(ready):.1f} s, "
                f"p95 {percentile(ready, 0.95):.1f} s (the template's minReadySeconds is 10 s; log {log})"
            )
        print(f"list ratio {list_ratio:.2f} ({'within' if list_ratio <= 1.5 else 'ABOVE'} the 1.5 target)")
    finally:
        if controller is not None:
            controller.terminate()
            controller.wait(timeout=30)
        for name in (big, small):
            try:
                client.CoreV1Api(admin).delete_namespace(name)
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise


if __name__ == "__main__":
    main()
