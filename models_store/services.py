"""Operations on models, named <entity>_<verb> and taking an Identity.

Every function first asks Kubernetes whether the caller may act in the tenant
(``access.tenant_access``), then talks to the bucket through ``inferencemgmt.objectstore`` with the
platform's credentials. Names reaching here were checked by ``keys`` in the view; the S3 rules that
can be known in advance (part numbers, part sizes, part order) are checked here, so the store's own
refusals are rare and never the first line of defence.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.utils import timezone

from inferencemgmt import objectstore
from inferencemgmt.api.validation import DNS_1123_LABEL, matches
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, NotFound
from inferencemgmt.objectstore import OBJECT_SIZE_MAX, PART_NUMBER_MAX, PART_SIZE_MAX, PART_SIZE_MIN
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import operation_create
from models_store import access, importing, jobs, keys, selectors, tasks
from models_store.models import DirectUpload, ModelVersion

MIB = 1024 * 1024
# Presigned URLs handed out per answer: enough to keep a client busy, cheap to sign.
URLS_PER_ANSWER = 1000


def _model_not_found(prefix: str) -> NotFound:
    return NotFound(description=f"Model {prefix} does not exist", code="model_not_found")


# --- delete ------------------------------------------------------------------------------------------
def model_delete(identity: Identity, *, tenant: str, name: str, version: int, force: bool = False) -> dict[str, str]:
    """Delete ``<name>/<version>/``; refused (409) while an endpoint serves that version, unless forced."""
    access.tenant_access(identity, tenant, access.WRITE)
    prefix = keys.version_prefix(name, version)
    object_keys = [item["key"] for item in objectstore.objects_iter(tenant, prefix)]
    if not object_keys:
        raise _model_not_found(prefix)
    if not force:
        endpoints = selectors.tenant_endpoints(identity, tenant)
        serving = selectors.endpoints_serving(endpoints, name, version, selectors.model_versions(tenant, name))
        if serving:
            raise Conflict(
                description=f"Model {prefix} is served by endpoint(s) {', '.join(serving)}; "
                'send "force": true to delete it anyway',
                code="model_in_use",
            )
    objectstore.objects_delete(tenant, object_keys)
    ModelVersion.objects.filter(tenant=tenant, name=name, version=version).delete()
    return {"model_path": prefix}


# --- the compatibility multipart protocol (docs/compatibility.md) ----------------------------------------
def upload_start(identity: Identity, *, tenant: str, key: str) -> dict[str, str]:
    access.tenant_access(identity, tenant, access.WRITE)
    return {"uploadId": objectstore.multipart_start(tenant, key), "op": "upload_init"}


def upload_id_checked(upload_id: str) -> str:
    if not upload_id or len(upload_id) > 1024 or not upload_id.isprintable():
        raise keys.invalid("uploadId", "It must be a non-empty printable string.", code="upload_id_invalid")
    return upload_id


def part_length_checked(length: int) -> int:
    if length > PART_SIZE_MAX:
        raise keys.invalid(
            "Content-Length", f"A part holds at most {PART_SIZE_MAX} bytes (5 GiB).", code="part_size_invalid"
        )
    return length


def upload_part(
    identity: Identity,
    *,
    tenant: str,
    key: str,
    upload_id: str,
    part_number: int,
    body: objectstore.ReadableBody,
    length: int,
) -> dict[str, str]:
    """Stream one part from ``body`` to the store; the answer's ETag keeps the store's quotes."""
    access.tenant_access(identity, tenant, access.WRITE)
    etag = objectstore.multipart_part_stream(tenant, key, upload_id, part_number, body, length)
    return {"ETag": etag, "op": "upload_part"}


def _parts_checked(requested: Sequence[tuple[int, str]], stored: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """The S3 completion rules, checked against what the store holds, with a 400 naming the part.

    A zero-byte last part (the original client sends one when a file is a multiple of its part size)
    is left out: it adds nothing to the object.
    """
    if not requested:
        raise keys.invalid("parts", "At least one part is required.", code="parts_invalid")
    numbers = [number for number, _ in requested]
    if numbers != sorted(set(numbers)):
        raise keys.invalid("parts", "Part numbers must be unique and in ascending order.", code="parts_invalid")
    by_number = {part["partNumber"]: part for part in stored}
    for number, etag in requested:
        part = by_number.get(number)
        if part is None:
            raise keys.invalid("parts", f"Part {number} was not uploaded.", code="parts_invalid")
        if jobs.unquoted_etag(part["etag"]) != jobs.unquoted_etag(etag):
            raise keys.invalid(
                "parts", f"The ETag of part {number} does not match the uploaded part.", code="parts_invalid"
            )
    chosen = list(requested)
    if len(chosen) > 1 and by_number[chosen[-1][0]]["size"] == 0:
        chosen.pop()
    for number, _ in chosen[:-1]:
        if by_number[number]["size"] < PART_SIZE_MIN:
            raise keys.invalid(
                "parts", f"Part {number} is smaller than 5 MiB and is not the last part.", code="part_too_small"
            )
    return chosen


def upload_done(
    identity: Identity,
    *,
    tenant: str,
    key: str,
    upload_id: str,
    parts: Sequence[tuple[int, str]],
    model: str,
    version: int,
) -> dict[str, str]:
    access.tenant_access(identity, tenant, access.WRITE)
    chosen = _parts_checked(parts, objectstore.multipart_parts(tenant, key, upload_id))
    objectstore.multipart_complete(tenant, key, upload_id, chosen)
    jobs.model_version_record(tenant, model, version, identity.username)
    return {"uploadId": upload_id, "op": "upload_complete"}


def upload_abort(identity: Identity, *, tenant: str, key: str, upload_id: str) -> dict[str, str]:
    access.tenant_access(identity, tenant, access.WRITE)
    objectstore.multipart_abort(tenant, key, upload_id)
    return {"uploadId": upload_id, "op": "upload_abort"}


def upload_dir(identity: Identity, *, tenant: str, key: str) -> dict[str, Any]:
    access.tenant_access(identity, tenant, access.WRITE)
    return {"dir": objectstore.object_put_empty(tenant, key), "op": "create_dir"}


# --- direct-to-storage uploads (presigned part URLs) ----------------------------------------------
def part_size_for(size: int, requested: int | None) -> int:
    """The part size of a direct upload: as asked, or the default raised so 10,000 parts suffice."""
    if size > OBJECT_SIZE_MAX:
        raise keys.invalid("size", f"An object holds at most {OBJECT_SIZE_MAX} bytes (5 TiB).", code="size_invalid")
    if requested is not None:
        if not PART_SIZE_MIN <= requested <= PART_SIZE_MAX:
            raise keys.invalid("partSize", "A part size is from 5 MiB to 5 GiB.", code="part_size_invalid")
        if math.ceil(size / requested) > PART_NUMBER_MAX:
            raise keys.invalid(
                "partSize", f"It would need more than {PART_NUMBER_MAX} parts.", code="part_size_invalid"
            )
        return requested
    smallest = math.ceil(size / PART_NUMBER_MAX / MIB) * MIB
    return max(settings.IMM_UPLOAD_PART_BYTES, smallest)


def _upload_of(tenant: str, upload_id: str) -> DirectUpload:
    try:
        return DirectUpload.objects.get(pk=uuid.UUID(upload_id), tenant=tenant)
    except (ValueError, DirectUpload.DoesNotExist):
        raise NotFound(description=f"Upload {upload_id} does not exist", code="upload_not_found") from None


def direct_upload_state(upload: DirectUpload) -> dict[str, Any]:
    """The plan, the parts already in the store, and fresh URLs for (the first) missing ones."""
    answer: dict[str, Any] = {
        "uploadId": str(upload.pk),
        "key": upload.key,
        "state": upload.state,
        "size": upload.size,
        "partSize": upload.part_size,
        "partCount": upload.part_count,
    }
    if upload.state != DirectUpload.State.OPEN:
        answer["etag"] = upload.etag
        return answer
    stored = objectstore.multipart_parts(upload.tenant, upload.key, upload.s3_upload_id)
    have = {part["partNumber"] for part in stored}
    missing = [number for number in range(1, upload.part_count + 1) if number not in have]
    expiry = settings.IMM_UPLOAD_URL_EXPIRY_SECONDS
    answer["expiresIn"] = expiry
    answer["uploaded"] = sorted(stored, key=lambda part: part["partNumber"])
    answer["missingCount"] = len(missing)
    answer["missing"] = [
        {
            "partNumber": number,
            "size": upload.expected_part_size(number),
            "url": objectstore.presign_part(upload.tenant, upload.key, upload.s3_upload_id, number, expiry),
        }
        for number in missing[:URLS_PER_ANSWER]
    ]
    return answer


def direct_upload_start(
    identity: Identity, *, tenant: str, model: str, version: int, path: str, size: int, part_size: int | None = None
) -> dict[str, Any]:
    chosen = part_size_for(size, part_size)
    key = keys.object_key(model, version, path)
    access.tenant_access(identity, tenant, access.WRITE)
    upload = DirectUpload.objects.create(
        tenant=tenant,
        model_name=model,
        model_version=version,
        path=path,
        key=key,
        s3_upload_id=objectstore.multipart_start(tenant, key),
        size=size,
        part_size=chosen,
        created_by=identity.username,
    )
    return direct_upload_state(upload)


def direct_upload_get(identity: Identity, *, tenant: str, upload_id: str) -> dict[str, Any]:
    access.tenant_access(identity, tenant, access.WRITE)
    return direct_upload_state(_upload_of(tenant, upload_id))


def direct_upload_complete(identity: Identity, *, tenant: str, upload_id: str, checksums: dict[int, str]) -> Operation:
    """Check at once what needs no store call, then verify and assemble in a task (it can take minutes)."""
    access.tenant_access(identity, tenant, access.WRITE)
    upload = _upload_of(tenant, upload_id)
    if upload.state != DirectUpload.State.OPEN:
        raise Conflict(description=f"Upload {upload_id} is {upload.state.lower()}", code="upload_not_open")
    expected = set(range(1, upload.part_count + 1))
    if set(checksums) != expected:
        raise keys.invalid(
            "parts", f"Give the MD5 of every part from 1 to {upload.part_count}, once each.", code="parts_invalid"
        )
    return operation_create(
        task=tasks.complete_direct_upload,
        target=f"{tenant}/{upload.key}",
        identity=identity,
        params={"upload": str(upload.pk), "md5": {str(number): md5 for number, md5 in checksums.items()}},
    )


def direct_upload_abort(identity: Identity, *, tenant: str, upload_id: str) -> dict[str, str]:
    access.tenant_access(identity, tenant, access.WRITE)
    upload = _upload_of(tenant, upload_id)
    if upload.state == DirectUpload.State.COMPLETED:
        raise Conflict(description=f"Upload {upload_id} is completed", code="upload_not_open")
    with contextlib.suppress(NotFound):  # already aborted (by the reaper, or a repeated request)
        objectstore.multipart_abort(upload.tenant, upload.key, upload.s3_upload_id)
    DirectUpload.objects.filter(pk=upload.pk).update(state=DirectUpload.State.ABORTED, finished_at=timezone.now())
    return {"uploadId": upload_id}


# --- extraction and import (Operations) ---------------------------------------------------------------
def model_extract(
    identity: Identity, *, tenant: str, model: str, version: int, archive: str, keep_archive: bool = False
) -> Operation:
    """Unpack a tarball already in the tenant's bucket into ``<model>/<version>/`` (a task with progress)."""
    access.tenant_access(identity, tenant, access.WRITE)
    if objectstore.object_head(tenant, archive) is None:
        raise NotFound(description=f"Archive {archive} does not exist", code="archive_not_found")
    prefix = keys.version_prefix(model, version)
    return operation_create(
        task=tasks.extract_model_archive,
        target=f"{tenant}/{prefix}",
        identity=identity,
        params={"tenant": tenant, "model": model, "version": version, "archive": archive, "keep": keep_archive},
    )


