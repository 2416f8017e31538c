"""The one door to the object store: the only module that imports boto3/botocore.

Object-store calls use the platform's credentials (users never get S3 keys), so callers must first
have asked Kubernetes whether the user may act in the tenant (docs/decisions/0002-impersonation.md).
The platform's key never leaves the server: serving pods get a tenant identity's read-only key, made
here. Addressing is path-style, because bucket names are tenant names and MinIO-like stores rarely
have wildcard DNS.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import urllib3
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
from inferencemgmt.metrics import upstream_call

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
    """Every boto3 call goes through this: no SDK exception escapes the module (and each is counted)."""
    with upstream_call(OBJECT_STORE), _translated_s3_errors():
        yield


@contextmanager
def _translated_s3_errors() -> Iterator[None]:
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


def bucket_create(bucket: str) -> bool:
    """Create the bucket; False when it already existed (the platform owns every bucket)."""
    try:
        with s3_errors():
            client().create_bucket(Bucket=bucket)
    except Conflict:
        return False
    return True


def bucket_usage(bucket: str) -> tuple[int, int]:
    """(object count, total bytes), paging through the whole bucket."""
    count = size = 0
    with s3_errors():
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                count += 1
                size += int(item.get("Size", 0))
    return count, size


def bucket_abort_uploads(bucket: str) -> int:
    """Abort every unfinished multipart upload, so no orphaned parts keep using storage."""
    aborted = 0
    with s3_errors():
        for page in client().get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client().abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
    return aborted


def bucket_empty(bucket: str) -> int:
    """Delete every object, a thousand per request; returns how many were deleted."""
    deleted = 0
    with s3_errors():
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client().delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]
                deleted += len(keys)
    return deleted


def bucket_delete(bucket: str) -> bool:
    """Delete an empty bucket; False when it was already gone."""
    try:
        with s3_errors():
            client().delete_bucket(Bucket=bucket)
    except NotFound:
        return False
    return True


# --- model files and uploads (models_store) ----------------------------------------------------------
# S3's multipart limits (the same on AWS, MinIO and SeaweedFS): callers check them before any call,
# so a bad request is a 400 that names the rule, not an upstream error after bytes were sent.
PART_NUMBER_MIN = 1
PART_NUMBER_MAX = 10_000
PART_SIZE_MIN = 5 * 1024 * 1024
PART_SIZE_MAX = 5 * 1024 * 1024 * 1024
OBJECT_SIZE_MAX = 5 * 1024 * 1024 * 1024 * 1024
# Error codes of the store that are the client's fault (the existing table treats them as upstream).
# InvalidRequest: the upload id is the caller's (legacy upload routes) and some stores refuse a
# malformed one (SeaweedFS: "apps/v1") with it rather than with NoSuchUpload.
_CLIENT_FAULTS = {
    "BadDigest",
    "InvalidDigest",
    "IncompleteBody",
    "EntityTooSmall",
    "InvalidPart",
    "InvalidPartOrder",
    "InvalidRequest",
}


def _translate_upload(exc: ClientError) -> ImmError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in _CLIENT_FAULTS:
        message = str(exc.response.get("Error", {}).get("Message") or code)
        return BadRequest("Invalid parameter", f"{code}: {message}", code="object_store_invalid")
    return translate(exc)


@contextmanager
def _upload_errors() -> Iterator[None]:
    """Like ``s3_errors``, but the store's complaints about the parts or upload id given are the caller's 400."""
    with s3_errors():
        try:
            yield
        except ClientError as exc:
            raise _translate_upload(exc) from None


def objects_iter(bucket: str, prefix: str = "", *, start_after: str = "") -> Iterator[dict[str, Any]]:
    """Every object under ``prefix`` (after the key ``start_after``) as ``{"key", "size"}``, one page
    (1000 keys) at a time.

    A generator, so 100,000 objects never sit in memory as boto3 pages at once, and a caller that
    stops early (one page of a list route) reads no further.
    """
    extra: dict[str, Any] = {"StartAfter": start_after} if start_after else {}
    with s3_errors():
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **extra)
        for page in pages:
            for item in page.get("Contents", []):
                yield {"key": item["Key"], "size": int(item.get("Size", 0))}


def common_prefixes(bucket: str, prefix: str = "") -> list[str]:
    """The next level of "directories" under ``prefix`` (``Delimiter="/"``), without walking the files."""
    return list(common_prefixes_iter(bucket, prefix))


def common_prefixes_iter(bucket: str, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
    """``common_prefixes`` lazily, from after ``start_after`` (a page of a list stops early)."""
    extra: dict[str, Any] = {"StartAfter": start_after} if start_after else {}
    with s3_errors():
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/", **extra)
        for page in pages:
            for entry in page.get("CommonPrefixes", []):
                yield str(entry["Prefix"])


def objects_delete(bucket: str, keys: list[str]) -> int:
    """Delete ``keys``, a thousand per request (the original deleted them one request each)."""
    deleted = 0
    with s3_errors():
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            answer = client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise UpstreamError(OBJECT_STORE, f"{first.get('Code')}: could not delete {first.get('Key')}")
            deleted += len(batch)
    return deleted


def object_put_empty(bucket: str, key: str) -> dict[str, str]:
    """A zero-byte object (the directory markers of the original's ``upload/dir``)."""
    with s3_errors():
        answer = client().put_object(Bucket=bucket, Key=key, Body=b"")
    return {"Key": key, "ETag": str(answer.get("ETag", ""))}


def object_head(bucket: str, key: str) -> dict[str, Any] | None:
    """Size and ETag of one object, or None when it does not exist."""
    try:
        with s3_errors():
            answer = client().head_object(Bucket=bucket, Key=key)
    except NotFound:
        return None
    return {"size": int(answer.get("ContentLength", 0)), "etag": str(answer.get("ETag", ""))}


def multipart_start(bucket: str, key: str) -> str:
    with s3_errors():
        return str(client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])


