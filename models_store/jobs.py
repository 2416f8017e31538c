"""The bodies of the model tasks: what a worker runs for an Operation, and the records they leave.

They live apart from ``services`` (which creates the Operations and enqueues ``tasks``) so that the
import graph has no cycle: services -> tasks -> jobs, and services -> jobs for the shared records.
Access was checked by the service that created the Operation; a job trusts its parameters.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from inferencemgmt import kube, objectstore
from inferencemgmt.errors import BadRequest, NotFound
from models_store import importing, keys
from models_store.models import DirectUpload, ModelVersion


def unquoted_etag(etag: str) -> str:
    """An ETag as S3 compares it: without quotes, lower case."""
    return etag.strip().strip('"').lower()


def model_version_record(tenant: str, name: str, version: int, username: str) -> ModelVersion | None:
    """Record what the version directory holds now (after an upload finished); None when it is empty."""
    files = total = 0
    for item in objectstore.objects_iter(tenant, keys.version_prefix(name, version)):
        if item["size"] > 0:
            files += 1
            total += item["size"]
    if files == 0:
        ModelVersion.objects.filter(tenant=tenant, name=name, version=version).delete()
        return None
    record, _ = ModelVersion.objects.update_or_create(
        tenant=tenant, name=name, version=version, defaults={"files": files, "bytes": total, "recorded_by": username}
    )
    return record


def direct_upload_finish(upload_id: str, checksums: dict[str, str], username: str, progress: Any) -> dict[str, Any]:
    """The task's body: every part present, of its planned size and MD5; then assemble and record.

    A mismatch fails the operation (400) and leaves the upload open, so the client re-sends the bad
    part and completes again. Re-run after a crash: an upload the store already assembled (the
    upload id is gone, the object has the declared size) is finished, not failed.
    """
    upload = DirectUpload.objects.get(pk=upload_id)
    if upload.state == DirectUpload.State.COMPLETED:
        return _finished(upload)
    try:
        stored = objectstore.multipart_parts(upload.tenant, upload.key, upload.s3_upload_id)
    except NotFound:
        head = objectstore.object_head(upload.tenant, upload.key)
        if head is None or head["size"] != upload.size:
            raise
        return _mark_completed(upload, head["etag"], username)
    by_number = {part["partNumber"]: part for part in stored}
    progress.set_total(upload.part_count)
    for number in range(1, upload.part_count + 1):
        part = by_number.get(number)
        if part is None:
            raise BadRequest("Upload incomplete", f"Part {number} has not been uploaded.", code="upload_incomplete")
        if part["size"] != upload.expected_part_size(number):
            raise BadRequest(
                "Upload size mismatch",
                f"Part {number} holds {part['size']} bytes; {upload.expected_part_size(number)} were planned.",
                code="upload_size_mismatch",
            )
        if unquoted_etag(part["etag"]) != checksums[str(number)].lower():
            raise BadRequest(
                "Checksum mismatch",
                f"The MD5 of part {number} in the store differs from the one given; upload it again.",
                code="upload_checksum_mismatch",
            )
        progress.advance()
    extra = sorted(set(by_number) - set(range(1, upload.part_count + 1)))
    if extra:
        raise BadRequest("Upload size mismatch", f"Part {extra[0]} is beyond the plan.", code="upload_size_mismatch")
    parts = [(number, by_number[number]["etag"]) for number in range(1, upload.part_count + 1)]
    etag = objectstore.multipart_complete(upload.tenant, upload.key, upload.s3_upload_id, parts)
    head = objectstore.object_head(upload.tenant, upload.key)
    if head is None or head["size"] != upload.size:
        raise BadRequest(
            "Upload size mismatch", "The assembled object is not of the declared size.", code="upload_size_mismatch"
        )
    return _mark_completed(upload, etag, username)


def _mark_completed(upload: DirectUpload, etag: str, username: str) -> dict[str, Any]:
    DirectUpload.objects.filter(pk=upload.pk, state=DirectUpload.State.OPEN).update(
        state=DirectUpload.State.COMPLETED, etag=etag, finished_at=timezone.now()
    )
    model_version_record(upload.tenant, upload.model_name, upload.model_version, username)
    upload.refresh_from_db()
    return _finished(upload)


def _finished(upload: DirectUpload) -> dict[str, Any]:
    return {
        "uploadId": str(upload.pk),
        "key": upload.key,
        "size": upload.size,
        "etag": upload.etag,
        "modelName": upload.model_name,
        "modelVersion": upload.model_version,
    }


# --- housekeeping -------------------------------------------------------------------------------------
def uploads_abort_stale(max_age: timedelta, tenant: str | None = None) -> int:
    """Abort multipart uploads of either protocol older than ``max_age``: their parts use storage.

    Every tenant's by default (the periodic task); ``tenant`` limits it to one bucket.
    """
    cutoff = timezone.now() - max_age
    aborted = 0
    direct = DirectUpload.objects.filter(state=DirectUpload.State.OPEN, created_at__lt=cutoff)
    if tenant is not None:
        direct = direct.filter(tenant=tenant)
    for upload in direct:
        with contextlib.suppress(NotFound):
            objectstore.multipart_abort(upload.tenant, upload.key, upload.s3_upload_id)
        DirectUpload.objects.filter(pk=upload.pk).update(state=DirectUpload.State.ABORTED, finished_at=timezone.now())
        aborted += 1
    if tenant is None:
        namespaces = kube.platform_namespaces(label_selector=f"created_by={settings.PLATFORM_ADMIN_LABEL}")
        buckets = [str(namespace["metadata"]["name"]) for namespace in namespaces.get("items") or []]
    else:
        buckets = [tenant]
    for bucket in buckets:
        try:
            uploads = objectstore.multipart_uploads(bucket)
        except NotFound:
            continue
        for item in uploads:
            initiated = item["initiated"]
            if initiated is not None and initiated < cutoff:
                try:
                    objectstore.multipart_abort(bucket, item["key"], item["uploadId"])
                except NotFound:
                    continue
                aborted += 1
    return aborted


def model_extract_run(params: dict[str, Any], username: str, progress: Any) -> dict[str, Any]:
    tenant, model, version = params["tenant"], params["model"], params["version"]
    prefix = keys.version_prefix(model, version)
    result = importing.archive_extract(tenant, params["archive"], prefix, progress)
    if not params["keep"]:
        objectstore.objects_delete(tenant, [params["archive"]])
    model_version_record(tenant, model, version, username)
    return {"model_path": prefix, **result}


def model_import_run(params: dict[str, Any], username: str, progress: Any) -> dict[str, Any]:
    tenant, model, version = params["tenant"], params["model"], params["version"]
    prefix = keys.version_prefix(model, version)
    if params["kind"] == "url":
        result = importing.url_import(params["url"], tenant, prefix + params["path"], progress)
        model_version_record(tenant, model, version, username)
        return {"model_path": prefix, "files": 1, **result}
    source_prefix: str = params["prefix"]
    items = list(objectstore.objects_iter(params["bucket"], source_prefix))
    if not items:
        raise NotFound(description=f"Nothing at s3://{params['bucket']}/{source_prefix}", code="source_not_found")
    progress.set_total(len(items))
    target = prefix + (f"{params['path']}/" if params.get("path") else "")
    single = len(items) == 1 and items[0]["key"] == source_prefix
    for item in items:
        if single:
            relative = params.get("path") or source_prefix.rsplit("/", 1)[-1]
            destination = prefix + relative
        else:
            base = source_prefix if source_prefix.endswith("/") else source_prefix + "/"
            destination = target + item["key"][len(base) :]
        objectstore.object_copy(params["bucket"], item["key"], tenant, destination)
        progress.advance()
    model_version_record(tenant, model, version, username)
    return {"model_path": prefix, "files": len(items)}