def _s3_source(source: str) -> tuple[str, str]:
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not matches(DNS_1123_LABEL, bucket) or len(bucket) > 63:
        raise keys.invalid("source", f"{bucket!r} is not a tenant name.", code="source_invalid")
    keys.relative_path(prefix.rstrip("/"), "source")
    return bucket, prefix


def model_import(
    identity: Identity, *, tenant: str, model: str, version: int, source: str, path: str | None = None
) -> Operation:
    """Import into ``<model>/<version>/`` from ``s3://<tenant>/<path>`` (a tenant the caller may read;
    copied inside the store) or from an http(s) URL (downloaded by a worker)."""
    params: dict[str, Any] = {"tenant": tenant, "model": model, "version": version, "path": path}
    # The path's tenant first, as on every tenant route (404 unknown, 403 not the caller's); only then
    # the source, whose check may resolve a host name: nothing is looked up for an outsider.
    access.tenant_access(identity, tenant, access.WRITE)
    if source.startswith("s3://"):
        bucket, prefix = _s3_source(source)
        access.tenant_access(identity, bucket, access.READ)
        params.update(kind="s3", bucket=bucket, prefix=prefix)
    else:
        importing.url_checked(source)
        name = path or unquote(urlsplit(source).path.rstrip("/").rsplit("/", 1)[-1])
        params.update(kind="url", url=source, path=keys.relative_path(name, "path"))
    return operation_create(
        task=tasks.import_model,
        target=f"{tenant}/{keys.version_prefix(model, version)}",
        identity=identity,
        params=params,
    )
