"""One reconcile against a fake API server: what is applied, when, and what the status says."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inferencemgmt import kube
from inferencemgmt.errors import BadRequest, NotFound, UpstreamUnavailable
from servings.catalogue import serving_template_configmap, shipped_templates
from servings.controller.reconciler import Reconciler, TemplateCache
from servings.controller.rendering import Platform
from servings.controller.tenancy import TenantNamespaces

pytestmark = pytest.mark.unit


class FakeCluster:
    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.configmaps = {
            name: serving_template_configmap(name, data, "imm-servings") for name, data in shipped_templates().items()
        }
        self.deployments: dict[str, dict[str, Any]] = {}
        self.applied: list[str] = []
        self.status_writes = 0
        self.refuse: str | None = None
        self.autoscalers: dict[str, dict[str, Any]] = {}
        self.autoscaler_deletes = 0

    def call_json(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method == "get_namespaced_custom_object":
            key = f"{args[2]}/{args[4]}"
            if key not in self.endpoints:
                raise NotFound()
            return copy.deepcopy(self.endpoints[key])
        if method == "patch_namespaced_custom_object_status":
            self.status_writes += 1
            self.endpoints[f"{args[2]}/{args[4]}"]["status"] = copy.deepcopy(args[5]["status"])
            return {}
        if method == "read_namespaced_config_map":
            if args[0] not in self.configmaps:
                raise NotFound()
            return self.configmaps[args[0]]
        if method == "read_namespaced_deployment":
            key = f"{args[1]}/{args[0]}"
            if key not in self.deployments:
                raise NotFound()
            return copy.deepcopy(self.deployments[key])
        if method in ("list_namespaced_pod", "list_namespaced_replica_set"):
            return {"items": []}
        if method == "delete_namespaced_horizontal_pod_autoscaler":
            self.autoscaler_deletes += 1
            if self.autoscalers.pop(f"{args[1]}/{args[0]}", None) is None:
                raise NotFound()
            return {}
        if method == "read_namespaced_horizontal_pod_autoscaler":
            key = f"{args[1]}/{args[0]}"
            if key not in self.autoscalers:
                raise NotFound()
            return copy.deepcopy(self.autoscalers[key])
        raise AssertionError(f"unexpected call {method}")

    def server_side_apply(self, api_client: Any, manifest: dict[str, Any], field_manager: str) -> dict[str, Any]:
        assert field_manager == "imm-controller"
        if manifest["kind"] == self.refuse:
            raise BadRequest("Invalid parameter", f"{manifest['kind']} is invalid", code="kubernetes_invalid")
        self.applied.append(manifest["kind"])
        if manifest["kind"] == "HorizontalPodAutoscaler":
            key = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
            self.autoscalers[key] = {**copy.deepcopy(manifest), "status": self.autoscalers.get(key, {}).get("status")}
            return manifest
        if manifest["kind"] != "Deployment":
            return manifest
        key = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
        current = self.deployments.get(key)
        generation = 1 if current is None else current["metadata"]["generation"] + (current["spec"] != manifest["spec"])
        replicas = manifest["spec"]["replicas"]
        self.deployments[key] = {
            **copy.deepcopy(manifest),
            "metadata": {**manifest["metadata"], "generation": generation},
            "status": {
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "updatedReplicas": replicas,
            },
        }
        return copy.deepcopy(self.deployments[key])


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(kube, "call_json", fake.call_json)
    monkeypatch.setattr(kube, "server_side_apply", fake.server_side_apply)
    return fake


def tenants(*names: str, synced: bool = True) -> TenantNamespaces:
    """The namespace cache as the controller's watch fills it: ``names`` carry the tenant label."""
    cache = TenantNamespaces(lambda labels: labels.get("created_by") == "platform_admin", "created_by=platform_admin")
    if synced:
        cache.replace([{"metadata": {"name": n, "labels": {"created_by": "platform_admin"}}} for n in names])
    return cache


def reconciler(namespaces: TenantNamespaces | None = None) -> Reconciler:
    return Reconciler(
        None,
        platform=Platform("imm.local"),
        templates=TemplateCache(None, "imm-servings", ttl=0),
        namespaces=namespaces or tenants("t"),
    )