def multipart_parts(bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
    """The parts the store holds for an upload, ``{"partNumber", "size", "etag"}`` (ETag quoted), all pages."""
    parts: list[dict[str, Any]] = []
    with _upload_errors():
        pages = client().get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
        for page in pages:
            parts.extend(
                {"partNumber": int(p["PartNumber"]), "size": int(p.get("Size", 0)), "etag": str(p["ETag"])}
                for p in page.get("Parts", [])
            )
    return parts


def multipart_complete(bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> str:
    """Assemble the object from ``(part number, ETag)`` pairs in ascending order; returns its ETag."""
    body = {"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]}
    with _upload_errors():
        answer = client().complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=body)  # type: ignore[arg-type]
    return str(answer.get("ETag", ""))


def multipart_abort(bucket: str, key: str, upload_id: str) -> None:
    with _upload_errors():
        client().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def multipart_uploads(bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    """Unfinished uploads ``{"key", "uploadId", "initiated"}`` (all pages), for resuming and reaping."""
    uploads: list[dict[str, Any]] = []
    with s3_errors():
        pages = client().get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            uploads.extend(
                {"key": str(u["Key"]), "uploadId": str(u["UploadId"]), "initiated": u.get("Initiated")}
                for u in page.get("Uploads", [])
            )
    return uploads


_presign_client: Any = None
_stream_pool: urllib3.PoolManager | None = None


@receiver(setting_changed)
def _forget_presign_client(**kwargs: Any) -> None:
    global _presign_client, _stream_pool
    if str(kwargs.get("setting", "")).startswith("S3_"):
        _presign_client = None
        _stream_pool = None


def _presigner() -> S3Client:
    """Signs URLs for the address clients reach the store at (``S3_PUBLIC_ENDPOINT_URL``).

    Signing is local (no request is sent), and the signature covers the host, so URLs for outside
    clients must be signed for the public address, not the one the API itself uses.
    """
    global _presign_client
    with _client_lock:
        if _presign_client is None:
            _presign_client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.S3_PUBLIC_ENDPOINT_URL or settings.S3_ENDPOINT_URL or None,
                aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
                aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
                region_name=settings.S3_REGION,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        return _presign_client  # type: ignore[no-any-return]


def presign_part(bucket: str, key: str, upload_id: str, part_number: int, expires_seconds: int) -> str:
    """A URL a client PUTs one part to, straight to the store (the bytes never pass through the API)."""
    if not settings.S3_ENDPOINT_URL:
        raise UpstreamUnavailable(OBJECT_STORE, "S3_ENDPOINT_URL is not configured", code="object_store_not_configured")
    with s3_errors():
        return _presigner().generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
            ExpiresIn=expires_seconds,
        )


STREAM_BLOCK_BYTES = 256 * 1024
_ERROR_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_ERROR_MESSAGE = re.compile(r"<Message>([^<]{0,500})</Message>")


def _streaming_pool() -> urllib3.PoolManager:
    global _stream_pool
    with _client_lock:
        if _stream_pool is None:
            _stream_pool = urllib3.PoolManager(
                num_pools=4,
                maxsize=32,
                cert_reqs="CERT_REQUIRED",
                ca_certs=settings.S3_CA_FILE or None,
                blocksize=STREAM_BLOCK_BYTES,
                retries=False,
            )
        return _stream_pool


class ReadableBody(Protocol):
    """What a part's body must offer: ``read(n)`` of at most ``n`` bytes (a request stream, a file)."""

    def read(self, size: int = -1, /) -> bytes: ...


def _blocks(body: ReadableBody) -> Iterator[bytes]:
    while block := body.read(STREAM_BLOCK_BYTES):
        yield block


def multipart_part_stream(
    bucket: str, key: str, upload_id: str, part_number: int, body: ReadableBody, length: int
) -> str:
    """Send one part from a file-like ``body`` of ``length`` bytes as it is read; returns the quoted ETag.

    boto3 would sign the payload over plain HTTP (reading the body twice) and retry by rewinding it,
    neither of which a request stream allows. A presigned URL carries an UNSIGNED-PAYLOAD signature,
    so the bytes go from the client's connection to the store's in fixed blocks, and a part is never
    held whole. No retry: the body cannot be replayed; the client retries the part (a 503 says so).
    """
    with s3_errors():
        url = client().generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
            ExpiresIn=900,
        )
    timeout = urllib3.Timeout(connect=settings.S3_CONNECT_TIMEOUT_SECONDS, read=settings.S3_READ_TIMEOUT_SECONDS)
    try:
        response = _streaming_pool().request(
            "PUT",
            url,
            body=_blocks(body),
            headers={"Content-Length": str(length)},
            timeout=timeout,
            preload_content=True,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamUnavailable(OBJECT_STORE, f"{type(exc).__name__}: the part could not be sent") from None
    if response.status == 200:
        return str(response.headers.get("ETag", ""))
    text = response.data[:4096].decode("utf-8", "replace")
    code = _ERROR_CODE.search(text)
    message = _ERROR_MESSAGE.search(text)
    error = {"Code": code.group(1) if code else str(response.status), "Message": message.group(1) if message else ""}
    raise _translate_upload(ClientError({"Error": error}, "UploadPart"))  # type: ignore[typeddict-item]


# --- server-side model work (extraction, import) --------------------------------------------------------
# Memory of a streamed upload is about chunk size x concurrency: bounded, whatever the object size.
TRANSFER_CHUNK_BYTES = 16 * 1024 * 1024
TRANSFER_CONCURRENCY = 2


class _GuardedStream:
    """An object's body whose read errors are domain errors (the store went away mid-read)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1, /) -> bytes:
        try:
            with s3_errors():
                return bytes(self._body.read(None if size < 0 else size))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamUnavailable(OBJECT_STORE, f"{type(exc).__name__} while reading an object") from None

    def close(self) -> None:
        self._body.close()


def object_stream(bucket: str, key: str) -> tuple[ReadableBody, int]:
    """An object's bytes as a stream (never loaded whole) and its size."""
    with s3_errors():
        answer = client().get_object(Bucket=bucket, Key=key)
    return _GuardedStream(answer["Body"]), int(answer.get("ContentLength", 0))


def object_upload(bucket: str, key: str, body: ReadableBody) -> None:
    """Store a stream of unknown length (a tar member, a download) in bounded chunks, multipart when large."""
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(
        multipart_threshold=TRANSFER_CHUNK_BYTES,
        multipart_chunksize=TRANSFER_CHUNK_BYTES,
        max_concurrency=TRANSFER_CONCURRENCY,
    )
    with _upload_errors():
        client().upload_fileobj(_ReadOnly(body), bucket, key, Config=transfer)  # type: ignore[arg-type]


class _ReadOnly:
    """Only ``read``: s3transfer then takes the non-seekable path instead of probing ``seekable()``,
    which some streams (a tar member in stream mode) cannot answer."""

    def __init__(self, body: ReadableBody) -> None:
        self.read = body.read


def object_copy(source_bucket: str, source_key: str, bucket: str, key: str) -> None:
    """Server-side copy (multipart for large objects): the bytes never leave the store."""
    with _upload_errors():
        client().copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)


# --- tenant identities (issue 18) ----------------------------------------------------------------------
# Serving pods read models with a key of their tenant's own, never the platform's: the platform's key
# may read and write every bucket and must never leave the server. Each tenant gets one store identity,
# named after it so that a retried or rolled-back saga and the cleanup can always find it, whose policy
# allows exactly read and list of the tenant's bucket. The backend is a setting, because stores manage
# identities differently; `none` means the store can do neither and the tenant gets no key at all.
IDENTITY_BACKEND_AWS_IAM = "aws-iam"
IDENTITY_BACKEND_MINIO = "minio"
IDENTITY_BACKEND_NONE = "none"
IDENTITY_BACKENDS = (IDENTITY_BACKEND_AWS_IAM, IDENTITY_BACKEND_MINIO, IDENTITY_BACKEND_NONE)
TENANT_IDENTITY_PREFIX = "imm-tenant-"
TENANT_POLICY_NAME = "imm-tenant-read"


@dataclass(frozen=True)
class AccessKey:
    """A tenant identity's key pair; the secret half is only ever known when the key is made."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


IDENTITY_NAME_MAX = 64  # AWS IAM's limit on user names


def tenant_identity_name(tenant: str) -> str:
    """The identity's name: deterministic, so create-or-verify and cleanup find it without state.

    Tenant names may have 63 characters and IAM user names at most 64, so a long name keeps its start
    and ends in a hash of the whole name (still unique, still the same on every run).
    """
    name = f"{TENANT_IDENTITY_PREFIX}{tenant}"
    if len(name) <= IDENTITY_NAME_MAX:
        return name
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    return f"{name[: IDENTITY_NAME_MAX - len(digest) - 1]}-{digest}"


def tenant_policy(bucket: str) -> dict[str, Any]:
    """Read and list of one bucket, nothing else (no write, delete, other buckets, bucket creation)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ],
    }


