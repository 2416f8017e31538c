"""The `triton` template against the devstack: Pod Security admission and the model arrangement.

- kube-apiserver's own PodSecurity admission judges a pod made from the rendered Deployment's pod
  template (a dry run, so nothing is created) in a namespace that enforces `restricted`, as tenant
  namespaces will. A pod with the seccomp profile removed is refused there, so the check can fail.
- The init container's script, taken from the rendered ConfigMap, arranges a model from the
  devstack's S3 (run here on the host, with the variables the pod gets from the store secret).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from servings.catalogue import shipped_templates
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint
from tenants import manifests
from tests.servings.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.real_node]


@pytest.fixture
def restricted_namespace(admin: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(admin)
    name = f"psa-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    # The service-account controller must make `default` before pods can be admitted.
    wait_for(lambda: core.list_namespaced_service_account(name).items, what="default service account")
    yield name
    core.delete_namespace(name)


def rendered(
    namespace: str, policy: str = "{latest{}}", model: str = "ranker", platform: Platform | None = None
) -> dict[str, dict[str, Any]]:
    cr = {
        "apiVersion": "ai.intel.com/v1",
        "kind": "InferenceEndpoint",
        "metadata": {"name": model, "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {
            "endpointName": model,
            "modelName": model,
            "modelVersionPolicy": policy,
            "subjectName": "client",
            "servingName": "triton",
        },
    }
    template = ServingTemplate("triton", shipped_templates()["triton"])
    platform = platform or Platform(domain="imm.local")
    return {obj["kind"]: obj for obj in render_endpoint(cr, template, platform)}


def devstack_platform(devstack_env: dict[str, str]) -> Platform:
    """The platform values the devstack's controller renders with: its own image builds (SERVING_IMAGES)."""
    return Platform(domain="imm.local", serving_images={"triton": devstack_env["IMM_DEVSTACK_TRITON_IMAGE"]})


def triton_pod(namespace: str) -> dict[str, Any]:
    deployment = rendered(namespace)["Deployment"]
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ranker-probe", "namespace": namespace, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def test_triton_pods_are_admitted_under_restricted(admin: client.ApiClient, restricted_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    created = core.create_namespaced_pod(restricted_namespace, triton_pod(restricted_namespace), dry_run="All")
    assert created.metadata.name == "ranker-probe"

    unconfined = copy.deepcopy(triton_pod(restricted_namespace))
    del unconfined["spec"]["securityContext"]["seccompProfile"]
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(restricted_namespace, unconfined, dry_run="All")
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "seccompProfile" in message


