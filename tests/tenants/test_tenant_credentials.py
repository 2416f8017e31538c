"""Tenant-scoped object-store credentials (issue 18), against the real store and cluster.

The tenant's key is the one its serving pods get. The store itself must refuse everything but reading
and listing the tenant's own bucket: these tests ask the store, never our code, what the key may do.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from kubernetes import client, config

from inferencemgmt.operations.models import Operation
from tests.certificates import ca_certificate_pem
from tests.conftest import WorkerPool, suite_broker_url, use_broker, worker_env
from tests.platform_admin import admin_iam_client, admin_s3_client, identity_remove, remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CERT = base64.b64encode(ca_certificate_pem("tenant-credentials-ca")).decode()


@pytest.fixture
def admin_k8s(devstack_env: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(devstack_env["KUBECONFIG"])


@pytest.fixture
def names(devstack_env: dict[str, str]) -> Iterator[list[str]]:
    """Fresh tenant names; whatever a test leaves behind (identities included) is removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        remove_tenant(devstack_env, name)


def new_name(names: list[str], prefix: str = "cred") -> str:
    names.append(f"{prefix}{uuid.uuid4().hex[:8]}")
    return names[-1]


def tenant_body(name: str) -> dict[str, Any]:
    return {"name": name, "cert": CERT, "scope": "team-a", "quota": {}}


def store_secret(admin_k8s: client.ApiClient, tenant: str) -> dict[str, str]:
    secret = client.CoreV1Api(admin_k8s).read_namespaced_secret("minio-access-info", tenant)
    return {key: base64.b64decode(value).decode() for key, value in secret.data.items()}