def identities_enabled() -> bool:
    """Whether tenants get identities of their own (False: the `none` backend, tenants get no key)."""
    return str(settings.IMM_STORE_IDENTITY_BACKEND) != IDENTITY_BACKEND_NONE


def _translate_iam(exc: ClientError) -> ImmError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message") or code or "no message")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "NoSuchEntity":
        return NotFound(description=message, code="object_store_identity_not_found")
    if code == "EntityAlreadyExists":
        return Conflict(description=message, code="object_store_identity_exists")
    if code in {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId"} or status == 403:
        # SeaweedFS answers a caller without the Admin action with a bare 403 (no error code).
        return Forbidden(
            description="the object store refused to manage tenant identities with the platform's credentials "
            f"({code or status}: {message})",
            code="object_store_identity_forbidden",
        )
    if code == "LimitExceeded":
        return Conflict(description=message, code="object_store_identity_limit")
    if code in {"ServiceFailure", "Throttling", "ServiceUnavailable"} or status >= 500:
        return UpstreamUnavailable(OBJECT_STORE, f"identity management: {code or status}: {message}")
    return translate(exc)


@contextmanager
def _iam_errors() -> Iterator[None]:
    with s3_errors():
        try:
            yield
        except ClientError as exc:
            raise _translate_iam(exc) from None


_iam_client: Any = None


@receiver(setting_changed)
def _forget_iam_client(**kwargs: Any) -> None:
    global _iam_client
    setting = str(kwargs.get("setting", ""))
    if setting.startswith("S3_") or setting == "IMM_STORE_IDENTITY_BACKEND":
        _iam_client = None


def _identities_required() -> None:
    if not identities_enabled():
        raise ImmError(
            "Platform misconfigured",
            "tenant identities are off (IMM_STORE_IDENTITY_BACKEND=none)",
            code="object_store_identities_off",
            status=503,
        )


def _iam() -> Any:
    """The IAM API client: the store's IAM endpoint (SeaweedFS: the S3 port), with the identity that
    may manage users (by default the platform's own key)."""
    global _iam_client
    _identities_required()
    with _client_lock:
        if _iam_client is None:
            endpoint = settings.S3_IAM_ENDPOINT_URL or settings.S3_ENDPOINT_URL
            if not endpoint:
                raise UpstreamUnavailable(
                    OBJECT_STORE, "S3_IAM_ENDPOINT_URL is not configured", code="object_store_not_configured"
                )
            _iam_client = boto3.session.Session().client(
                "iam",
                endpoint_url=endpoint,
                aws_access_key_id=(settings.S3_IAM_ACCESS_KEY_ID or settings.S3_ACCESS_KEY_ID) or None,
                aws_secret_access_key=(settings.S3_IAM_SECRET_ACCESS_KEY or settings.S3_SECRET_ACCESS_KEY) or None,
                region_name=settings.S3_REGION,
                verify=settings.S3_CA_FILE or None,
                config=Config(
                    connect_timeout=settings.S3_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=settings.S3_READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": settings.S3_MAX_ATTEMPTS, "mode": "standard"},
                ),
            )
        return _iam_client


def _aws_identity_ensure(tenant: str) -> bool:
    """Create-or-verify the tenant's identity and (re)set its read-only policy; True when it was made.

    An existing identity of that name is adopted: the name is the platform's (its prefix), so it can
    only be left by an earlier run for this tenant; any other inline policy it carries is deleted and
    ours is put again, so it grants exactly read and list of the bucket.
    """
    user = tenant_identity_name(tenant)
    created = True
    try:
        with _iam_errors():
            _iam().create_user(UserName=user)
    except Conflict:
        created = False
    if not created:
        with _iam_errors():
            others = [
                p for p in _iam().list_user_policies(UserName=user).get("PolicyNames", []) if p != TENANT_POLICY_NAME
            ]
            for policy in others:
                _iam().delete_user_policy(UserName=user, PolicyName=policy)
    with _iam_errors():
        _iam().put_user_policy(
            UserName=user, PolicyName=TENANT_POLICY_NAME, PolicyDocument=json.dumps(tenant_policy(tenant))
        )
    return created


def _aws_identity_exists(tenant: str) -> bool:
    try:
        with _iam_errors():
            _iam().get_user(UserName=tenant_identity_name(tenant))
    except NotFound:
        return False
    return True


def _aws_keys(tenant: str) -> list[str]:
    """The access key ids the tenant's identity holds (empty when it does not exist)."""
    try:
        with _iam_errors():
            answer = _iam().list_access_keys(UserName=tenant_identity_name(tenant))
    except NotFound:
        return []
    return [str(item["AccessKeyId"]) for item in answer.get("AccessKeyMetadata", [])]


def _aws_key_create(tenant: str) -> AccessKey:
    with _iam_errors():
        key = _iam().create_access_key(UserName=tenant_identity_name(tenant))["AccessKey"]
    return AccessKey(str(key["AccessKeyId"]), str(key["SecretAccessKey"]))


def _aws_key_delete(tenant: str, access_key_id: str) -> bool:
    """Revoke one key; False when it (or the identity) was already gone."""
    try:
        with _iam_errors():
            _iam().delete_access_key(UserName=tenant_identity_name(tenant), AccessKeyId=access_key_id)
    except NotFound:
        return False
    return True


def _aws_identity_delete(tenant: str) -> bool:
    """Delete the identity with its keys and policy (AWS refuses to delete a user that has them);
    False when it did not exist. Safe to run again."""
    user = tenant_identity_name(tenant)
    for key_id in _aws_keys(tenant):
        _aws_key_delete(tenant, key_id)
    try:
        with _iam_errors():
            _iam().delete_user_policy(UserName=user, PolicyName=TENANT_POLICY_NAME)
    except NotFound:
        pass
    try:
        with _iam_errors():
            _iam().delete_user(UserName=user)
    except NotFound:
        return False
    return True


# --- the MinIO backend ---------------------------------------------------------------------------------
# MinIO has no IAM API; its admin API (what `mc admin` speaks, over HTTP, bodies encrypted with the
# admin's secret) manages users and canned policies. The tenant's identity is a canned policy named
# like an IAM user (read and list of the bucket, nothing else), and each key is a MinIO user (a user IS
# a key pair there) with exactly that policy attached: issuing a key adds a user, revoking removes it,
# and the tenant's keys are the users whose only policy is the tenant's.
_MINIO_KEY_ID_LENGTH = 20
_MINIO_SECRET_LENGTH = 40
_MINIO_NOT_FOUND = ("XMinioAdminNoSuchUser", "XMinioAdminNoSuchPolicy", "XMinioAdminNoSuchServiceAccount")
_MINIO_ALREADY = "XMinioAdminPolicyChangeAlreadyApplied"


def _minio_error(exc: Exception) -> ImmError:
    """A MinIO admin failure as a domain error (the SDK gives the HTTP status and the body)."""
    from minio.error import MinioAdminException

    if not isinstance(exc, MinioAdminException):
        return UpstreamUnavailable(OBJECT_STORE, f"identity management: {type(exc).__name__}: cannot reach MinIO")
    status = int(exc._code) if str(exc._code).isdigit() else 0
    body = str(exc._body)
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    code = str(answer.get("Code", "")) if isinstance(answer, dict) else ""
    message = str(answer.get("Message", "") if isinstance(answer, dict) else "") or body[:200] or code
    if code in _MINIO_NOT_FOUND or status == 404:
        return NotFound(description=message, code="object_store_identity_not_found")
    if code == _MINIO_ALREADY:
        return Conflict(description=message, code="object_store_identity_exists")
    if status == 403 or code in {"AccessDenied", "XMinioAdminNoPermission"}:
        return Forbidden(
            description="the object store refused to manage tenant identities with the platform's credentials "
            f"({code or status}: {message})",
            code="object_store_identity_forbidden",
        )
    if status >= 500 or status == 0:
        return UpstreamUnavailable(OBJECT_STORE, f"identity management: {code or status}: {message}")
    return UpstreamError(OBJECT_STORE, f"identity management: {code or status}: {message}")


@contextmanager
def _minio_errors() -> Iterator[None]:
    from minio.error import MinioAdminException

    try:
        yield
    except (MinioAdminException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _minio_error(exc) from None


_minio_client: Any = None


@receiver(setting_changed)
def _forget_minio_client(**kwargs: Any) -> None:
    global _minio_client
    setting = str(kwargs.get("setting", ""))
    if setting.startswith("S3_") or setting == "IMM_STORE_IDENTITY_BACKEND":
        _minio_client = None


def _minio() -> Any:
    """MinIO's admin API client: its address (S3_IAM_ENDPOINT_URL, else the S3 endpoint, where MinIO
    serves it) and the key allowed to manage users (S3_IAM_*, else the platform's)."""
    global _minio_client
    _identities_required()
    with _client_lock:
        if _minio_client is None:
            from urllib.parse import urlsplit

            from minio.credentials.providers import StaticProvider
            from minio.minioadmin import MinioAdmin

            endpoint = settings.S3_IAM_ENDPOINT_URL or settings.S3_ENDPOINT_URL
            if not endpoint:
                raise UpstreamUnavailable(
                    OBJECT_STORE, "S3_IAM_ENDPOINT_URL is not configured", code="object_store_not_configured"
                )
            address = urlsplit(endpoint)
            timeout = urllib3.Timeout(
                connect=settings.S3_CONNECT_TIMEOUT_SECONDS, read=settings.S3_READ_TIMEOUT_SECONDS
            )
            pool = urllib3.PoolManager(
                timeout=timeout,
                maxsize=4,
                cert_reqs="CERT_REQUIRED",
                ca_certs=settings.S3_CA_FILE or None,
                retries=urllib3.Retry(total=settings.S3_MAX_ATTEMPTS - 1, backoff_factor=0.2, status_forcelist=[503]),
            )
            _minio_client = MinioAdmin(
                endpoint=address.netloc,
                credentials=StaticProvider(
                    settings.S3_IAM_ACCESS_KEY_ID or settings.S3_ACCESS_KEY_ID,
                    settings.S3_IAM_SECRET_ACCESS_KEY or settings.S3_SECRET_ACCESS_KEY,
                ),
                region=settings.S3_REGION,
                secure=address.scheme == "https",
                http_client=pool,
            )
        return _minio_client


def _minio_policy_name(tenant: str) -> str:
    return tenant_identity_name(tenant)


def _minio_ensure(tenant: str) -> bool:
    """(Re)write the tenant's canned policy: exactly read and list of its bucket; True when it was new."""
    existed = _minio_exists(tenant)
    with _minio_errors():
        _minio().policy_add(_minio_policy_name(tenant), policy=tenant_policy(tenant))
    return not existed


def _minio_exists(tenant: str) -> bool:
    try:
        with _minio_errors():
            _minio().policy_info(_minio_policy_name(tenant))
    except NotFound:
        return False
    return True


def _minio_keys(tenant: str) -> list[str]:
    """The users whose only policy is the tenant's (MinIO lists every user with its policies)."""
    with _minio_errors():
        listed = json.loads(_minio().user_list() or "{}")
    wanted = _minio_policy_name(tenant)
    return sorted(
        str(access_key)
        for access_key, user in (listed or {}).items()
        if isinstance(user, dict) and str(user.get("policyName", "")) == wanted
    )


def _minio_key_create(tenant: str) -> AccessKey:
    """A new MinIO user with random key and secret, and only the tenant's policy attached.

    If the attach fails the user is removed again, so no key without the policy (which MinIO would
    give no rights, but which would still be a live credential) is ever left.
    """
    import secrets
    import string

    alphabet = string.ascii_uppercase + string.digits
    access_key = "".join(secrets.choice(alphabet) for _ in range(_MINIO_KEY_ID_LENGTH))
    secret = secrets.token_urlsafe(_MINIO_SECRET_LENGTH)[:_MINIO_SECRET_LENGTH]
    with _minio_errors():
        _minio().user_add(access_key, secret)
    try:
        with _minio_errors():
            _minio().attach_policy([_minio_policy_name(tenant)], user=access_key)
    except ImmError:
        with suppress(ImmError), _minio_errors():
            _minio().user_remove(access_key)
        raise
    return AccessKey(access_key, secret)


def _minio_key_delete(tenant: str, access_key_id: str) -> bool:
    """Remove the key's user, only if it is one of the tenant's (never another user of the store)."""
    if access_key_id not in _minio_keys(tenant):
        return False
    try:
        with _minio_errors():
            _minio().user_remove(access_key_id)
    except NotFound:
        return False
    return True


def _minio_delete(tenant: str) -> bool:
    for key_id in _minio_keys(tenant):
        _minio_key_delete(tenant, key_id)
    try:
        with _minio_errors():
            _minio().policy_remove(_minio_policy_name(tenant))
    except NotFound:
        return False
    return True


# --- one interface, the backend a setting ----------------------------------------------------------------
def _minio_backend() -> bool:
    return str(settings.IMM_STORE_IDENTITY_BACKEND) == IDENTITY_BACKEND_MINIO


def tenant_identity_ensure(tenant: str) -> bool:
    """Create-or-verify the tenant's identity with exactly its read-only policy; True when it was made.

    An existing identity of that name is adopted: the name is the platform's (its prefix), so it can
    only be left by an earlier run for this tenant; its policy is put again, so it grants exactly read
    and list of the bucket.
    """
    return _minio_ensure(tenant) if _minio_backend() else _aws_identity_ensure(tenant)


def tenant_identity_exists(tenant: str) -> bool:
    return _minio_exists(tenant) if _minio_backend() else _aws_identity_exists(tenant)


def tenant_keys(tenant: str) -> list[str]:
    """The access key ids the tenant's identity holds (empty when it does not exist)."""
    return _minio_keys(tenant) if _minio_backend() else _aws_keys(tenant)


def tenant_key_create(tenant: str) -> AccessKey:
    """Issue the tenant's identity a new key (the secret half is known only now)."""
    return _minio_key_create(tenant) if _minio_backend() else _aws_key_create(tenant)


def tenant_key_delete(tenant: str, access_key_id: str) -> bool:
    """Revoke one key; False when it (or the identity) was already gone."""
    return _minio_key_delete(tenant, access_key_id) if _minio_backend() else _aws_key_delete(tenant, access_key_id)


def tenant_identity_delete(tenant: str) -> bool:
    """Delete the identity with its keys and policy; False when it did not exist. Safe to run again."""
    return _minio_delete(tenant) if _minio_backend() else _aws_identity_delete(tenant)
