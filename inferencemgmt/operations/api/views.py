"""``GET /tasks`` and ``GET /tasks/<id>``: follow long operations (the CLI and the console poll these)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt import paging
from inferencemgmt.api.openapi import page_parameters
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.validation import CONTROL_CHARACTERS
from inferencemgmt.api.views import IdentityView
from inferencemgmt.errors import ValidationFailed
from inferencemgmt.operations.api.schemas import TASK_ANSWER, TASK_LIST_ANSWER
from inferencemgmt.operations.api.serializers import OperationSerializer
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.selectors import operation_get, operation_page, operations_visible_to

DEFAULT_LIST = 50
MAX_LIST = 200


class OperationListView(IdentityView):
    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=list(Operation.State.values)),
            OpenApiParameter("kind", str),
            *page_parameters(DEFAULT_LIST, MAX_LIST),
        ],
        operation_id="tasks_list",
        responses={200: TASK_LIST_ANSWER, 400: error_response(400)},
    )
    def get(self, request: Request) -> Response:
        operations = operations_visible_to(self.identity)
        state = request.query_params.get("state")
        if state:
            if state not in Operation.State.values:
                raise ValidationFailed(description=f"state: must be one of {', '.join(Operation.State.values)}")
            operations = operations.filter(state=state)
        kind = request.query_params.get("kind")
        if kind and CONTROL_CHARACTERS.search(kind):
            raise ValidationFailed(description="kind: control characters are not allowed")
        if kind:
            operations = operations.filter(kind=kind)
        page = paging.page_request(
            request.query_params,
            paging.scope_of("tasks", self.identity.username, state=state, kind=kind),
            default=DEFAULT_LIST,
            maximum=MAX_LIST,
        )
        found, following = operation_page(operations, page)
        return paging.page_answer("OK", {"tasks": OperationSerializer(found, many=True).data}, following)


class OperationDetailView(IdentityView):
    @extend_schema(responses=TASK_ANSWER)
    def get(self, request: Request, operation_id: str) -> Response:
        return envelope("OK", OperationSerializer(operation_get(self.identity, operation_id)).data)
