"""The model routes (docs/compatibility.md) and the direct-upload routes (new).

Views validate everything (names, numbers, sizes) and answer 400 before any upstream call; the
services then check the caller's right to act in the tenant (403) before touching the bucket.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS
from inferencemgmt.api.requests import validated
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.views import TenantView
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest
from inferencemgmt.objectstore import PART_NUMBER_MAX, PART_NUMBER_MIN
from inferencemgmt.operations.api.answers import answer_operation
from inferencemgmt.operations.api.schemas import ACCEPTED
from inferencemgmt.operations.models import Operation
from models_store import keys, selectors, services
from models_store.api import schemas as answers
from models_store.api import serializers as bodies
from models_store.api.body import RequestBody

# The five query parameters of the part PUT, in the order the original checked them.
PART_PARAMETERS = ("modelName", "modelVersion", "fileName", "partNumber", "uploadId")


def _content_length(request: Request) -> int:
    """The part's size, known before the first byte is sent (S3 needs it up front).

    No Content-Length and no Transfer-Encoding is an empty body (RFC 9112 §6.3; how a client sends
    the original protocol's empty last part); a chunked body of unknown size is refused (411).
    """
    raw = request.META.get("CONTENT_LENGTH") or ""
    length = ascii_int(raw)
    if length is not None:
        return length
    if not raw and not request.META.get("HTTP_TRANSFER_ENCODING"):
        return 0
    raise BadRequest(
        "Length required", "A part needs a Content-Length header.", code="content_length_required", status=411
    )


def _key(data: dict[str, Any]) -> str:
    return keys.object_key(data["modelName"], data["modelVersion"], data["fileName"], data.get("key"))


class ModelCollectionView(TenantView):
    @extend_schema(
        operation_id="tenants_models_list",
        parameters=[
            OpenApiParameter(
                "view", str, enum=["grouped"], description="grouped: models → versions → files (a page of models)."
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: answers.MODEL_LIST_ANSWER, 400: error_response(400)},
        summary="Model files of the tenant, one page (?view=grouped: models → versions → files, with endpoints)",
    )
    def get(self, request: Request) -> Response:
        grouped = request.query_params.get("view") == "grouped"
        scope = selectors.model_page_scope(self.identity, self.tenant, "grouped" if grouped else "files")
        page = paging.page_request(request.query_params, scope)
        if grouped:
            found, following = selectors.model_grouped_page(self.identity, self.tenant, page)
        else:
            found, following = selectors.model_page(self.identity, self.tenant, page)
        return paging.page_answer("OK", {"models": found}, following)

    @extend_schema(
        operation_id="tenants_models_destroy_by_body",
        request=bodies.ModelDeleteSerializer,
        responses={200: answers.MODEL_DELETED_ANSWER},
        summary="Delete a model version (409 while served)",
    )
    def delete(self, request: Request) -> Response:
        data = validated(bodies.ModelDeleteSerializer, request.data)
        name = keys.model_name(data["modelName"])
        result = services.model_delete(
            self.identity,
            tenant=self.tenant,
            name=name,
            version=data["modelVersion"],
            force=data["force"],
        )
        return envelope("DELETED", result)


class UploadPartView(TenantView):
    """``PUT /tenants/<t>/upload?modelName=&modelVersion=&fileName=&partNumber=&uploadId=[&key=]``."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "modelName",
                {
                    "type": "string",
                    "minLength": 3,
                    "maxLength": keys.MODEL_NAME_MAX,
                    "pattern": keys.MODEL_NAME_PATTERN,
                },
                required=True,
            ),
            OpenApiParameter(
                "modelVersion", {"type": "integer", "minimum": 1, "maximum": keys.VERSION_MAX}, required=True
            ),
            OpenApiParameter("fileName", {"type": "string", "pattern": keys.RELATIVE_PATH_PATTERN}, required=True),
            OpenApiParameter(
                "partNumber", {"type": "integer", "minimum": PART_NUMBER_MIN, "maximum": PART_NUMBER_MAX}, required=True
            ),
            OpenApiParameter("uploadId", str, required=True),
            OpenApiParameter(
                "key",
                {"type": "string", "pattern": keys.RELATIVE_PATH_PATTERN},
                description="Path of the file inside the version (default fileName).",
            ),
        ],
        request={"application/octet-stream": bytes},
        responses={200: answers.UPLOAD_PART_ANSWER, 411: error_response(411)},
        summary="Upload one part (streamed to the store)",
    )
    def put(self, request: Request) -> Response:
        query = request.query_params
        for name in PART_PARAMETERS:
            if not query.get(name):
                raise BadRequest(f"{name} parameter required", code="parameter_missing")
        model = keys.model_name(query["modelName"])
        version = keys.version(query["modelVersion"])
        key = keys.object_key(model, version, query["fileName"], query.get("key") or None)
        part_number = keys.part_number(query["partNumber"])
        upload_id = services.upload_id_checked(query["uploadId"])
        length = services.part_length_checked(_content_length(request))
        body = RequestBody(request.stream, length)
        result = services.upload_part(
            self.identity,
            tenant=self.tenant,
            key=key,
            upload_id=upload_id,
            part_number=part_number,
            body=body,
            length=length,
        )
        return envelope("OK", result)


