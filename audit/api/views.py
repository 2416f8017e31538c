"""``GET /audit`` (a page of records) and ``GET /audit/export`` (the same filters as CSV)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from audit import selectors
from audit.api.schemas import AUDIT_LIST_ANSWER
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.views import IdentityView
from inferencemgmt.auth.identity import Identity

FILTERS = [
    OpenApiParameter("tenant", str, description="Only this tenant's records (members: one of theirs)."),
    OpenApiParameter("user", str, description="Only this user's (or robot's) records."),
    OpenApiParameter("action", str, enum=sorted(selectors.KNOWN_ACTIONS)),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Records at or after (ISO 8601)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Records before (ISO 8601)."),
]
CSV_COLUMNS = [
    "id",
    "time",
    "user",
    "groups",
    "robot",
    "action",
    "tenant",
    "target",
    "method",
    "route",
    "statusCode",
    "outcome",
    "error",
    "operationId",
    "requestId",
    "clientAddress",
]


class AuditListView(IdentityView):
    @extend_schema(
        parameters=[
            *FILTERS,
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": selectors.PAGE_MAX},
                description=f"Default {selectors.PAGE_DEFAULT}.",
            ),
            OpenApiParameter("continue", str, description="The previous page's `continue`."),
        ],
        operation_id="audit_list",
        responses={200: AUDIT_LIST_ANSWER, 400: error_response(400)},
    )
    def get(self, request: Request) -> Response:
        filters = selectors.audit_filters(request.query_params)
        limit = selectors.page_limit(request.query_params.get("limit"))
        page = selectors.audit_page(self.identity, filters, limit=limit, token=request.query_params.get("continue"))
        items = [selectors.audit_as_dict(record) for record in page.records]
        return envelope("OK", {"items": items, "continue": page.continue_token})


def _spreadsheet_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (names come from users)."""
    text = ";".join(value) if isinstance(value, list) else "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(records: Iterator[Any]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for record in records:
        row = selectors.audit_as_dict(record)
        yield writer.writerow([_spreadsheet_safe(row[column]) for column in CSV_COLUMNS])


def csv_response(identity: Identity, query: Any) -> StreamingHttpResponse:
    """The matching records as CSV (at most ``IMM_AUDIT_EXPORT_MAX_ROWS``), streamed."""
    filters = selectors.audit_filters(query)
    records = selectors.audit_rows(identity, filters, limit=settings.IMM_AUDIT_EXPORT_MAX_ROWS)
    response = StreamingHttpResponse(csv_lines(records), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


class AuditExportView(IdentityView):
    """Left out of the OpenAPI schema: its answer is CSV, not the API's JSON envelope that every
    documented success is (tests/hardening/test_schema_precision.py); README "Audit trail" documents it."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> StreamingHttpResponse:
        return csv_response(self.identity, request.query_params)
