"""Removing a test tenant directly (namespace, bucket, unfinished uploads) when the API cannot."""

from __future__ import annotations

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.platform_admin import admin_s3_client


def remove_tenant(env: dict[str, str], name: str) -> None:
    core = client.CoreV1Api(config.new_client_from_config(env["KUBECONFIG"]))
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
    s3 = admin_s3_client(env)
    try:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass
