"""The devstack's S3 store and Redis behave like the production services the product expects."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # S3's minimum size for every part but the last


def s3(env: dict[str, str], secret: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or env["S3_SECRET_ACCESS_KEY"],
        region_name=env["S3_REGION"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )


@pytest.fixture
def bucket(devstack_env: dict[str, str]) -> Iterator[str]:
    name = f"probe-{uuid.uuid4().hex[:10]}"
    store = s3(devstack_env)
    store.create_bucket(Bucket=name)
    yield name
    for obj in store.list_objects_v2(Bucket=name).get("Contents", []):
        store.delete_object(Bucket=name, Key=obj["Key"])
    store.delete_bucket(Bucket=name)


def test_presigned_multipart_upload(devstack_env: dict[str, str], bucket: str) -> None:
    store = s3(devstack_env)
    key = "resnet/1/saved_model.pb"
    upload = store.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    sizes = [PART, PART, 1234]
    parts = []
    for number, size in enumerate(sizes, start=1):
        url = store.generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload, "PartNumber": number},
            ExpiresIn=300,
        )
        response = requests.put(url, data=bytes([number]) * size, timeout=30)
        assert response.status_code == 200, response.text
        parts.append({"PartNumber": number, "ETag": response.headers["ETag"]})
    listed = store.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
    assert [p["Size"] for p in listed] == sizes
    store.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    objects = store.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in objects] == [(key, sum(sizes))]
    body = store.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(body) == sum(sizes)
    assert body[:1] == b"\x01"
    assert body[-1:] == b"\x03"


def test_wrong_secret_is_refused(devstack_env: dict[str, str], bucket: str) -> None:
    with pytest.raises(ClientError) as refused:
        s3(devstack_env, secret="not-the-secret").list_objects_v2(Bucket=bucket)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_anonymous_request_is_refused(devstack_env: dict[str, str], bucket: str) -> None:
    assert requests.get(f"{devstack_env['S3_ENDPOINT_URL']}/{bucket}", timeout=10).status_code == 403
    put = requests.put(f"{devstack_env['S3_ENDPOINT_URL']}/{bucket}/x", data=b"x", timeout=10)
    assert put.status_code == 403


def test_redis_answers_on_loopback(devstack_env: dict[str, str]) -> None:
    url = urlparse(devstack_env["REDIS_URL"])
    assert url.hostname == "127.0.0.1"
    with socket.create_connection((url.hostname, url.port or 6379), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(16) == b"+PONG\r\n"
