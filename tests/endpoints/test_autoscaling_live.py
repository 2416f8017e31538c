"""Autoscaling on the live platform (README "Autoscaling"): the API as the user, the real controller,
kube-controller-manager's HPA controller and, on the real node, metrics-server and real CPU load.

- On kwok (always): the HPA is created, updated and removed with the endpoint's ``autoscaling``, is
  garbage-collected with the endpoint, survives pause/resume, and manual scaling is a 409 meanwhile.
- On the real node (skipped when it is off; marked ``slow``: a few minutes on two cores): a real
  ``triton`` endpoint with minReplicas 1, maxReplicas 3 scales out under CPU load generated here
  (V2 inference requests in a loop; the model burns 20 ms of CPU per request) and back in after the
  load stops, while its tenant's quota is never exceeded and every request is answered.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from inferencemgmt.quantities import quantity_value
from tests.conftest import ROOT
from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.servings.conftest import ControllerProcess, wait_for
from tests.tenants.test_tenants_api import CERT

pytestmark = [pytest.mark.integration, pytest.mark.real_node, pytest.mark.django_db(transaction=True)]

SCALING = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 60, "scaleDownStabilizationSeconds": 30}


CRD = ROOT / "helm" / "imm" / "crds" / "inference-endpoints.yaml"


def _schema_keeps_autoscaling(platform: Platform, tenant: str) -> bool:
    """A dry-run create: does the API server serve the schema with ``autoscaling`` right now?"""
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceEndpoint",
        "metadata": {"name": "schema-probe"},
        "spec": {**body("schema-probe"), "servingName": "triton", "autoscaling": SCALING},
    }
    made = platform.custom().create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, probe, dry_run="All")
    return "autoscaling" in made["spec"]


def apply_crd(platform: Platform) -> None:
    api = dynamic.DynamicClient(platform.k8s)
    for manifest in yaml.safe_load_all(CRD.read_text()):
        if manifest:
            resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
            api.server_side_apply(resource, body=manifest, field_manager="imm-devstack", force_conflicts=True)


def ensure_crd(platform: Platform, tenant: str) -> None:
    """This checkout's InferenceEndpoint schema, with ``autoscaling``, served (the devstack applies the
    same file when it starts; a session started from an older checkout re-applies its own, and the
    API server would then prune the field). Applied, and waited for, before every such write."""
    apply_crd(platform)
    wait_for(lambda: _schema_keeps_autoscaling(platform, tenant), 60, 0.5, "the CRD with autoscaling to be served")


def write(platform: Platform, method: str, path: str, payload: Any = None) -> Any:
    """A write as alice, with the schema that keeps ``autoscaling`` in place."""
    ensure_crd(platform, path.split("/")[2])
    return platform.call("alice", method, path, payload)


def body(name: str, **changes: Any) -> dict[str, Any]:
    return {"endpointName": name, "modelName": "resnet", "subjectName": "client", **changes}


def autoscaler(platform: Platform, tenant: str, name: str) -> Any:
    try:
        return client.AutoscalingV2Api(platform.k8s).read_namespaced_horizontal_pod_autoscaler(name, tenant)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def view(platform: Platform, tenant: str, name: str) -> dict[str, Any]:
    answer = platform.call("alice", "get", f"/tenants/{tenant}/endpoints/{name}")
    assert answer.status_code == 200, answer.content
    data: dict[str, Any] = answer.json()["data"]
    return data


@pytest.fixture(scope="module")
def live(platform: Platform, controller: ControllerProcess) -> str:
    """A team-a tenant with a CPU quota, whose endpoints the test controller renders."""
    return platform.tenant(**{"requests.cpu": "2", "maxEndpoints": 5})


def test_refusals_leave_nothing_behind(platform, live):
    base = f"/tenants/{live}/endpoints"
    too_many = platform.call(
        "alice",
        "post",
        base,
        body("big", resources={"requests.cpu": "500m"}, autoscaling={**SCALING, "maxReplicas": 5}),
    )
    assert too_many.status_code == 400
    assert too_many.json()["description"] == (
        'The "autoscaling" parameter is invalid. maxReplicas 5 does not fit the resource quota of tenant '
        f"{live}: requests.cpu: 5 x 500m exceeds the quota's 2"
    )
    no_cpu = platform.call(
        "alice", "post", base, body("nocpu", resources={"requests.memory": "1Gi"}, autoscaling=SCALING)
    )
    assert no_cpu.status_code == 400
    assert "requests.cpu" in no_cpu.json()["description"]
    inverted = platform.call(
        "alice", "post", base, body("inv", resources={"requests.cpu": "1"}, autoscaling={**SCALING, "minReplicas": 4})
    )
    assert inverted.status_code == 400
    assert inverted.json()["description"] == "autoscaling.minReplicas: 4 is greater than maxReplicas (3)"
    assert platform.crs(live) == []


def test_the_hpa_follows_the_endpoint(platform, live):
    base = f"/tenants/{live}/endpoints/elastic"
    created = write(
        platform,
        "post",
        f"/tenants/{live}/endpoints",
        body("elastic", resources={"requests.cpu": "500m"}, autoscaling=SCALING),
    )
    assert created.status_code == 200, created.content
    cr = platform.cr(live, "elastic")
    assert cr["spec"]["autoscaling"] == SCALING
    assert cr["spec"]["replicas"] == 1

    hpa = wait_for(lambda: autoscaler(platform, live, "elastic"), 120, 1, "the controller to create the HPA")
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 3)
    target = hpa.spec.scale_target_ref
    assert (target.api_version, target.kind, target.name) == ("ai.intel.com/v1", "InferenceEndpoint", "elastic")
    assert hpa.spec.metrics[0].resource.target.average_utilization == 60
    assert hpa.spec.behavior.scale_down.stabilization_window_seconds == 30
    (owner,) = hpa.metadata.owner_references
    assert (owner.kind, owner.uid) == ("InferenceEndpoint", cr["metadata"]["uid"])

    # Manual scaling is refused while the HPA owns the count; nothing changes.
    refused = platform.call("alice", "patch", f"{base}/replicas", {"replicas": 3})
    assert refused.status_code == 409
    assert refused.json()["code"] == "endpoint_autoscaled"
    assert platform.cr(live, "elastic")["spec"]["replicas"] == 1

    # The view shows the bounds at once, and the HPA's decision once the HPA controller has looked
    # (kwok's pods report no CPU, so that decision is that it cannot compute one).
    assert view(platform, live, "elastic")["autoscaling"]["maxReplicas"] == 3
    decided = wait_for(
        lambda: view(platform, live, "elastic")["autoscaling"]["lastDecision"], 120, 2, "the HPA's first decision"
    )
    assert decided["reason"]
    assert decided["message"]

    # New bounds reach the HPA; bounds over the quota are refused and change nothing.
    over = platform.call("alice", "patch", base, {"autoscaling": {**SCALING, "maxReplicas": 5}})
    assert over.status_code == 400
    assert over.json()["code"] == "endpoint_autoscaling_exceeds_quota"
    wider = write(platform, "patch", base, {"autoscaling": {**SCALING, "maxReplicas": 4}})
    assert wider.status_code == 200, wider.content
    wait_for(lambda: autoscaler(platform, live, "elastic").spec.max_replicas == 4, 120, 1, "the HPA to allow 4")

    # Pause scales to 0 and keeps the HPA (idle while the endpoint is at 0); resume restores the count.
    assert platform.call("alice", "post", f"{base}/pause").json()["data"]["values"] == {"replicas": 0}
    assert platform.cr(live, "elastic")["spec"]["replicas"] == 0
    time.sleep(20)  # one HPA sync period: it must not scale a paused endpoint back up
    assert platform.cr(live, "elastic")["spec"]["replicas"] == 0
    assert autoscaler(platform, live, "elastic") is not None
    assert platform.call("alice", "post", f"{base}/resume").json()["data"]["values"] == {"replicas": 1}

    # Autoscaling removed: the HPA goes, the count stays, and manual scaling works again.
    removed = platform.call("alice", "patch", base, {"autoscaling": None})
    assert removed.status_code == 200, removed.content
    assert "autoscaling" not in platform.cr(live, "elastic")["spec"]
    wait_for(lambda: autoscaler(platform, live, "elastic") is None, 120, 1, "the controller to delete the HPA")
    assert view(platform, live, "elastic")["autoscaling"] is None
    assert platform.call("alice", "patch", f"{base}/replicas", {"replicas": 2}).status_code == 200

    # Autoscaled again, then deleted: the HPA is garbage-collected with the endpoint.
    again = write(platform, "patch", base, {"autoscaling": {**SCALING, "minReplicas": 2}})
    assert again.status_code == 200, again.content
    wait_for(lambda: autoscaler(platform, live, "elastic"), 120, 1, "the HPA again")
    assert platform.call("alice", "delete", base).status_code == 200
    wait_for(lambda: autoscaler(platform, live, "elastic") is None, 120, 1, "the HPA to be collected")


# --- the real node: CPU load on a triton endpoint --------------------------------------------------
BURNER_CONFIG = """backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 2 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
# 20 ms of CPU per request (process time, so a throttled pod still burns exactly that much).
BURNER_MODEL = """import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            until = time.process_time() + 0.02
            while time.process_time() < until:
                pass
            y = pb_utils.Tensor("Y", np.array([x.sum()], dtype=np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
        return responses
"""
REQUEST = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]}).encode()
LOAD_THREADS = 3
# A small request and a low target: on a busy two-core machine a pod gets little CPU, yet 20 ms per
# request still puts it far over 30 % of 100m, while an idle Triton (about 10m) stays well under it.
# The quota counts pods (3), not CPU: on the shared devstack, test controllers of other checkouts render
# the same endpoints, and older triton templates give the init container no CPU request, which a CPU
# quota refuses. The autoscaling check reads `pods` like any other limit.
QUOTA = {"pods": "3", "maxEndpoints": 2}
REPLICA_CPU = {"requests.cpu": "100m", "limits.cpu": "500m"}