def s3_with(secret: dict[str, str]) -> Any:
    """An S3 client holding exactly the key a serving pod of the tenant gets.

    It talks to the store at the address this host uses: the secret's own address is the one pods
    use, which with the real node on is the pod bridge's (``S3_SERVING_ENDPOINT_URL``).
    """
    from django.conf import settings  # the live platform's, set by the platform_settings fixture

    endpoint = secret["minio.endpoint_url"]
    if settings.S3_SERVING_ENDPOINT_URL and endpoint == settings.S3_SERVING_ENDPOINT_URL:
        endpoint = settings.S3_ENDPOINT_URL
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=secret["minio.access_key_id"],
        aws_secret_access_key=secret["minio.access_secret_key"],
        region_name=secret["minio.minio_region"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def refused(call: Any) -> str:
    """The store's error code for a call that must be refused (fails the test when it is allowed)."""
    with pytest.raises(ClientError) as error:
        call()
    return str(error.value.response.get("Error", {}).get("Code"))


def identity_exists(devstack_env: dict[str, str], tenant: str) -> bool:
    iam = admin_iam_client(devstack_env)
    try:
        iam.get_user(UserName=f"imm-tenant-{tenant}")
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def test_the_tenant_key_reads_and_lists_its_own_bucket_and_nothing_else(
    as_user, operations_worker, admin_k8s, devstack_env, names
):
    mine, other = new_name(names), new_name(names)
    for name in (mine, other):
        created = as_user("admin", "post", "/tenants", tenant_body(name))
        assert created.status_code == 200, created.content
    platform = admin_s3_client(devstack_env)
    for name in (mine, other):
        platform.put_object(Bucket=name, Key="resnet/1/saved_model.pb", Body=b"weights of " + name.encode())

    secret = store_secret(admin_k8s, mine)
    assert secret["minio.access_key_id"] != devstack_env["S3_ACCESS_KEY_ID"]
    assert devstack_env["S3_SECRET_ACCESS_KEY"] not in secret.values()
    assert devstack_env["S3_ACCESS_KEY_ID"] not in secret.values()
    tenant = s3_with(secret)

    listed = tenant.list_objects_v2(Bucket=mine, Prefix="resnet/")
    assert [item["Key"] for item in listed["Contents"]] == ["resnet/1/saved_model.pb"]
    read = tenant.get_object(Bucket=mine, Key="resnet/1/saved_model.pb")["Body"].read()
    assert read == b"weights of " + mine.encode()

    assert refused(lambda: tenant.put_object(Bucket=mine, Key="resnet/2/x.pb", Body=b"x")) == "AccessDenied"
    assert refused(lambda: tenant.delete_object(Bucket=mine, Key="resnet/1/saved_model.pb")) == "AccessDenied"
    assert refused(lambda: tenant.list_objects_v2(Bucket=other)) == "AccessDenied"
    assert refused(lambda: tenant.get_object(Bucket=other, Key="resnet/1/saved_model.pb")) == "AccessDenied"
    assert refused(lambda: tenant.create_bucket(Bucket=new_name(names, "evil"))) == "AccessDenied"
    # The refused delete really changed nothing, and the refused write left no object.
    assert [i["Key"] for i in platform.list_objects_v2(Bucket=mine)["Contents"]] == ["resnet/1/saved_model.pb"]
    assert not any(b["Name"] == names[-1] for b in platform.list_buckets()["Buckets"])
    # Nor may the key manage identities (SeaweedFS answers a bare 403).
    tenant_iam = boto3.client(
        "iam",
        endpoint_url=devstack_env.get("S3_IAM_ENDPOINT_URL") or devstack_env["S3_ENDPOINT_URL"],
        aws_access_key_id=secret["minio.access_key_id"],
        aws_secret_access_key=secret["minio.access_secret_key"],
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as made_user:
        tenant_iam.create_user(UserName=f"imm-tenant-{names[-1]}")
    assert made_user.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not identity_exists(devstack_env, names[-1])

    # Deletion removes the identity, and its key is refused from then on.
    assert as_user("admin", "delete", f"/tenants/{mine}").status_code == 200
    assert not identity_exists(devstack_env, mine)
    code = refused(lambda: tenant.list_objects_v2(Bucket=other))
    assert code in {"InvalidAccessKeyId", "AccessDenied"}, code
    operation = Operation.objects.filter(target=mine, kind="tenants.delete").first()
    assert operation is not None
    assert any(step["name"] == "identity" for step in operation.steps)


@pytest.fixture
def refusing_worker(devstack_env: dict[str, str], platform_settings: Any, tmp_path: Path) -> Iterator[str]:
    """A real worker whose identity-management key is a real store identity without `Admin`: the store
    itself refuses every IAM call it makes (no fault is faked), while S3 calls use the platform's key."""
    iam = admin_iam_client(devstack_env)
    user = f"imm-test-noadmin-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    broker = suite_broker_url(devstack_env)
    previous = use_broker(broker)
    env = worker_env(
        devstack_env,
        broker,
        S3_IAM_ACCESS_KEY_ID=key["AccessKeyId"],
        S3_IAM_SECRET_ACCESS_KEY=key["SecretAccessKey"],
    )
    pool = WorkerPool(env, tmp_path)
    pool.start("refusing")
    yield user
    pool.stop_all()
    use_broker(previous)
    pool.print_logs()
    identity_remove(devstack_env, user)


def test_the_store_refusing_the_identity_step_rolls_the_tenant_back_with_nothing_left(
    as_user, refusing_worker, admin_k8s, devstack_env, names
):
    name = new_name(names, "fault-cred")
    failed = as_user("admin", "post", "/tenants", tenant_body(name))
    assert failed.status_code == 403, failed.content
    error = failed.json()
    assert error["title"] == f"Tenant {name} was not created: step 'object-store-identity' failed"
    assert "refused to manage tenant identities" in error["description"]
    operation = Operation.objects.get(target=name)
    assert operation.state == Operation.State.ROLLED_BACK
    undone = [step["name"] for step in operation.steps if step["name"].startswith("undo ")]
    assert undone == ["undo object-store-identity", "undo bucket", "undo namespace"]
    with pytest.raises(client.exceptions.ApiException) as gone:
        client.CoreV1Api(admin_k8s).read_namespace(name)
    assert gone.value.status == 404
    assert not any(b["Name"] == name for b in admin_s3_client(devstack_env).list_buckets()["Buckets"])
    assert not identity_exists(devstack_env, name)


@pytest.fixture
def worker_without_identities(devstack_env: dict[str, str], platform_settings: Any, tmp_path: Path) -> Iterator[None]:
    """A real worker configured as for a store that offers no identity API (IMM_STORE_IDENTITY_BACKEND=none)."""
    broker = suite_broker_url(devstack_env)
    previous = use_broker(broker)
    pool = WorkerPool(worker_env(devstack_env, broker, IMM_STORE_IDENTITY_BACKEND="none"), tmp_path)
    pool.start("no-identities")
    yield
    pool.stop_all()
    use_broker(previous)
    pool.print_logs()


def test_backend_none_gives_the_tenant_no_key_at_all(
    as_user, worker_without_identities, admin_k8s, devstack_env, names
):
    """No identity API: the tenant's secret carries the endpoint but no key, never the platform's."""
    name = new_name(names)
    created = as_user("admin", "post", "/tenants", tenant_body(name))
    assert created.status_code == 200, created.content
    secret = store_secret(admin_k8s, name)
    assert "minio.access_key_id" not in secret
    assert "minio.access_secret_key" not in secret
    assert secret["minio.endpoint_url"] == (
        devstack_env.get("S3_SERVING_ENDPOINT_URL") or devstack_env["S3_ENDPOINT_URL"]
    )
    assert devstack_env["S3_ACCESS_KEY_ID"] not in secret.values()
    assert not identity_exists(devstack_env, name)
    assert as_user("admin", "delete", f"/tenants/{name}").status_code == 200


def test_a_retried_secret_step_leaves_one_key_the_one_in_the_secret(
    as_user, operations_worker, admin_k8s, devstack_env, names
):
    """Provisioning twice over the same identity (what a retried run does) never leaves a stray key."""
    name = new_name(names)
    assert as_user("admin", "post", "/tenants", tenant_body(name)).status_code == 200
    from tenants.provisioning import store_secret_body  # the step's body, run again as a retry would

    body = store_secret_body(name)
    client.CoreV1Api(admin_k8s).replace_namespaced_secret("minio-access-info", name, body)
    keys = admin_iam_client(devstack_env).list_access_keys(UserName=f"imm-tenant-{name}")["AccessKeyMetadata"]
    secret = store_secret(admin_k8s, name)
    assert [key["AccessKeyId"] for key in keys] == [secret["minio.access_key_id"]]
    time.sleep(0.5)  # the store applies identity changes asynchronously
    assert s3_with(secret).list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert as_user("admin", "delete", f"/tenants/{name}").status_code == 200


def test_no_tenant_namespace_holds_the_platform_key(admin_k8s, devstack_env):
    """Every tenant namespace's secrets, whoever made them: none holds the platform's key or secret."""
    core = client.CoreV1Api(admin_k8s)
    platform = {devstack_env["S3_ACCESS_KEY_ID"].encode(), devstack_env["S3_SECRET_ACCESS_KEY"].encode()}
    tenants = core.list_namespace(label_selector="created_by=platform_admin").items
    leaks = [
        f"{secret.metadata.namespace}/{secret.metadata.name}/{key}"
        for namespace in tenants
        for secret in core.list_namespaced_secret(namespace.metadata.name).items
        for key, value in (secret.data or {}).items()
        if any(needle in base64.b64decode(value) for needle in platform)
    ]
    assert leaks == []


def test_migration_gives_a_tenant_made_before_its_own_key(as_user, operations_worker, admin_k8s, devstack_env, names):
    """A tenant as made before issue 18 (the platform's key in its secret, no identity) is migrated once."""
    from django.core.management import call_command

    from tenants import manifests

    name = new_name(names)
    assert as_user("admin", "post", "/tenants", tenant_body(name)).status_code == 200
    identity_remove(devstack_env, f"imm-tenant-{name}")
    old = manifests.store_secret(
        name,
        access_key=devstack_env["S3_ACCESS_KEY_ID"],
        secret_key=devstack_env["S3_SECRET_ACCESS_KEY"],
        endpoint_url=devstack_env["S3_ENDPOINT_URL"],
        region=devstack_env["S3_REGION"],
    )
    core = client.CoreV1Api(admin_k8s)
    core.replace_namespaced_secret("minio-access-info", name, old)

    out = StringIO()
    call_command("migrate_tenant_credentials", name, "--kubeconfig", devstack_env["KUBECONFIG"], stdout=out)
    assert "1 tenants, 1 migrated, 0 already had their own key" in out.getvalue()
    secret = store_secret(admin_k8s, name)
    assert devstack_env["S3_ACCESS_KEY_ID"] not in secret.values()
    assert devstack_env["S3_SECRET_ACCESS_KEY"] not in secret.values()
    keys = admin_iam_client(devstack_env).list_access_keys(UserName=f"imm-tenant-{name}")["AccessKeyMetadata"]
    assert [key["AccessKeyId"] for key in keys] == [secret["minio.access_key_id"]]
    time.sleep(0.5)  # the store applies identity changes asynchronously
    tenant = s3_with(secret)
    assert tenant.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert refused(lambda: tenant.put_object(Bucket=name, Key="x", Body=b"x")) == "AccessDenied"

    again = StringIO()
    call_command("migrate_tenant_credentials", name, "--kubeconfig", devstack_env["KUBECONFIG"], stdout=again)
    assert "1 tenants, 0 migrated, 1 already had their own key" in again.getvalue()
    assert store_secret(admin_k8s, name) == secret
    assert as_user("admin", "delete", f"/tenants/{name}").status_code == 200


def test_a_leftover_identity_of_the_name_is_adopted_with_exactly_the_read_policy(
    as_user, operations_worker, admin_k8s, devstack_env, names
):
    """An identity `imm-tenant-<name>` left behind (say, with a policy allowing everything) is made the
    tenant's read-only identity: its other policies and keys are gone, the store enforces ours."""
    name = new_name(names)
    iam = admin_iam_client(devstack_env)
    iam.create_user(UserName=f"imm-tenant-{name}")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}
    iam.put_user_policy(UserName=f"imm-tenant-{name}", PolicyName="wide", PolicyDocument=json.dumps(everything))
    stale = iam.create_access_key(UserName=f"imm-tenant-{name}")["AccessKey"]["AccessKeyId"]

    assert as_user("admin", "post", "/tenants", tenant_body(name)).status_code == 200
    assert iam.list_user_policies(UserName=f"imm-tenant-{name}")["PolicyNames"] == ["imm-tenant-read"]
    secret = store_secret(admin_k8s, name)
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=f"imm-tenant-{name}")["AccessKeyMetadata"]]
    assert keys == [secret["minio.access_key_id"]]
    assert stale not in keys
    time.sleep(0.5)  # the store applies identity changes asynchronously
    tenant = s3_with(secret)
    assert tenant.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert refused(lambda: tenant.put_object(Bucket=name, Key="x", Body=b"x")) == "AccessDenied"
    assert as_user("admin", "delete", f"/tenants/{name}").status_code == 200