@pytest.fixture
def model_bucket(devstack_env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """A bucket with model `ranker` versions 1 and 3 (each with its config.pbtxt) and 12 (without)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=devstack_env["S3_ENDPOINT_URL"],
        aws_access_key_id=devstack_env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=devstack_env["S3_SECRET_ACCESS_KEY"],
        region_name=devstack_env["S3_REGION"],
    )
    bucket = f"triton-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    files = {
        "ranker/1/config.pbtxt": 'name: "old"\nbackend: "python"\nmax_batch_size: 0\n',
        "ranker/1/model.py": "# version 1\n",
        "ranker/3/config.pbtxt": 'name: "x"\nbackend: "python"\nmax_batch_size: 8\nversion_policy: { all { } }\n',
        "ranker/3/model.py": "# version 3\n",
        "ranker/3/assets/vocabulary.txt": "a b c\n",
        "ranker/12/model.py": "# version 12 has no config.pbtxt\n",
        "other/1/model.py": "# another model\n",
    }
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    yield bucket, s3
    for key in files:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


def run_arrange(
    devstack_env: dict[str, str], bucket: str, policy: str, repository: Path
) -> subprocess.CompletedProcess[str]:
    configmap = rendered(bucket, policy)["ConfigMap"]["data"]
    (repository.parent / "arrange.py").write_text(configmap["arrange.py"])
    (repository.parent / "model.json").write_text(configmap["model.json"])
    env = {
        "AWS_ACCESS_KEY_ID": devstack_env["S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": devstack_env["S3_SECRET_ACCESS_KEY"],
        "AWS_ENDPOINT_URL": devstack_env["S3_ENDPOINT_URL"],
        "AWS_REGION": devstack_env["S3_REGION"],
        "S3_VERIFY_SSL": "0",
    }
    script, settings = repository.parent / "arrange.py", repository.parent / "model.json"
    argv = [sys.executable, str(script), str(settings), str(repository)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_arrange_copies_the_served_versions_and_the_newest_configuration(
    devstack_env: dict[str, str], model_bucket: tuple[str, Any], tmp_path: Path
) -> None:
    bucket, _s3 = model_bucket
    repository = tmp_path / "models"
    result = run_arrange(devstack_env, bucket, "{specific{versions:1 versions:3 }}", repository)
    assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(repository)) for p in repository.rglob("*") if p.is_file())
    assert files == ["ranker/1/model.py", "ranker/3/assets/vocabulary.txt", "ranker/3/model.py", "ranker/config.pbtxt"]
    assert (repository / "ranker" / "3" / "model.py").read_text() == "# version 3\n"
    assert (repository / "ranker" / "config.pbtxt").read_text() == (
        'name: "ranker"\nbackend: "python"\nmax_batch_size: 8\nversion_policy: { specific: { versions: [ 1, 3 ] } }\n'
    )


def test_arrange_fails_with_the_reason_when_the_newest_version_has_no_configuration(
    devstack_env: dict[str, str], model_bucket: tuple[str, Any], tmp_path: Path
) -> None:
    bucket, _s3 = model_bucket
    result = run_arrange(devstack_env, bucket, "{latest{}}", tmp_path / "models")
    assert result.returncode != 0
    assert "ranker/12/config.pbtxt is missing" in result.stderr
    nothing = run_arrange(devstack_env, bucket, "{specific{versions:7 }}", tmp_path / "other")
    assert nothing.returncode != 0
    assert "no version of model 'ranker'" in nothing.stderr
    assert "versions found: 1, 3, 12" in nothing.stderr


# A python-backend model whose versions answer differently: version 1 adds, version 2 adds x10.
ADDER_CONFIG = """name: "uploaded-name"
backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 2 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
ADDER_MODEL = """import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            y = pb_utils.Tensor("Y", np.array([x.sum() * FACTOR], dtype=np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
        return responses
"""


def _infer(url: str) -> list[float]:
    request = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]})
    post = urllib.request.Request(url, data=request.encode())  # noqa: S310 -- http:// to a Service on this machine
    with urllib.request.urlopen(post, timeout=30) as response:  # noqa: S310
        answer = json.load(response)
    assert answer["model_name"] == "adder"
    data: list[float] = answer["outputs"][0]["data"]
    return data


CLIENT = """import json, sys, urllib.request
body = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]}).encode()
with urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=body), timeout=30) as response:
    print(json.dumps(json.load(response)["outputs"][0]["data"]))
"""


def _infer_from_a_pod(core: client.CoreV1Api, namespace: str, devstack_env: dict[str, str], url: str) -> list[float]:
    restricted = client.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=1000,
        allow_privilege_escalation=False,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="v2-client"),
        spec=client.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            node_selector={"imm.ai.intel.com/real-node": "true"},
            tolerations=[client.V1Toleration(key="imm.ai.intel.com/real-node", operator="Exists", effect="NoSchedule")],
            containers=[
                client.V1Container(
                    name="client",
                    image=devstack_env["IMM_DEVSTACK_BASE_IMAGE"],
                    image_pull_policy="Never",
                    command=["python3", "-c", CLIENT, url],
                    security_context=restricted,
                )
            ],
        ),
    )
    core.create_namespaced_pod(namespace, pod)

    def finished() -> client.V1Pod | None:
        current = core.read_namespaced_pod("v2-client", namespace)
        return current if current.status.phase in ("Succeeded", "Failed") else None

    done = wait_for(finished, timeout=120, what="the client pod to finish")
    logs = core.read_namespaced_pod_log("v2-client", namespace)
    assert done.status.phase == "Succeeded", logs
    data: list[float] = json.loads(logs.strip().splitlines()[-1])
    return data


