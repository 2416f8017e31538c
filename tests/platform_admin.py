"""The platform administrator's own clients of the local platform, for setting up and cleaning up
around a test without going through the API under test."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def admin_s3_client(env: dict[str, str]) -> Any:
    """An S3 client with the object store's admin credentials (path-style, as the devstack needs)."""
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        region_name=env["S3_REGION"],
        config=Config(s3={"addressing_style": "path"}),
    )