class UploadStartView(TenantView):
    @extend_schema(
        request=bodies.UploadStartSerializer,
        responses=answers.UPLOAD_STARTED_ANSWER,
        summary="Start a multipart upload (original protocol)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.UploadStartSerializer, request.data)
        return envelope("OK", services.upload_start(self.identity, tenant=self.tenant, key=_key(data)))


class UploadDoneView(TenantView):
    @extend_schema(
        request=bodies.UploadDoneSerializer,
        responses=answers.UPLOAD_DONE_ANSWER,
        summary="Complete a multipart upload (original protocol)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.UploadDoneSerializer, request.data)
        result = services.upload_done(
            self.identity,
            tenant=self.tenant,
            key=_key(data),
            upload_id=services.upload_id_checked(data["uploadId"]),
            parts=data["parts"],
            model=data["modelName"],
            version=data["modelVersion"],
        )
        return envelope("OK", result)


class UploadAbortView(TenantView):
    @extend_schema(
        request=bodies.UploadAbortSerializer,
        responses=answers.UPLOAD_ABORTED_ANSWER,
        summary="Abort a multipart upload (original protocol)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.UploadAbortSerializer, request.data)
        result = services.upload_abort(
            self.identity,
            tenant=self.tenant,
            key=_key(data),
            upload_id=services.upload_id_checked(data["uploadId"]),
        )
        return envelope("OK", result)


class UploadDirView(TenantView):
    @extend_schema(
        request=bodies.UploadDirSerializer,
        responses=answers.UPLOAD_DIR_ANSWER,
        summary="Create an empty directory (zero-byte marker)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.UploadDirSerializer, request.data)
        key = keys.directory_key(data["modelName"], data["modelVersion"], data["key"])
        return envelope("OK", services.upload_dir(self.identity, tenant=self.tenant, key=key))


class DirectUploadCollectionView(TenantView):
    @extend_schema(
        request=bodies.DirectStartSerializer,
        responses=answers.DIRECT_UPLOAD_CREATED_ANSWER,
        summary="Start a direct upload: presigned part URLs",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.DirectStartSerializer, request.data)
        model = keys.model_name(data["modelName"])
        path = keys.relative_path(data["path"], "path")
        result = services.direct_upload_start(
            self.identity,
            tenant=self.tenant,
            model=model,
            version=data["modelVersion"],
            path=path,
            size=data["size"],
            part_size=data.get("partSize"),
        )
        return envelope("CREATED", result)


class DirectUploadView(TenantView):
    @extend_schema(
        responses=answers.DIRECT_UPLOAD_ANSWER,
        summary="A direct upload: parts in the store, fresh URLs for the missing ones (resume)",
    )
    def get(self, request: Request, upload_id: str) -> Response:
        return envelope(
            "OK",
            services.direct_upload_get(self.identity, tenant=self.tenant, upload_id=upload_id),
        )

    @extend_schema(
        request=None,
        responses={200: answers.DIRECT_UPLOAD_ABORTED_ANSWER},
        summary="Abort a direct upload (its parts are deleted)",
    )
    def delete(self, request: Request, upload_id: str) -> Response:
        result = services.direct_upload_abort(self.identity, tenant=self.tenant, upload_id=upload_id)
        return envelope("DELETED", result)


class DirectUploadCompleteView(TenantView):
    @extend_schema(
        request=bodies.DirectCompleteSerializer,
        responses={200: answers.DIRECT_UPLOAD_COMPLETED_ANSWER, 202: ACCEPTED},
        summary="Verify (size and MD5 of every part) and assemble; waits, or 202 with Prefer: respond-async",
    )
    def post(self, request: Request, upload_id: str) -> Response:
        data = validated(bodies.DirectCompleteSerializer, request.data)
        operation = services.direct_upload_complete(
            self.identity, tenant=self.tenant, upload_id=upload_id, checksums=data["parts"]
        )
        return _answer(request, operation, upload_id)


def _answer(request: Request, operation: Operation, name: str) -> Response:
    """Wait for the operation (bounded) and answer ``CREATED`` with its result, or 202 to follow it."""
    return answer_operation(request, operation, name=name, done_status="CREATED", result_as_data=True)


class ModelExtractView(TenantView):
    @extend_schema(
        request=bodies.ModelExtractSerializer,
        responses={200: answers.MODEL_EXTRACTED_ANSWER, 202: ACCEPTED},
        summary="Unpack a tarball in the bucket into <model>/<version>/ (a task; Prefer: respond-async)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.ModelExtractSerializer, request.data)
        operation = services.model_extract(
            self.identity,
            tenant=self.tenant,
            model=keys.model_name(data["modelName"]),
            version=data["modelVersion"],
            archive=keys.relative_path(data["archive"], "archive"),
            keep_archive=data["keepArchive"],
        )
        return _answer(request, operation, data["modelName"])


class ModelImportView(TenantView):
    @extend_schema(
        request=bodies.ModelImportSerializer,
        responses={200: answers.MODEL_IMPORTED_ANSWER, 202: ACCEPTED},
        summary="Import a model from s3://<tenant>/<path> or an http(s) URL (a task; Prefer: respond-async)",
    )
    def post(self, request: Request) -> Response:
        data = validated(bodies.ModelImportSerializer, request.data)
        path = data.get("path")
        operation = services.model_import(
            self.identity,
            tenant=self.tenant,
            model=keys.model_name(data["modelName"]),
            version=data["modelVersion"],
            source=data["source"],
            path=keys.relative_path(path, "path") if path else None,
        )
        return _answer(request, operation, data["modelName"])