def add_endpoint(cluster: FakeCluster, name: str = "e", **spec: Any) -> None:
    cluster.endpoints[f"t/{name}"] = {
        "metadata": {"name": name, "namespace": "t", "uid": "u-1", "generation": 1},
        "spec": {
            "endpointName": name,
            "modelName": "resnet",
            "subjectName": "c",
            "servingName": "tf-serving",
            "replicas": 1,
            **spec,
        },
    }


def conditions(cluster: FakeCluster, name: str = "e") -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in cluster.endpoints[f"t/{name}"]["status"]["conditions"]}


def test_applies_four_objects_once_and_writes_ready(cluster):
    add_endpoint(cluster)
    worker = reconciler()
    assert worker.reconcile("t", "e") == "Ready"
    assert cluster.applied == ["ConfigMap", "Service", "Deployment", "Ingress"]
    assert conditions(cluster)["Ready"]["status"] == "True"
    writes = cluster.status_writes
    assert worker.reconcile("t", "e") == "Ready"
    assert cluster.applied == ["ConfigMap", "Service", "Deployment", "Ingress"]  # unchanged: nothing re-sent
    assert cluster.status_writes == writes  # unchanged: no status write either


def test_spec_change_and_drift_are_applied(cluster):
    add_endpoint(cluster)
    worker = reconciler()
    worker.reconcile("t", "e")
    cluster.endpoints["t/e"]["spec"]["modelName"] = "other"
    worker.reconcile("t", "e")
    resent = cluster.applied[4:]
    assert resent  # the children the model name is rendered into, and only those
    assert len(resent) < 4
    cluster.deployments["t/e"]["metadata"]["generation"] += 1  # someone edited it
    worker.reconcile("t", "e")
    assert cluster.applied[4 + len(resent) :] == ["ConfigMap", "Service", "Deployment", "Ingress"]  # all of it
    del cluster.deployments["t/e"]  # someone deleted it
    worker.reconcile("t", "e")
    assert cluster.applied[8 + len(resent) :] == ["ConfigMap", "Service", "Deployment", "Ingress"]


def test_a_scale_re_sends_the_deployment_alone_and_deletes_no_autoscaler(cluster):
    """A scale is the most frequent change: one apply, not four, and no HPA delete that can only 404."""
    add_endpoint(cluster)
    worker = reconciler()
    worker.reconcile("t", "e")
    assert cluster.autoscaler_deletes == 1  # the first apply checks for an HPA left by an earlier spec
    for replicas in (2, 1, 3):
        cluster.endpoints["t/e"]["spec"]["replicas"] = replicas
        worker.reconcile("t", "e")
        assert cluster.applied[-1] == "Deployment"
        assert cluster.deployments["t/e"]["spec"]["replicas"] == replicas
    assert cluster.applied == ["ConfigMap", "Service", "Deployment", "Ingress"] + ["Deployment"] * 3
    assert cluster.autoscaler_deletes == 1


def test_a_partial_apply_does_not_postpone_the_periodic_full_one(cluster):
    """Manual edits of the children a scale does not send are still undone ``reapply_seconds`` after the
    last full apply."""
    add_endpoint(cluster)
    now = [0.0]
    worker = Reconciler(
        None,
        platform=Platform("imm.local"),
        templates=TemplateCache(None, "imm-servings", ttl=0),
        namespaces=tenants("t"),
        reapply_seconds=100.0,
        clock=lambda: now[0],
    )
    worker.reconcile("t", "e")
    now[0] = 90.0
    cluster.endpoints["t/e"]["spec"]["replicas"] = 2
    worker.reconcile("t", "e")
    assert cluster.applied[4:] == ["Deployment"]
    now[0] = 101.0
    worker.reconcile("t", "e")
    assert cluster.applied[5:] == ["ConfigMap", "Service", "Deployment", "Ingress"]


def test_unknown_serving_and_render_failure_are_status_not_exceptions(cluster):
    add_endpoint(cluster, "lost", servingName="nope")
    broken = dict(shipped_templates()["tf-serving"])
    broken["ingress.tmpl"] = "{{ missing }}"
    cluster.configmaps["broken"] = serving_template_configmap("broken", broken, "imm-servings")
    add_endpoint(cluster, "bad", servingName="broken")
    worker = reconciler()
    assert worker.reconcile("t", "lost") == "Degraded"
    assert worker.reconcile("t", "bad") == "Degraded"
    assert conditions(cluster, "lost")["Degraded"]["reason"] == "ServingNotFound"
    assert conditions(cluster, "bad")["Degraded"]["reason"] == "RenderFailed"
    assert "missing" in conditions(cluster, "bad")["Degraded"]["message"]
    assert cluster.applied == []


