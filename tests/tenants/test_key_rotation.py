"""Rotating a tenant's store key (POST /tenants/<name>/credentials/rotate) against the real store and cluster.

The store itself must refuse the old key afterwards and accept the new one, which the tenant's secret
holds. The same rotation with a Triton endpoint answering throughout is
tests/endpoints/test_rotation_serving.py (real node).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from inferencemgmt.operations.models import Operation
from tenants import manifests, rotation
from tests.platform_admin import admin_iam_client, admin_s3_client
from tests.tenants.test_tenant_credentials import (
    admin_k8s,  # noqa: F401 -- a fixture
    names,  # noqa: F401 -- a fixture
    new_name,
    s3_with,
    store_secret,
    tenant_body,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def with_key(secret: dict[str, str], devstack_env: dict[str, str]) -> Any:
    """An S3 client with the secret's key at the address this host reaches the store at (the secret's
    is the one pods use, on the real node's bridge)."""
    return s3_with({**secret, "minio.endpoint_url": devstack_env["S3_ENDPOINT_URL"]})


def wait_final(operation_id: str, timeout: float = 120.0) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation = Operation.objects.get(pk=operation_id)
        if operation.is_final:
            return operation
        time.sleep(0.3)
    raise AssertionError(
        f"operation {operation_id} not final after {timeout:.0f}s: {operation.state} {operation.steps}"
    )


def identity_keys(devstack_env: dict[str, str], tenant: str) -> list[str]:
    answer = admin_iam_client(devstack_env).list_access_keys(UserName=f"imm-tenant-{tenant}")
    return sorted(item["AccessKeyId"] for item in answer["AccessKeyMetadata"])


def test_rotation_gives_the_tenant_a_new_key_and_the_store_refuses_the_old_one(
    as_user,
    api,
    user_token,
    operations_worker,
    admin_k8s,  # noqa: F811
    devstack_env,
    names,  # noqa: F811
):
    name = new_name(names, "rot")
    assert as_user("admin", "post", "/tenants", tenant_body(name)).status_code == 200
    admin_s3_client(devstack_env).put_object(Bucket=name, Key="resnet/1/saved_model.pb", Body=b"weights")
    before = store_secret(admin_k8s, name)
    old = with_key(before, devstack_env)
    assert old.get_object(Bucket=name, Key="resnet/1/saved_model.pb")["Body"].read() == b"weights"

    # Refusals first: each in the one error shape, and none starts a rotation.
    as_alice = api.post(f"/tenants/{name}/credentials/rotate", HTTP_AUTHORIZATION=f"Bearer {user_token('alice')}")
    assert as_alice.status_code == 403, as_alice.content
    assert set(as_alice.json()) >= {"title", "code"}
    unknown = as_user("admin", "post", f"/tenants/{name}x/credentials/rotate")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "tenant_not_found"
    with_body = as_user("admin", "post", f"/tenants/{name}/credentials/rotate", {"age": 3})
    assert with_body.status_code == 400
    assert with_body.json()["code"] == "request_body_unexpected"
    assert not Operation.objects.filter(kind=rotation.KIND, target=name).exists()
    assert store_secret(admin_k8s, name) == before

    started = as_user("admin", "post", f"/tenants/{name}/credentials/rotate")
    assert started.status_code == 202, started.content
    task = started.json()["data"]["task"]
    assert started["Location"] == task["url"]
    again = as_user("admin", "post", f"/tenants/{name}/credentials/rotate", {})
    assert again.status_code == 202
    operation = wait_final(task["id"])
    if again.json()["data"]["task"]["id"] != task["id"]:
        # The first had finished before the second request: that one is a rotation of its own.
        wait_final(again.json()["data"]["task"]["id"])
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert [step["name"] for step in operation.steps] == ["current-key", "new-key", "roll", "revoke"]
    shown = as_user("admin", "get", f"/tasks/{task['id']}")
    assert shown.status_code == 200
    assert shown.json()["data"]["state"] == "SUCCEEDED"

    after = store_secret(admin_k8s, name)
    assert after["minio.access_key_id"] != before["minio.access_key_id"]
    assert after["minio.access_secret_key"] != before["minio.access_secret_key"]
    assert devstack_env["S3_ACCESS_KEY_ID"] not in after.values()
    assert devstack_env["S3_SECRET_ACCESS_KEY"] not in after.values()
    assert identity_keys(devstack_env, name) == [after["minio.access_key_id"]]
    assert before["minio.access_key_id"] in operation.result["revoked"]

    new = with_key(after, devstack_env)
    assert new.get_object(Bucket=name, Key="resnet/1/saved_model.pb")["Body"].read() == b"weights"
    assert [item["Key"] for item in new.list_objects_v2(Bucket=name)["Contents"]] == ["resnet/1/saved_model.pb"]
    with pytest.raises(ClientError) as refused:
        old.get_object(Bucket=name, Key="resnet/1/saved_model.pb")
    assert refused.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "AccessDenied"}
    with pytest.raises(ClientError):
        old.list_objects_v2(Bucket=name)
    # The new key is still read-only.
    with pytest.raises(ClientError) as write:
        new.put_object(Bucket=name, Key="resnet/2/x.pb", Body=b"x")
    assert write.value.response["Error"]["Code"] == "AccessDenied"

    annotations = client.CoreV1Api(admin_k8s).read_namespace(name).metadata.annotations
    assert annotations[manifests.STORE_KEY_ANNOTATION] == rotation.key_generation(after["minio.access_key_id"])
    assert after["minio.access_key_id"] not in json.dumps(annotations)
    assert manifests.STORE_KEY_ROTATED_ANNOTATION in annotations
    assert rotation.PREVIOUS_ANNOTATION not in annotations


def test_rotating_with_identities_off_is_refused_and_changes_nothing(
    as_user,
    operations_worker,
    admin_k8s,  # noqa: F811
    devstack_env,
    names,  # noqa: F811
    settings: Any,
):
    name = new_name(names, "rot")
    assert as_user("admin", "post", "/tenants", tenant_body(name)).status_code == 200
    settings.IMM_STORE_IDENTITY_BACKEND = "none"
    refused = as_user("admin", "post", f"/tenants/{name}/credentials/rotate")
    assert refused.status_code == 409
    assert refused.json()["code"] == "object_store_identities_off"
    assert not Operation.objects.filter(kind=rotation.KIND, target=name).exists()
