"""The platform administrator's own clients of the local platform, for setting up and cleaning up
around a test without going through the API under test."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from inferencemgmt import objectstore
from tenants import manifests


def token_claims(bearer: str) -> dict[str, Any]:
    """A token's claims, unchecked: benchmarks name the user the API would act as (the API checks tokens)."""
    payload = bearer.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def admin_s3_client(env: Mapping[str, str], **botocore_options: Any) -> Any:
    """An S3 client with the object store's admin credentials (path-style, as the devstack needs);
    ``botocore_options`` go to its Config (e.g. ``max_pool_connections``). Benchmarks use it too."""
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        region_name=env.get("S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, **botocore_options),
    )


def team_a_tenant_create(
    admin_k8s: client.ApiClient, s3: Any, name: str, created_by: str, quota: Mapping[str, Any] | None = None
) -> None:
    """A tenant of scope team-a made directly from the tenants app's own manifests: namespace, Role,
    RoleBinding, bucket and, when ``quota`` is given, the ResourceQuota (as `POST /tenants` would
    make it), for suites that need no provisioning task (and no tenant deletion task afterwards)."""
    core, rbac = client.CoreV1Api(admin_k8s), client.RbacAuthorizationV1Api(admin_k8s)
    core.create_namespace(manifests.namespace(name, ["team-a"], quota or {}, created_by, "platform_admin"))
    rbac.create_namespaced_role(name, manifests.role(name))
    rbac.create_namespaced_role_binding(name, manifests.role_binding(name, ["team-a"]))
    if quota:
        core.create_namespaced_resource_quota(name, manifests.resource_quota(name, quota))
    s3.create_bucket(Bucket=name)


def remove_tenant(env: Mapping[str, str], name: str) -> None:
    """Remove a test tenant directly (namespace, bucket, unfinished uploads, store identity) when the API cannot."""
    namespaces_delete_started(env, [name])
    s3 = admin_s3_client(env)
    try:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass
    identity_remove(env, objectstore.tenant_identity_name(name))


def namespaces_delete_started(env: Mapping[str, str], names: Iterable[str]) -> None:
    """Start the deletion of these namespaces at once and return (a missing one is fine), so that the
    namespace controller's waits overlap instead of adding up when the tenants are deleted one by one.

    Then each namespace's pods are deleted at once (grace period 0): the namespace controller otherwise
    waits out every pod's grace period (30 s: 42.5 s to delete a namespace running two kwok pods, 5.2 s
    with them removed, measured). A test's pods serve nothing that needs draining. The namespace is
    deleted first so that no ReplicaSet can make a new pod in it (a terminating namespace admits none).
    """
    core = client.CoreV1Api(config.new_client_from_config(env["KUBECONFIG"]))
    for name in names:
        missing_ok(core.delete_namespace, name)
        missing_ok(lambda namespace: core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0), name)


def missing_ok(delete: Callable[[str], Any], name: str) -> None:
    """Delete ``name``; one that is already gone is fine, any other refusal is raised."""
    try:
        delete(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def admin_iam_client(env: Mapping[str, str]) -> Any:
    """An IAM client with the object store's admin credentials (SeaweedFS serves IAM on its S3 port)."""
    return boto3.client(
        "iam",
        endpoint_url=env.get("S3_IAM_ENDPOINT_URL") or env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        region_name=env.get("S3_REGION", "us-east-1"),
    )


def identity_remove(env: Mapping[str, str], user: str) -> None:
    """Delete a store identity with its keys and policies; a missing one is fine."""
    iam = admin_iam_client(env)
    try:
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_user_policies(UserName=user)["PolicyNames"]:
            iam.delete_user_policy(UserName=user, PolicyName=policy)
        iam.delete_user(UserName=user)
    except iam.exceptions.NoSuchEntityException:
        pass