def test_triton_endpoint_on_the_real_node_serves_the_version_its_policy_names(
    admin: client.ApiClient, devstack_env: dict[str, str]
) -> None:
    """The rendered ConfigMap, Service and Deployment, applied as the controller would, on the real node.

    A restricted namespace, the tenant's store secret pointing at the object store as pods reach it,
    versions 1 and 2 of a model in the tenant's bucket; V2 inference through the Service answers
    with version 1 (from the host, and from a client pod: pod -> Service -> pod on the bridge), then,
    after the policy names version 2 (the pods roll), with version 2.
    """
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    tenant = f"trt-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=tenant, labels=labels)))
    s3 = boto3.client(
        "s3",
        endpoint_url=devstack_env["S3_ENDPOINT_URL"],
        aws_access_key_id=devstack_env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=devstack_env["S3_SECRET_ACCESS_KEY"],
        region_name=devstack_env["S3_REGION"],
    )
    s3.create_bucket(Bucket=tenant)
    files = {}
    for version, factor in ((1, 1), (2, 10)):
        files[f"adder/{version}/config.pbtxt"] = ADDER_CONFIG
        files[f"adder/{version}/model.py"] = ADDER_MODEL.replace("FACTOR", str(factor))
    try:
        for key, body in files.items():
            s3.put_object(Bucket=tenant, Key=key, Body=body.encode())
        secret = manifests.store_secret(
            tenant,
            access_key=devstack_env["S3_ACCESS_KEY_ID"],
            secret_key=devstack_env["S3_SECRET_ACCESS_KEY"],
            endpoint_url=devstack_env["IMM_DEVSTACK_S3_CLUSTER_URL"],
            region=devstack_env["S3_REGION"],
        )
        core.create_namespaced_secret(tenant, secret)

        # The devstack's own build, as the platform setting SERVING_IMAGES names it for the controller.
        platform = devstack_platform(devstack_env)

        def apply(policy: str) -> None:
            objects = rendered(tenant, policy, model="adder", platform=platform)
            for obj in objects.values():
                obj["metadata"].pop("ownerReferences")  # no CR here: the garbage collector would take them
            configmap, service, deployment = objects["ConfigMap"], objects["Service"], objects["Deployment"]
            try:
                core.replace_namespaced_config_map("adder", tenant, configmap)
                apps.patch_namespaced_deployment("adder", tenant, deployment)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                core.create_namespaced_config_map(tenant, configmap)
                core.create_namespaced_service(tenant, service)
                apps.create_namespaced_deployment(tenant, deployment)

        def rolled_out() -> bool:
            current = apps.read_namespaced_deployment("adder", tenant)
            status = current.status
            pods = core.list_namespaced_pod(tenant, label_selector="endpoint=adder").items
            return bool(
                status.observed_generation == current.metadata.generation
                and status.updated_replicas == status.ready_replicas == status.replicas == 1
                and len(pods) == 1
                and pods[0].spec.node_name == devstack_env["IMM_DEVSTACK_REAL_NODE_NAME"]
            )

        apply("{specific{versions:1 }}")
        wait_for(rolled_out, timeout=240, what="the triton endpoint to be ready on the real node")
        url = f"http://{core.read_namespaced_service('adder', tenant).spec.cluster_ip}:8000/v2/models/adder/infer"
        assert _infer(url) == [3.75]
        (pod,) = core.list_namespaced_pod(tenant, label_selector="endpoint=adder").items
        arranged = core.read_namespaced_pod_log(pod.metadata.name, tenant, container="arrange-model")
        assert "arrange: model 'adder': versions [1]" in arranged
        # An in-cluster client: a pod on the real node calls the Service (pod -> Service -> pod).
        assert _infer_from_a_pod(core, tenant, devstack_env, url) == [3.75]

        apply("{specific{versions:2 }}")
        wait_for(lambda: rolled_out() and _infer(url) == [37.5], timeout=240, what="the endpoint to serve version 2")
    finally:
        core.delete_namespace(tenant)
        for key in files:
            s3.delete_object(Bucket=tenant, Key=key)
        s3.delete_bucket(Bucket=tenant)
