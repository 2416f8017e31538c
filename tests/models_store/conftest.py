"""A tenant of scope team-a (alice and carol are members; bob, dave are not), made once per module.

The namespace, Role, RoleBinding and bucket are created from the tenants app's own manifests with
the cluster admin's kubeconfig: these tests are about models, and provisioning through
``POST /tenants`` (tested in tests/tenants) would cost a worker and seconds per module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.conftest import PersonaCaller
from tests.platform_admin import admin_s3_client, team_a_tenant_create

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def admin_k8s(devstack_env: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(devstack_env["KUBECONFIG"])


@pytest.fixture(scope="module")
def s3(devstack_env: dict[str, str]) -> Any:
    return admin_s3_client(devstack_env)


def bucket_clear(s3: Any, bucket: str) -> None:
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


@pytest.fixture(scope="module")
def tenant(admin_k8s: client.ApiClient, s3: Any) -> Iterator[str]:
    name = f"m{uuid.uuid4().hex[:10]}"
    team_a_tenant_create(admin_k8s, s3, name, "test")
    yield name
    bucket_clear(s3, name)
    s3.delete_bucket(Bucket=name)
    try:
        client.CoreV1Api(admin_k8s).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def clean_bucket(tenant: str, s3: Any) -> Iterator[str]:
    """The module's tenant, with an empty bucket before and after the test."""
    bucket_clear(s3, tenant)
    yield tenant
    bucket_clear(s3, tenant)


@pytest.fixture
def call(as_user: PersonaCaller) -> PersonaCaller:
    """The model tests' name for :func:`tests.conftest.as_user`."""
    return as_user
