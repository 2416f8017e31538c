"""Thin Celery wrappers over the task bodies of jobs.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings

from inferencemgmt.celery import app
from inferencemgmt.operations.execution import OperationRun, operation_task
from models_store import jobs

logger = logging.getLogger(__name__)


@operation_task("models.upload_complete")
def complete_direct_upload(run: OperationRun) -> dict[str, Any]:
    """Verify a direct upload's parts (size and MD5 of each), assemble the object, record the version."""
    params = run.params
    with run.step("verify and assemble") as progress:
        return jobs.direct_upload_finish(params["upload"], params["md5"], run.identity.username, progress)


@app.task(name="models.abort_stale_uploads", ignore_result=True)  # type: ignore[untyped-decorator]
def abort_stale_uploads() -> int:
    """Periodic (Celery beat): abort multipart uploads older than IMM_UPLOAD_MAX_AGE_HOURS."""
    aborted = jobs.uploads_abort_stale(timedelta(hours=settings.IMM_UPLOAD_MAX_AGE_HOURS))
    logger.info("Aborted %d stale multipart uploads", aborted)
    return aborted


@operation_task("models.extract")
def extract_model_archive(run: OperationRun) -> dict[str, Any]:
    """Unpack a tarball in the tenant's bucket into a model version directory."""
    with run.step("extract") as progress:
        return jobs.model_extract_run(run.params, run.identity.username, progress)


@operation_task("models.import")
def import_model(run: OperationRun) -> dict[str, Any]:
    """Copy a model from another tenant's bucket path, or download it from an http(s) URL."""
    with run.step("import") as progress:
        return jobs.model_import_run(run.params, run.identity.username, progress)
