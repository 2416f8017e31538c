"""The platform administrator's own clients of the local platform, for setting up and cleaning up
around a test without going through the API under test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config


def admin_s3_client(env: Mapping[str, str], **config: Any) -> Any:
    """An S3 client with the object store's admin credentials (path-style, as the devstack needs);
    ``config`` adds botocore options (e.g. ``max_pool_connections``). Benchmarks use it too."""
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        region_name=env.get("S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, **config),
    )
