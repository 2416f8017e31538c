"""The live status the API reports, as pure functions of the CR, Deployment, pods and events."""

from __future__ import annotations

from typing import Any

import pytest

from endpoints.status import (
    deployment_status,
    event_entries,
    list_entries,
    pod_counts,
    reason_and_message,
    view,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _domain(settings: Any) -> None:
    settings.PLATFORM_DOMAIN = "imm.example"


def deployment(desired: int = 1, **status: int) -> dict[str, Any]:
    return {"metadata": {"name": "d"}, "spec": {"replicas": desired}, "status": status}


@pytest.mark.parametrize(
    ("dep", "word"),
    [
        (None, "pending"),
        (deployment(2, availableReplicas=1, unavailableReplicas=1), "not fully available"),
        (deployment(1, unavailableReplicas=1), "unavailable"),
        (deployment(1, availableReplicas=1, replicas=1), "available"),
        (deployment(0), "scaled to 0"),
        (deployment(0, replicas=0, availableReplicas=0), "scaled to 0"),
        # Kubernetes omits zero counters; a zero that is sent is still "not present".
        (deployment(1, availableReplicas=0, unavailableReplicas=1), "unavailable"),
        # A Deployment that has not reported yet is pending, not "scaled to 0" as in the original.
        ({"metadata": {"name": "d"}, "spec": {"replicas": 3}}, "pending"),
        # Scaling down to 0: still serving until the pods are gone.
        (deployment(0, availableReplicas=2), "available"),
    ],
)
def test_deployment_status_words(dep, word):
    assert deployment_status(dep) == word


def cr(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"endpointName": name, **spec}}


def test_list_is_every_cr_sorted_with_its_deployment_merged():
    crs = [cr("zeta"), cr("alpha"), cr("mid")]
    deployments = {"alpha": deployment(1, availableReplicas=1), "zeta": deployment(0)}
    assert list_entries(crs, deployments, "team") == [
        {"name": "alpha", "url": "alpha-team.imm.example:443", "status": "available"},
        {"name": "mid", "url": "mid-team.imm.example:443", "status": "pending"},
        {"name": "zeta", "url": "zeta-team.imm.example:443", "status": "scaled to 0"},
    ]
    assert list_entries([], deployments, "team") == []


