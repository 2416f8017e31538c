"""``/servings`` and ``/servings/<name>``: read by every authenticated user, written by platform admins."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS
from inferencemgmt.api.permissions import IsAuthenticatedIdentity, ReadForMembersWriteForAdmins
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.views import IdentityView
from servings import selectors, services
from servings.api.schemas import (
    SERVING_ANSWER,
    SERVING_CREATED_ANSWER,
    SERVING_DELETED_ANSWER,
    SERVING_LIST_ANSWER,
    SERVING_REPLACED_ANSWER,
    SERVING_TEMPLATE_BODY,
)


class ServingListView(IdentityView):
    @extend_schema(
        operation_id="servings_list",
        parameters=PAGE_PARAMETERS,
        responses={200: SERVING_LIST_ANSWER, 400: error_response(400)},
        summary="Names of the serving templates, one page",
    )
    def get(self, request: Request) -> Response:
        """``{"status": "OK", "data": ["ovms", "tf-serving"]}`` (``"continue"`` beside ``data`` when there is more)."""
        page = paging.page_request(request.query_params, selectors.serving_page_scope(self.identity))
        names, following = selectors.serving_page(self.identity, page)
        return paging.page_answer("OK", names, following)


class ServingDetailView(IdentityView):
    permission_classes = [IsAuthenticatedIdentity, ReadForMembersWriteForAdmins]

    @extend_schema(responses=SERVING_ANSWER, summary="A serving's template texts")
    def get(self, request: Request, name: str) -> Response:
        """``{"status": "OK", "data": {"configMap.tmpl": "...", "deployment.tmpl": "...", ...}}``."""
        return envelope("OK", selectors.serving_get(self.identity, name))

    @extend_schema(
        request=SERVING_TEMPLATE_BODY, responses=SERVING_CREATED_ANSWER, summary="Add a serving template (admins)"
    )
    def post(self, request: Request, name: str) -> Response:
        services.serving_create(self.identity, name, request.data)
        return envelope("CREATED", {"name": name})

    @extend_schema(
        request=SERVING_TEMPLATE_BODY, responses=SERVING_REPLACED_ANSWER, summary="Replace a serving template (admins)"
    )
    def put(self, request: Request, name: str) -> Response:
        services.serving_replace(self.identity, name, request.data)
        return envelope("PATCHED", {"name": name})

    @extend_schema(
        request=None,
        responses={200: SERVING_DELETED_ANSWER},
        summary="Delete a serving template no endpoint uses (admins)",
    )
    def delete(self, request: Request, name: str) -> Response:
        services.serving_delete(self.identity, name)
        return envelope("DELETED", {"name": name})
