"""The `mlserver` serving template: what it renders, that its pods are Pod Security "restricted", and
the init container's fetch script (taken from the rendered ConfigMap) against a fake bucket.
"""

from __future__ import annotations

import copy
import io
import json
import types
from pathlib import Path
from typing import Any

import pytest

from devstack import realnode
from servings.catalogue import shipped_templates
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint
from servings.podsecurity import object_violations

pytestmark = pytest.mark.unit

PLATFORM = Platform(domain="imm.local")
CR: dict[str, Any] = {
    "apiVersion": "ai.intel.com/v1",
    "kind": "InferenceEndpoint",
    "metadata": {"name": "iris", "namespace": "team-a", "uid": "1234-uid"},
    "spec": {
        "endpointName": "iris",
        "modelName": "flowers",
        "modelVersionPolicy": "{latest{}}",
        "subjectName": "client.example.com",
        "servingName": "mlserver",
        "replicas": 1,
        "resources": {"requests": {"memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    },
}


def render(policy: str | None = None, platform: Platform = PLATFORM) -> dict[str, dict[str, Any]]:
    cr = copy.deepcopy(CR)
    if policy is not None:
        cr["spec"]["modelVersionPolicy"] = policy
    template = ServingTemplate("mlserver", shipped_templates()["mlserver"])
    return {obj["kind"]: obj for obj in render_endpoint(cr, template, platform)}


def _pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("{specific{versions:1 versions:12 }}", {"kind": "specific", "versions": [1, 12]}),
        ("{latest{}}", {"kind": "latest", "versions": []}),
        ("{all{}}", {"kind": "all", "versions": []}),
    ],
)
def test_model_settings_carry_the_model_name_the_bucket_and_the_policy(policy: str, expected: dict[str, Any]) -> None:
    settings = json.loads(render(policy)["ConfigMap"]["data"]["model.json"])
    assert settings == {"name": "flowers", "bucket": "team-a", "version_policy": expected}


def test_pods_meet_pod_security_restricted_and_prefer_the_real_node() -> None:
    objects = render()
    pod = _pod(objects)
    assert object_violations(objects["Deployment"]) == []
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = pod["initContainers"] + pod["containers"]
    assert [c["name"] for c in containers] == ["fetch-model", "mlserver"]
    for container in containers:
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert {kind for volume in pod["volumes"] for kind in volume if kind != "name"} == {"configMap", "emptyDir"}
    assert pod["tolerations"] == [{"key": realnode.PLACEMENT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def test_mlserver_serves_v2_over_rest_and_grpc_from_the_fetched_folder() -> None:
    objects = render()
    pod = _pod(objects)
    (init,) = pod["initContainers"]
    (server,) = pod["containers"]
    assert init["image"] == server["image"] == "seldonio/mlserver:1.7.1"
    assert init["command"] == ["python3", "/config/fetch.py", "/config/model.json", "/models"]
    assert server["command"] == ["mlserver", "start", "/models"]
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env["MLSERVER_HTTP_PORT"] == "8080"
    assert env["MLSERVER_GRPC_PORT"] == "8081"
    assert env["MLSERVER_PARALLEL_WORKERS"] == "0"
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == {"http": 8080, "grpc": 8081, "metrics": 8082}
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert server["resources"] == {"requests": {"memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in init["env"] if "valueFrom" in e}
    assert secrets == {
        "AWS_ACCESS_KEY_ID": "minio.access_key_id",
        "AWS_SECRET_ACCESS_KEY": "minio.access_secret_key",
        "AWS_ENDPOINT_URL": "minio.endpoint_url",
        "AWS_REGION": "minio.minio_region",
    }
    service = objects["Service"]
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {("http", 8080), ("grpc", 8081)}
    annotations = service["metadata"]["annotations"]
    assert annotations["ai.intel.com/protocol"] == "Open Inference Protocol (KServe V2)"
    assert annotations["ai.intel.com/http-path"] == "/v2/models/flowers/infer"
    assert json.loads(annotations["ai.intel.com/example-request"])["inputs"][0]["datatype"] == "FP32"
    backend = objects["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "iris", "port": {"number": 8081}}


def test_the_platform_setting_chooses_the_image_of_both_containers() -> None:
    mirrored = _pod(render(platform=Platform(domain="imm.local", image_registry="mirror.internal:5000/ai")))
    assert {c["image"] for c in mirrored["initContainers"] + mirrored["containers"]} == {
        "mirror.internal:5000/ai/seldonio/mlserver:1.7.1"
    }
    chosen = Platform(
        domain="imm.local", image_registry="mirror.internal:5000", serving_images={"mlserver": "local/mlserver:1"}
    )
    pod = _pod(render(platform=chosen))
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {"local/mlserver:1"}


def fetch() -> types.ModuleType:
    """The init container's script, loaded from the rendered ConfigMap as a module."""
    module = types.ModuleType("fetch")
    exec(compile(render()["ConfigMap"]["data"]["fetch.py"], "fetch.py", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.mark.parametrize(
    ("policy", "served"),
    [
        ({"kind": "latest", "versions": []}, [12]),
        ({"kind": "all", "versions": []}, [1, 3, 12]),
        ({"kind": "specific", "versions": [3, 7]}, [3]),
        ({"kind": "specific", "versions": [7]}, []),
    ],
)
def test_served_versions_follow_the_policy_numerically(policy: dict[str, Any], served: list[int]) -> None:
    assert fetch().served_versions({1: {}, 12: {}, 3: {}}, policy) == served


def test_model_settings_pick_the_runtime_from_the_model_file_or_keep_the_uploaded_one() -> None:
    script = fetch()
    sklearn = script.model_settings(None, {"model.joblib": "k"}, "flowers", 3)
    assert sklearn == {
        "name": "flowers",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"version": "3", "uri": "./model.joblib"},
    }
    xgboost = script.model_settings(None, {"model.ubj": "k", "notes.txt": "k"}, "flowers", 1)
    assert xgboost["implementation"] == "mlserver_xgboost.XGBoostModel"
    uploaded = {"name": "whatever", "implementation": "my.Runtime", "parameters": {"version": "9", "extra": {"a": 1}}}
    kept = script.model_settings(uploaded, {"weights.bin": "k"}, "flowers", 2)
    assert kept == {
        "name": "flowers",
        "implementation": "my.Runtime",
        "parameters": {"version": "2", "extra": {"a": 1}},
    }


def test_a_version_without_a_loadable_model_fails_with_the_reason() -> None:
    with pytest.raises(SystemExit) as failed:
        fetch().model_settings(None, {"readme.md": "k"}, "flowers", 4)
    assert "flowers/4 holds no model file MLServer can load" in str(failed.value)
    assert "found readme.md" in str(failed.value)


class FakeS3:
    """The calls fetch.py makes, on a dict of keys (boto3 is faked in the module's namespace)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, _name: str) -> Any:
        outer = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:  # noqa: N803 (boto3's names)
                return [{"Contents": [{"Key": key} for key in sorted(outer.objects) if key.startswith(Prefix)]}]

        return Paginator()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[Key])}

    def download_file(self, bucket: str, key: str, target: str) -> None:
        Path(target).write_bytes(self.objects[key])


def run_fetch(tmp_path: Path, objects: dict[str, bytes], policy: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = render(policy)["ConfigMap"]["data"]
    (tmp_path / "model.json").write_text(data["model.json"])
    script = fetch()
    fake = types.ModuleType("boto3")
    fake.client = lambda *_args, **_kwargs: FakeS3(objects)  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "boto3", fake)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://store.invalid")
    script.main(["fetch.py", str(tmp_path / "model.json"), str(tmp_path / "models")])
    return tmp_path / "models"


def test_fetch_lays_out_each_served_version_with_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = {
        "flowers/1/model.joblib": b"one",
        "flowers/2/model.joblib": b"two",
        "flowers/2/model-settings.json": b'{"name": "x", "parameters": {"version": "v", "extra": 1}}',
        "flowers/2/../escape": b"never",
        "other/2/model.joblib": b"other model",
    }
    models = run_fetch(tmp_path, objects, "{all{}}", monkeypatch)
    files = sorted(str(p.relative_to(models)) for p in models.rglob("*") if p.is_file())
    assert files == [
        "flowers/1/model-settings.json",
        "flowers/1/model.joblib",
        "flowers/2/model-settings.json",
        "flowers/2/model.joblib",
    ]
    assert (models / "flowers/2/model.joblib").read_bytes() == b"two"
    second = json.loads((models / "flowers/2/model-settings.json").read_text())
    assert second == {
        "name": "flowers",
        "parameters": {"version": "2", "extra": 1, "uri": "./model.joblib"},
        "implementation": "mlserver_sklearn.SKLearnModel",
    }


def test_fetch_fails_with_the_reason_when_no_version_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as failed:
        run_fetch(tmp_path, {"flowers/1/model.joblib": b"one"}, "{specific{versions:5 }}", monkeypatch)
    assert "no version of model 'flowers' in bucket 'team-a'" in str(failed.value)
    assert "versions found: 1" in str(failed.value)
