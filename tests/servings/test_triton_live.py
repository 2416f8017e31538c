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

pytestmark = pytest.mark.integration


@pytest.fixture
def restricted_namespace(admin: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(admin)
    name = f"psa-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    yield name
    core.delete_namespace(name)


def rendered(namespace: str, policy: str = "{latest{}}") -> dict[str, dict[str, Any]]:
    cr = {
        "apiVersion": "ai.intel.com/v1",
        "kind": "InferenceEndpoint",
        "metadata": {"name": "ranker", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {
            "endpointName": "ranker",
            "modelName": "ranker",
            "modelVersionPolicy": policy,
            "subjectName": "client",
            "servingName": "triton",
        },
    }
    template = ServingTemplate("triton", shipped_templates()["triton"])
    return {obj["kind"]: obj for obj in render_endpoint(cr, template, Platform(domain="imm.local"))}


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
