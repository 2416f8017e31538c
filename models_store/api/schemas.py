"""The answers of the model and upload routes, as the OpenAPI schema documents them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from inferencemgmt.api.openapi import envelope_answer, page_envelope_answer, shape
from models_store.models import DirectUpload


def _count() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0)


_FILE = shape(
    "ModelFile",
    {
        "path": serializers.CharField(help_text="<model>/<version>/<file>"),
        "name": serializers.CharField(),
        "version": serializers.CharField(help_text="A string, as in the original."),
        "size": _count(),
    },
)
_GROUP = shape(
    "ModelGroup",
    {
        "name": serializers.CharField(),
        "size": _count(),
        "versions": shape(
            "ModelGroupVersion",
            {
                "version": serializers.CharField(),
                "size": _count(),
                "files": shape("ModelGroupFile", {"path": serializers.CharField(), "size": _count()}, many=True),
                "endpoints": serializers.ListField(
                    child=serializers.CharField(), help_text="Endpoints that serve this version."
                ),
            },
            many=True,
        ),
    },
)
MODEL_LIST_ANSWER = page_envelope_answer(
    "ModelListAnswer",
    shape(
        "ModelList",
        {
            "models": PolymorphicProxySerializer(
                component_name="ModelEntry",
                serializers=[_FILE, _GROUP],
                resource_type_field_name=None,
                many=True,
                help_text="One entry per file; with ?view=grouped one per model (versions, files, endpoints).",
            )
        },
    ),
)
MODEL_DELETED_ANSWER = envelope_answer(
    "ModelDeletedAnswer",
    "DELETED",
    shape("ModelDeleted", {"model_path": serializers.CharField(help_text="<model>/<version>/")}),
)


def _upload_step(name: str, op: str, fields: dict[str, serializers.Field[Any, Any, Any, Any]]) -> Any:
    """The original protocol's answers: what was done (``op``) and its result."""
    return envelope_answer(f"{name}Answer", "OK", shape(name, {**fields, "op": serializers.ChoiceField(choices=[op])}))


UPLOAD_STARTED_ANSWER = _upload_step("UploadStarted", "upload_init", {"uploadId": serializers.CharField()})
UPLOAD_PART_ANSWER = _upload_step("UploadPartStored", "upload_part", {"ETag": serializers.CharField()})
UPLOAD_DONE_ANSWER = _upload_step("UploadCompleted", "upload_complete", {"uploadId": serializers.CharField()})
UPLOAD_ABORTED_ANSWER = _upload_step("UploadAborted", "upload_abort", {"uploadId": serializers.CharField()})
UPLOAD_DIR_ANSWER = _upload_step(
    "UploadDirCreated",
    "create_dir",
    {"dir": shape("UploadDirObject", {"Key": serializers.CharField(), "ETag": serializers.CharField()})},
)

_PART_URL = shape(
    "DirectUploadPartUrl",
    {"partNumber": serializers.IntegerField(min_value=1), "size": _count(), "url": serializers.CharField()},
)
_STORED_PART = shape(
    "DirectUploadStoredPart",
    {"partNumber": serializers.IntegerField(min_value=1), "size": _count(), "etag": serializers.CharField()},
)
_DIRECT_UPLOAD = shape(
    "DirectUpload",
    {
        "uploadId": serializers.UUIDField(),
        "key": serializers.CharField(),
        "state": serializers.ChoiceField(choices=DirectUpload.State.values),
        "size": _count(),
        "partSize": serializers.IntegerField(min_value=1),
        "partCount": _count(),
        "etag": serializers.CharField(required=False, allow_blank=True, help_text="Once completed."),
        "expiresIn": serializers.IntegerField(
            required=False, help_text="Seconds the part URLs stay valid (open only)."
        ),
        "uploaded": serializers.ListField(child=_STORED_PART, required=False),
        "missingCount": serializers.IntegerField(required=False, min_value=0),
        "missing": serializers.ListField(
            child=_PART_URL, required=False, help_text="Presigned PUT URLs for (the first) missing parts."
        ),
    },
)
DIRECT_UPLOAD_CREATED_ANSWER = envelope_answer("DirectUploadCreatedAnswer", "CREATED", _DIRECT_UPLOAD)
DIRECT_UPLOAD_ANSWER = envelope_answer("DirectUploadAnswer", "OK", _DIRECT_UPLOAD)
DIRECT_UPLOAD_ABORTED_ANSWER = envelope_answer(
    "DirectUploadAbortedAnswer", "DELETED", shape("DirectUploadAborted", {"uploadId": serializers.UUIDField()})
)
DIRECT_UPLOAD_COMPLETED_ANSWER = envelope_answer(
    "DirectUploadCompletedAnswer",
    "CREATED",
    shape(
        "DirectUploadCompleted",
        {
            "uploadId": serializers.UUIDField(),
            "key": serializers.CharField(),
            "size": _count(),
            "etag": serializers.CharField(),
            "modelName": serializers.CharField(),
            "modelVersion": serializers.IntegerField(min_value=1),
        },
    ),
)
MODEL_EXTRACTED_ANSWER = envelope_answer(
    "ModelExtractedAnswer",
    "CREATED",
    shape(
        "ModelExtracted",
        {
            "model_path": serializers.CharField(),
            "files": _count(),
            "directories": _count(),
            "skipped": shape(
                "ModelExtractSkipped",
                {"name": serializers.CharField(), "reason": serializers.CharField()},
                many=True,
                help_text="The first ten members not extracted (names longer than 200 characters are cut).",
            ),
            "skippedCount": serializers.IntegerField(
                min_value=0, help_text="How many members were not extracted (links, unsafe names)."
            ),
        },
    ),
)
MODEL_IMPORTED_ANSWER = envelope_answer(
    "ModelImportedAnswer",
    "CREATED",
    shape(
        "ModelImported",
        {
            "model_path": serializers.CharField(),
            "files": _count(),
            "key": serializers.CharField(required=False, help_text="The object written, for a single-file import."),
            "size": serializers.IntegerField(required=False, min_value=0),
        },
    ),
)