def pod(phase: str, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"p-{phase}"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def test_pod_counts_phases_and_skips_terminating_pods():
    pods = [pod("Running"), pod("Running"), pod("Pending"), pod("Failed"), pod("Succeeded"), pod("Unknown")]
    pods.append(pod("Running", deleting=True))
    pods.append({"metadata": {"name": "no-status"}})
    assert pod_counts(pods) == {"running pods": 2, "pending pods": 1, "failed pods": 1}
    assert pod_counts([]) == {"running pods": 0, "pending pods": 0, "failed pods": 0}


def condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def test_reason_prefers_a_failure_over_not_ready():
    degraded = {
        "status": {
            "conditions": [
                condition("Ready", "False", "RollingOut", "0/1 replicas available"),
                condition("Degraded", "True", "QuotaExceeded", "ResourceQuota team is exhausted"),
            ]
        }
    }
    assert reason_and_message(degraded) == ("QuotaExceeded", "ResourceQuota team is exhausted")
    ready = {"status": {"conditions": [condition("Ready", "True", "Available"), condition("Degraded", "False", "Ok")]}}
    assert reason_and_message(ready) == ("Available", "")
    assert reason_and_message({"metadata": {}}) == ("Pending", "the controller has not reported on this endpoint yet")


def test_view_keeps_the_documented_keys_in_order_then_adds_new_ones():
    endpoint = cr("predict", subjectName="client", resources={"requests": {"cpu": "1"}})
    endpoint["metadata"]["annotations"] = {"imm.ai.intel.com/paused-replicas": "3"}
    endpoint["status"] = {"conditions": [condition("Ready", "True", "Available", "all 2 replicas available")]}
    shown = view(endpoint, deployment(2, availableReplicas=2), [pod("Running"), pod("Running")], "team")
    assert list(shown) == [
        "endpoint status",
        "endpoint url",
        "subject name",
        "resources",
        "replicas",
        "status",
        "reason",
        "message",
        "paused",
        "conditions",
        "protocol",
        "autoscaling",
    ]
    assert shown["endpoint status"] == {"running pods": 2, "pending pods": 0, "failed pods": 0}
    assert shown["endpoint url"] == "predict-team.imm.example:443"
    assert shown["subject name"] == "client"
    assert shown["resources"] == {"requests": {"cpu": "1"}}
    assert shown["replicas"] == {"available": 2, "unavailable": None}
    assert (shown["status"], shown["reason"], shown["paused"]) == ("available", "Available", True)
    assert shown["conditions"] == endpoint["status"]["conditions"]
    assert shown["protocol"] is None  # no Service given


def rendered_service(serving: str, model: str = "iris") -> dict[str, Any]:
    """The Service a shipped template renders for endpoint `predict` of tenant `team`."""
    from servings.catalogue import shipped_templates
    from servings.controller.rendering import Platform, ServingTemplate, render_endpoint

    endpoint = cr("predict", subjectName="c", modelName=model, servingName=serving)
    endpoint["metadata"].update(uid="uid", namespace="team")
    objects = render_endpoint(endpoint, ServingTemplate(serving, shipped_templates()[serving]), Platform("imm.example"))
    return next(obj for obj in objects if obj["kind"] == "Service")


def test_view_says_how_to_call_a_v2_endpoint_from_its_rendered_service():
    shown = view(cr("predict", subjectName="c"), None, [], "team", rendered_service("mlserver"))
    example = (
        "curl -s -H 'Content-Type: application/json' -d "
        """'{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP32","data":[1.0,2.0]}]}' """
        "http://predict.team.svc:8080/v2/models/iris/infer"
    )
    assert shown["protocol"] == {
        "name": "Open Inference Protocol (KServe V2)",
        "httpUrl": "http://predict.team.svc:8080/v2/models/iris/infer",
        "grpcAddress": "predict.team.svc:8081",
        "grpcService": "inference.GRPCInferenceService",
        "exampleRequest": example,
    }
    triton = view(cr("predict", subjectName="c"), None, [], "team", rendered_service("triton"))["protocol"]
    assert (triton["httpUrl"], triton["grpcAddress"]) == (
        "http://predict.team.svc:8000/v2/models/iris/infer",
        "predict.team.svc:8001",
    )


def test_view_quotes_the_example_for_a_shell_and_leaves_out_what_the_service_does_not_say():
    service = {
        "metadata": {
            "name": "predict",
            "namespace": "team",
            "annotations": {
                "ai.intel.com/protocol": "Mine",
                "ai.intel.com/example-request": '{"text": "it\'s"}',
                "ai.intel.com/http-path": "/predict",
            },
        },
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    shown = view(cr("predict", subjectName="c"), None, [], "team", service)["protocol"]
    assert shown["grpcAddress"] is None
    assert shown["grpcService"] is None
    assert shown["exampleRequest"] == (
        "curl -s -H 'Content-Type: application/json' -d '{\"text\": \"it'\"'\"'s\"}' http://predict.team.svc:80/predict"
    )
    silent = {**service, "metadata": {"name": "predict", "namespace": "team"}}
    assert view(cr("predict", subjectName="c"), None, [], "team", silent)["protocol"] is None


def test_view_of_an_endpoint_without_deployment_or_resources():
    shown = view(cr("fresh", subjectName="c"), None, [], "team")
    assert shown["resources"] == "Not specified"
    assert shown["replicas"] == {"available": None, "unavailable": None}
    assert (shown["status"], shown["reason"], shown["paused"], shown["conditions"]) == (
        "pending",
        "Pending",
        False,
        [],
    )


def test_events_are_sorted_deduplicated_and_flattened():
    events: list[dict[str, Any]] = [
        {
            "metadata": {"uid": "2"},
            "involvedObject": {"kind": "Pod", "name": "p-1"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "back-off",
            "count": 4,
            "lastTimestamp": "2026-01-01T00:00:09Z",
        },
        {
            "metadata": {"uid": "1"},
            "involvedObject": {"kind": "Deployment", "name": "predict"},
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "message": "Scaled up",
            "eventTime": "2026-01-01T00:00:01.000000Z",
            "series": {"count": 2},
        },
    ]
    entries = event_entries([*events, events[0]])
    assert entries == [
        {
            "time": "2026-01-01T00:00:01.000000Z",
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "object": "Deployment/predict",
            "message": "Scaled up",
            "count": 2,
        },
        {
            "time": "2026-01-01T00:00:09Z",
            "type": "Warning",
            "reason": "BackOff",
            "object": "Pod/p-1",
            "message": "back-off",
            "count": 4,
        },
    ]
