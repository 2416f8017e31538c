"""The one door to the object store: the only module that imports boto3/botocore.

Object-store calls use the platform's credentials (users never get S3 keys), so callers must first
have asked Kubernetes whether the user may act in the tenant (DECISIONS §3). Addressing is
path-style, because bucket names are tenant names and MinIO-like stores rarely have wildcard DNS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from inferencemgmt.errors import (
    OBJECT_STORE,
    BadRequest,
    Conflict,
    Forbidden,
    ImmError,
    NotFound,
    UpstreamError,
    UpstreamUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "NoSuchUpload", "404", "NotFound"}
_FORBIDDEN = {"AccessDenied", "403", "AllAccessDisabled"}
_CONFLICT = {"BucketAlreadyExists", "BucketAlreadyOwnedByYou", "BucketNotEmpty", "OperationAborted"}
_INVALID = {
    "InvalidBucketName",
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "EntityTooLarge",
    "InvalidArgument",
    "InvalidRange",
}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}


def translate(exc: ClientError) -> ImmError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message") or code or "no message")
    if code in _NOT_FOUND:
        return NotFound(description=message, code="object_store_not_found")
    if code in _FORBIDDEN:
        return Forbidden(description=message, code="object_store_forbidden")
    if code in _CONFLICT:
        return Conflict(description=message, code="object_store_conflict")
    if code in _INVALID:
        return BadRequest("Invalid parameter", message, code="object_store_invalid")
    if code in _CREDENTIALS:
        return UpstreamError(OBJECT_STORE, "the platform's object-store credentials were rejected")
    if code in _TRANSIENT:
        return UpstreamUnavailable(OBJECT_STORE, message)
    return UpstreamError(OBJECT_STORE, f"{code}: {message}")


@contextmanager
def s3_errors() -> Iterator[None]:
    """Every boto3 call goes through this: no SDK exception escapes the module."""
    try:
        yield
    except ClientError as exc:
        raise translate(exc) from None
    except (BotoConnectionError, HTTPClientError) as exc:
        raise UpstreamUnavailable(OBJECT_STORE, f"{type(exc).__name__}: cannot reach the object store") from None
    except BotoCoreError as exc:
        raise UpstreamError(OBJECT_STORE, type(exc).__name__) from None


_client: Any = None
_client_lock = threading.Lock()


@receiver(setting_changed)
def _forget_client(**kwargs: Any) -> None:
    global _client
    if str(kwargs.get("setting", "")).startswith("S3_"):
        _client = None


def client() -> S3Client:
    """A shared S3 client (boto3 clients are thread-safe; building one is slow)."""
    global _client
    with _client_lock:
        if _client is None:
            if not settings.S3_ENDPOINT_URL:
                raise UpstreamUnavailable(
                    OBJECT_STORE, "S3_ENDPOINT_URL is not configured", code="object_store_not_configured"
                )
            _client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.S3_ENDPOINT_URL,
                aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
                aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
                region_name=settings.S3_REGION,
                verify=settings.S3_CA_FILE or None,
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    connect_timeout=settings.S3_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=settings.S3_READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": settings.S3_MAX_ATTEMPTS, "mode": "standard"},
                ),
            )
        return _client  # type: ignore[no-any-return]


def bucket_exists(bucket: str) -> bool:
    """HEAD the bucket (cheap; the original listed up to 1000 keys to answer this)."""
    try:
        with s3_errors():
            client().head_bucket(Bucket=bucket)
    except NotFound:
        return False
    return True


def ping() -> None:
    """Readiness: the store answers and accepts the platform's credentials."""
    with s3_errors():
        client().list_buckets()