class Traffic:
    """V2 inference requests in a loop from this machine; every answer is checked, every failure kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _one(self) -> None:
        request = urllib.request.Request(self.url, data=REQUEST)  # noqa: S310 -- a Service on this machine
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer = json.load(response)
            ok = answer["outputs"][0]["data"] == [3.75]
            problem = None if ok else f"wrong answer {answer}"
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.sent += 1
            if problem is not None:
                self.failures.append(problem)

    def _loop(self, pause: float) -> None:
        while not self._stop.is_set():
            self._one()
            if pause:
                self._stop.wait(pause)

    def start(self, threads: int, pause: float = 0.0) -> Traffic:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._loop, args=(pause,), daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


class Watch:
    """Samples, every second, the most replicas and pods ever seen and whether the quota was exceeded."""

    def __init__(self, platform: Platform, tenant: str, name: str) -> None:
        self.platform, self.tenant, self.name = platform, tenant, name
        self.max_replicas = 0
        self.max_pods = 0
        self.over_quota: list[str] = []
        self.decisions: list[tuple[int, int]] = []
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self._samples += 1
        if self._samples % 5 == 1:
            # Sessions of other checkouts re-apply their older CRD when they start; without this one's
            # schema the API server would prune spec.autoscaling and status.autoscaler meanwhile.
            apply_crd(self.platform)
        cr = self.platform.cr(self.tenant, self.name) or {}
        self.max_replicas = max(self.max_replicas, int((cr.get("spec") or {}).get("replicas") or 0))
        mirrored = (cr.get("status") or {}).get("autoscaler") or {}
        if mirrored:
            decision = (int(mirrored.get("currentReplicas") or 0), int(mirrored.get("desiredReplicas") or 0))
            if not self.decisions or self.decisions[-1] != decision:
                self.decisions.append(decision)
        core = client.CoreV1Api(self.platform.k8s)
        pods = core.list_namespaced_pod(self.tenant, label_selector=f"ai.intel.com/inference-endpoint={self.name}")
        self.max_pods = max(self.max_pods, len([pod for pod in pods.items if pod.metadata.deletion_timestamp is None]))
        for quota in core.list_namespaced_resource_quota(self.tenant).items:
            for key, used in (quota.status.used or {}).items():
                hard = (quota.status.hard or {}).get(key)
                used_value, hard_value = quantity_value(used), quantity_value(hard or "")
                if used_value is not None and hard_value is not None and used_value > hard_value:
                    self.over_quota.append(f"{key}: used {used} > hard {hard}")

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._sample()
            except ApiException:
                continue  # a busy API server: the next sample counts

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _metrics_api_available(platform: Platform) -> bool:
    try:
        found = client.ApiregistrationV1Api(platform.k8s).read_api_service("v1beta1.metrics.k8s.io")
    except ApiException:
        return False
    return any(c.type == "Available" and c.status == "True" for c in found.status.conditions or [])


def _explain(platform: Platform, tenant: str, name: str, traffic: list[Traffic]) -> str:
    """What the HPA saw and what the traffic met, for a failure message."""
    hpa = autoscaler(platform, tenant, name)
    status = hpa.status.to_dict() if hpa is not None and hpa.status is not None else None
    sent = [(t.sent, t.failures[:3]) for t in traffic]
    return f"HPA status {status}; requests (sent, first failures) {sent}"


def _waited(platform: Platform, tenant: str, traffic: list[Traffic], predicate: Any, timeout: float, what: str) -> None:
    try:
        wait_for(predicate, timeout, 2, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {_explain(platform, tenant, 'burner', traffic)}") from None


def _tenant(platform: Platform, quota: dict[str, Any]) -> str:
    """A team-a tenant; on a busy machine provisioning may outlast the request (202 with a task),
    which is then waited for."""
    name = f"as{uuid.uuid4().hex[:9]}"
    platform.tenants.append(name)  # deleted with the module's tenants, whatever happens below
    tenant_body = {"name": name, "cert": CERT, "scope": "team-a", "quota": quota}
    created = platform.call("admin", "post", "/tenants", tenant_body)
    if created.status_code == 202:
        task = created.json()["data"]["task"]["url"]

        def done() -> bool:
            state = platform.call("admin", "get", task).json()["data"]["state"]
            assert state not in ("FAILED", "CANCELLED"), state
            return bool(state == "SUCCEEDED")

        wait_for(done, 300, 2, "the tenant's provisioning")
    else:
        assert created.status_code == 200, created.content
    return name


def _available_replicas(platform: Platform, tenant: str, name: str) -> int:
    deployment = client.AppsV1Api(platform.k8s).read_namespaced_deployment(name, tenant)
    return int(deployment.status.available_replicas or 0)


@pytest.mark.slow
def test_a_triton_endpoint_scales_out_under_cpu_load_and_back_in(platform, controller, devstack_env):
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    if not _metrics_api_available(platform):
        pytest.skip("metrics-server is not serving (a devstack started before it existed): run `make devstack`")
    tenant = _tenant(platform, QUOTA)
    for key, text in {"burner/1/config.pbtxt": BURNER_CONFIG, "burner/1/model.py": BURNER_MODEL}.items():
        platform.s3.put_object(Bucket=tenant, Key=key, Body=text.encode())
    endpoints = f"/tenants/{tenant}/endpoints"
    scaling = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 30, "scaleDownStabilizationSeconds": 30}
    spec = {"modelName": "burner", "subjectName": "client", "servingName": "triton", "resources": REPLICA_CPU}
    # 4 replicas do not fit 3 pods: refused before anything is written.
    over = platform.call(
        "alice", "post", endpoints, {"endpointName": "burner", **spec, "autoscaling": {**scaling, "maxReplicas": 4}}
    )
    assert over.status_code == 400
    assert over.json()["code"] == "endpoint_autoscaling_exceeds_quota"
    made = write(platform, "post", endpoints, {"endpointName": "burner", **spec, "autoscaling": scaling})
    assert made.status_code == 200, made.content
    assert made.json()["data"]["warning"] == ""

    wait_for(lambda: _available_replicas(platform, tenant, "burner") == 1, 300, 2, "the first triton pod")
    service = client.CoreV1Api(platform.k8s).read_namespaced_service("burner", tenant)
    url = f"http://{service.spec.cluster_ip}:8000/v2/models/burner/infer"
    watch = Watch(platform, tenant, "burner").start()
    load = Traffic(url)
    probe = Traffic(url)
    began = time.monotonic()
    try:
        load.start(LOAD_THREADS)
        # Out: the HPA (15 s period) sees the CPU metrics-server scraped (15 s) and raises the count;
        # the new pods start on the node and pass their readiness probe.
        _waited(
            platform,
            tenant,
            [load],
            lambda: (
                (platform.cr(tenant, "burner") or {})["spec"]["replicas"] >= 2
                and _available_replicas(platform, tenant, "burner") >= 2
            ),
            300,
            "the endpoint to scale out under load",
        )
        out_seconds = time.monotonic() - began
        load.stop()
        # In: once the load stops, utilization falls and, after the 30 s scale-down window, the HPA
        # goes back to minReplicas. A light probe keeps checking that the endpoint answers meanwhile.
        probe.start(1, pause=1.0)
        _waited(
            platform,
            tenant,
            [load, probe],
            lambda: (
                (platform.cr(tenant, "burner") or {})["spec"]["replicas"] == 1
                and _available_replicas(platform, tenant, "burner") == 1
            ),
            300,
            "the endpoint to scale back in after the load",
        )
        in_seconds = time.monotonic() - began - out_seconds
        # The HPA reports the smaller count at its next sync; the endpoint shows it once copied.
        wait_for(lambda: watch.decisions and watch.decisions[-1] == (1, 1), 90, 1, "the endpoint to show the HPA at 1")
    finally:
        load.stop()
        probe.stop()
        watch.stop()
    print(  # the measured figures, shown with -s or on failure
        f"scale-out after {out_seconds:.0f}s, scale-in {in_seconds:.0f}s later; {load.sent} loaded requests, "
        f"{probe.sent} probes; decisions (current, desired) {watch.decisions}"
    )
    assert load.failures == [], load.failures[:5]
    assert probe.failures == [], probe.failures[:5]
    assert load.sent > 0
    assert probe.sent > 0
    assert watch.over_quota == []
    assert 2 <= watch.max_replicas <= 3
    assert watch.max_pods <= 3
    # What the endpoint showed (status.autoscaler, the view's source) followed the HPA out and back in.
    assert any(desired >= 2 for _, desired in watch.decisions), watch.decisions
    assert watch.decisions[-1] == (1, 1), watch.decisions
    shown = view(platform, tenant, "burner")["autoscaling"]
    assert shown["lastScaleTime"]
    assert shown["lastDecision"]["reason"]