def test_unlabelled_configmap_is_not_a_serving(cluster):
    cluster.configmaps["plain"] = {"metadata": {"name": "plain", "labels": {}}, "data": shipped_templates()["ovms"]}
    add_endpoint(cluster, servingName="plain")
    assert reconciler().reconcile("t", "e") == "Degraded"
    assert conditions(cluster)["Degraded"]["reason"] == "ServingNotFound"


def test_refused_object_is_reported_then_raised_for_backoff(cluster):
    add_endpoint(cluster)
    cluster.refuse = "Ingress"
    with pytest.raises(BadRequest):
        reconciler().reconcile("t", "e")
    degraded = conditions(cluster)["Degraded"]
    assert (degraded["reason"], degraded["message"]) == ("ApplyFailed", "Ingress e: Ingress is invalid")


def test_deleted_endpoint_is_left_to_garbage_collection(cluster):
    assert reconciler().reconcile("t", "gone") == "Deleted"
    assert cluster.applied == []


def test_endpoint_outside_a_tenant_namespace_gets_nothing_but_a_status(cluster):
    add_endpoint(cluster)
    assert reconciler(tenants("other")).reconcile("t", "e") == "Degraded"
    degraded = conditions(cluster)["Degraded"]
    assert degraded["reason"] == "NotATenantNamespace"
    assert "namespace t is not a tenant namespace" in degraded["message"]
    assert "url" not in cluster.endpoints["t/e"]["status"]
    assert cluster.applied == []


def test_before_the_namespaces_are_listed_nothing_is_decided(cluster):
    add_endpoint(cluster)
    with pytest.raises(UpstreamUnavailable):
        reconciler(tenants(synced=False)).reconcile("t", "e")
    assert cluster.applied == []
    assert cluster.status_writes == 0


def test_a_forbidden_template_is_reported_and_nothing_applied(cluster):
    """Defence in depth: a template stored before the save-time check (or edited in its ConfigMap)."""
    hostile = dict(shipped_templates()["tf-serving"])
    hostile["deployment.tmpl"] = hostile["deployment.tmpl"].replace(
        "      automountServiceAccountToken: false\n", "      hostNetwork: true\n"
    )
    assert "hostNetwork" in hostile["deployment.tmpl"]
    cluster.configmaps["hostile"] = serving_template_configmap("hostile", hostile, "imm-servings")
    add_endpoint(cluster, servingName="hostile")
    assert reconciler().reconcile("t", "e") == "Degraded"
    degraded = conditions(cluster)["Degraded"]
    assert degraded["reason"] == "TemplateForbidden"
    assert "spec.template.spec.hostNetwork" in degraded["message"]
    assert cluster.applied == []


def test_the_rendered_pods_never_mount_an_api_token(cluster):
    add_endpoint(cluster)
    reconciler().reconcile("t", "e")
    assert cluster.deployments["t/e"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


SCALING = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 60, "scaleDownStabilizationSeconds": 30}
HPA_STATUS = {
    "currentReplicas": 1,
    "desiredReplicas": 2,
    "lastScaleTime": "2026-12-06T13:00:00Z",
    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 140}}}],
    "conditions": [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "new size: 2",
         "lastTransitionTime": "2026-12-06T13:00:00Z"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "message": "cpu ok",
         "lastTransitionTime": "2026-12-06T12:59:00Z"},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "in range",
         "lastTransitionTime": "2026-12-06T12:59:00Z"},
    ],
}  # fmt: skip


