"""The `triton` serving template: what it renders, that its pods are Pod Security "restricted",
and the model arrangement its init container runs (the script from the rendered ConfigMap).
"""

from __future__ import annotations

import copy
import json
import types
from typing import Any

import pytest

from devstack import realnode
from servings.catalogue import shipped_templates
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint

pytestmark = pytest.mark.unit

PLATFORM = Platform(domain="imm.local")
CR: dict[str, Any] = {
    "apiVersion": "ai.intel.com/v1",
    "kind": "InferenceEndpoint",
    "metadata": {"name": "ranker", "namespace": "team-a", "uid": "1234-uid"},
    "spec": {
        "endpointName": "ranker",
        "modelName": "ranker",
        "modelVersionPolicy": "{specific{versions:1 versions:12 }}",
        "subjectName": "client.example.com",
        "servingName": "triton",
        "replicas": 2,
        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
    },
}


def render(policy: str | None = None) -> dict[str, dict[str, Any]]:
    cr = copy.deepcopy(CR)
    if policy is not None:
        cr["spec"]["modelVersionPolicy"] = policy
    template = ServingTemplate("triton", shipped_templates()["triton"])
    return {obj["kind"]: obj for obj in render_endpoint(cr, template, PLATFORM)}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("{specific{versions:1 versions:12 }}", {"specific": {"versions": [1, 12]}}),
        ("{latest{}}", {"latest": {"num_versions": 1}}),
        ("{all{}}", {"all": {}}),
    ],
)
def test_model_settings_carry_the_name_the_bucket_and_the_policy(policy: str, expected: dict[str, Any]) -> None:
    settings = json.loads(render(policy)["ConfigMap"]["data"]["model.json"])
    assert settings == {"name": "ranker", "bucket": "team-a", "version_policy": expected}


def _pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return pod


def test_pods_meet_pod_security_restricted() -> None:
    pod = _pod(render())
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] != 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = pod["initContainers"] + pod["containers"]
    assert [c["name"] for c in containers] == ["arrange-model", "triton"]
    for container in containers:
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert all("hostPort" not in port for port in container.get("ports", []))
    # Restricted allows only these volume types; no host namespaces either.
    assert {kind for volume in pod["volumes"] for kind in volume if kind != "name"} == {"configMap", "emptyDir"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    assert pod["automountServiceAccountToken"] is False


def test_pods_may_run_on_the_devstack_real_node_and_prefer_it() -> None:
    pod = _pod(render())
    assert pod["tolerations"] == [{"key": realnode.PLACEMENT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    (term,) = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["preference"]["matchExpressions"] == [
        {"key": realnode.PLACEMENT_KEY, "operator": "In", "values": ["true"]}
    ]
    assert "nodeSelector" not in pod  # elsewhere the pods go wherever the scheduler puts them


def test_triton_serves_v2_over_rest_and_grpc_from_the_arranged_repository() -> None:
    objects = render()
    pod = _pod(objects)
    (init,) = pod["initContainers"]
    (server,) = pod["containers"]
    # Without a platform setting: the vendor's image, by repository path (no registry named).
    assert init["image"] == server["image"] == "nvidia/tritonserver:24.10-py3"
    assert init["command"] == ["python3", "/config/arrange.py", "/config/model.json", "/models"]
    assert server["command"][:2] == ["tritonserver", "--model-repository=/models"]
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}
    assert server["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in init["env"] if "valueFrom" in e}
    assert env == {
        "AWS_ACCESS_KEY_ID": "minio.access_key_id",
        "AWS_SECRET_ACCESS_KEY": "minio.access_secret_key",
        "AWS_ENDPOINT_URL": "minio.endpoint_url",
        "AWS_REGION": "minio.minio_region",
    }
    assert {(p["name"], p["port"]) for p in objects["Service"]["spec"]["ports"]} == {("http", 8000), ("grpc", 8001)}
    backend = objects["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "ranker", "port": {"number": 8001}}


def arrange() -> types.ModuleType:
    """The init container's script, loaded from the rendered ConfigMap as a module."""
    module = types.ModuleType("arrange")
    exec(compile(render()["ConfigMap"]["data"]["arrange.py"], "arrange.py", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.mark.parametrize(
    ("policy", "served"),
    [
        ({"latest": {"num_versions": 1}}, [12]),
        ({"latest": {"num_versions": 2}}, [3, 12]),
        ({"all": {}}, [1, 3, 12]),
        ({"specific": {"versions": [3, 7]}}, [3]),
        ({"specific": {"versions": [7]}}, []),
    ],
)
def test_served_versions_follow_the_policy_numerically(policy: dict[str, Any], served: list[int]) -> None:
    assert arrange().served_versions({1: [], 12: [], 3: []}, policy) == served


CONFIG = """# the version's own configuration
name: "whatever-the-uploader-wrote"
backend: "python"
max_batch_size: 0
version_policy: { all { } }
input [
  { name: "X", data_type: TYPE_FP32, dims: [ 2 ] }
]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]
parameters: { key: "note" value: { string_value: "name: \\"x\\" {" } }
"""


def test_configuration_takes_the_version_config_with_the_platform_name_and_policy() -> None:
    text = arrange().configuration(CONFIG, "ranker", {"specific": {"versions": [1, 12]}})
    assert text.startswith('name: "ranker"\n')
    assert text.endswith("version_policy: { specific: { versions: [ 1, 12 ] } }\n")
    assert "whatever-the-uploader-wrote" not in text
    assert "{ all { } }" not in text
    # Nested fields called `name` and strings with braces stay as they were.
    assert '{ name: "X", data_type: TYPE_FP32, dims: [ 2 ] }' in text
    assert '{ name: "Y" data_type: TYPE_FP32 dims: [ 1 ] }' in text
    assert 'string_value: "name: \\"x\\" {"' in text
    assert 'backend: "python"' in text


def test_configuration_refuses_text_that_is_not_protobuf_text() -> None:
    with pytest.raises(ValueError, match="not protobuf text"):
        arrange().configuration('name: "unterminated\n', "ranker", {"all": {}})