def test_an_autoscaled_endpoint_gets_an_hpa_its_status_and_loses_both_when_autoscaling_goes(cluster):
    add_endpoint(cluster, autoscaling=SCALING, resources={"requests": {"cpu": "500m"}})
    worker = reconciler()
    worker.reconcile("t", "e")
    assert cluster.applied == ["ConfigMap", "Service", "Deployment", "Ingress", "HorizontalPodAutoscaler"]
    hpa = cluster.autoscalers["t/e"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "ai.intel.com/v1", "kind": "InferenceEndpoint", "name": "e"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 30}}
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert hpa["metadata"]["labels"]["ai.intel.com/inference-endpoint"] == "e"
    assert "autoscaler" not in cluster.endpoints["t/e"]["status"]  # the HPA has not reported yet

    # The HPA reports (its watch event queues the endpoint): the endpoint shows its decision.
    cluster.autoscalers["t/e"]["status"] = HPA_STATUS
    worker.reconcile("t", "e")
    mirrored = cluster.endpoints["t/e"]["status"]["autoscaler"]
    assert (mirrored["currentReplicas"], mirrored["desiredReplicas"], mirrored["currentCPUUtilization"]) == (1, 2, 140)
    assert mirrored["lastScaleTime"] == "2026-12-06T13:00:00Z"
    assert mirrored["lastDecision"] == {
        "reason": "SucceededRescale",
        "message": "new size: 2",
        "time": "2026-12-06T13:00:00Z",
    }
    assert len(cluster.applied) == 5  # the HPA's status changed nothing to apply

    # The HPA scales the CR: the Deployment follows spec.replicas.
    cluster.endpoints["t/e"]["spec"]["replicas"] = 2
    worker.reconcile("t", "e")
    assert cluster.deployments["t/e"]["spec"]["replicas"] == 2

    # Autoscaling removed: the HPA is deleted, the status forgets it, the replicas stay.
    del cluster.endpoints["t/e"]["spec"]["autoscaling"]
    worker.reconcile("t", "e")
    assert "t/e" not in cluster.autoscalers
    assert cluster.endpoints["t/e"]["status"]["autoscaler"] is None  # null in the merge patch: removed
    assert cluster.deployments["t/e"]["spec"]["replicas"] == 2


def test_an_endpoint_that_cannot_compute_shows_why(cluster):
    add_endpoint(cluster, autoscaling=SCALING)
    worker = reconciler()
    worker.reconcile("t", "e")
    cluster.autoscalers["t/e"]["status"] = {
        "currentReplicas": 0,
        "desiredReplicas": 0,
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "ok"},
            {"type": "ScalingActive", "status": "False", "reason": "ScalingDisabled",
             "message": "scaling is disabled since the replica count of the target is zero"},
        ],
    }  # fmt: skip
    worker.reconcile("t", "e")
    decision = cluster.endpoints["t/e"]["status"]["autoscaler"]["lastDecision"]
    assert decision["reason"] == "ScalingDisabled"
    assert cluster.endpoints["t/e"]["status"]["autoscaler"]["currentCPUUtilization"] is None


def test_an_endpoint_never_autoscaled_costs_one_delete_per_apply_only(cluster):
    add_endpoint(cluster)
    worker = reconciler()
    worker.reconcile("t", "e")
    worker.reconcile("t", "e")
    assert cluster.autoscaler_deletes == 1  # the second reconcile applied nothing, so deleted nothing
    assert "autoscaler" not in cluster.endpoints["t/e"]["status"]


class FakeLogs:
    """`kube.api_of(client, "CoreV1Api")` for the crash-log reader: counts reads, can fail like kwok."""

    def __init__(self, text: str | None) -> None:
        self.text = text
        self.reads: list[tuple[Any, ...]] = []

    def read_namespaced_pod_log(self, pod: str, namespace: str, **kwargs: Any) -> str:
        self.reads.append((pod, namespace, kwargs["container"], kwargs["previous"], kwargs["tail_lines"]))
        if self.text is None:
            raise UpstreamUnavailable("kubernetes", "the node keeps no logs")
        return self.text


def test_a_crash_log_is_read_once_per_restart_and_a_missing_one_is_no_failure(monkeypatch):
    logs = FakeLogs("I1 starting\nE1206 10:00:00.1 1 m.cc:1] \"failed to load 'm' version 1: bad\"\n")
    monkeypatch.setattr(kube, "api_of", lambda api_client, name: logs)
    read = reconciler()._log_tail("t")
    assert read("p", "server", 2, True) == logs.text
    assert read("p", "server", 2, True) == logs.text
    assert logs.reads == [("p", "t", "server", True, 200)]
    read("p", "server", 3, True)  # the next crash is read again
    assert len(logs.reads) == 2
    read("r", "server", 0, False)  # a first crash: the terminated container's own log
    assert logs.reads[-1] == ("r", "t", "server", False, 200)

    logs.text = None
    assert read("q", "server", 0, False) is None
    assert read("q", "server", 0, False) is None
    assert len(logs.reads) == 4
