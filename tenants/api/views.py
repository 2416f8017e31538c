"""The tenant routes: the documented `/tenants` collection and the new `/tenants/<name>`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS
from inferencemgmt.api.permissions import IsAuthenticatedIdentity, IsPlatformAdmin
from inferencemgmt.api.requests import request_identity, validated
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.errors import BadRequest
from inferencemgmt.operations.api.answers import accepted, answer_operation
from inferencemgmt.operations.api.schemas import ACCEPTED
from tenants import selectors, services
from tenants.api.schemas import (
    TENANT_ANSWER,
    TENANT_CREATED_ANSWER,
    TENANT_DELETED_ANSWER,
    TENANT_LIST_ANSWER,
    TENANT_PATCHED_ANSWER,
)
from tenants.api.serializers import TenantCreateSerializer, TenantNameSerializer, TenantUpdateSerializer


class AdminForWrites(APIView):
    """Reads are for every signed-in user (and filtered); writes are for platform admins only,
    checked before the body is read, as in the original."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticatedIdentity()]
        return [IsAuthenticatedIdentity(), IsPlatformAdmin()]

    def _delete(self, request: Request, name: str) -> Response:
        operation = services.tenant_delete(request_identity(request), name=name)
        return answer_operation(request, operation, name=name, done_status="DELETED")


class TenantCollectionView(AdminForWrites):
    @extend_schema(
        operation_id="tenants_list",
        parameters=PAGE_PARAMETERS,
        responses={200: TENANT_LIST_ANSWER, 400: error_response(400)},
        summary="Tenants the caller may see (admins: all), one page",
    )
    def get(self, request: Request) -> Response:
        identity = request_identity(request)
        page = paging.page_request(request.query_params, selectors.tenant_page_scope(identity))
        names, following = selectors.tenant_page(identity, page)
        return paging.page_answer("OK", {"tenants": names}, following)

    @extend_schema(
        request=TenantCreateSerializer,
        responses={200: TENANT_CREATED_ANSWER, 202: ACCEPTED},
        summary="Create a tenant (waits, or 202 with Prefer: respond-async)",
    )
    def post(self, request: Request) -> Response:
        data = validated(TenantCreateSerializer, request.data)
        operation = services.tenant_create(request_identity(request), **data)
        return answer_operation(request, operation, name=data["name"], done_status="CREATED")

    @extend_schema(
        operation_id="tenants_destroy_by_body",
        request=TenantNameSerializer,
        responses={200: TENANT_DELETED_ANSWER, 202: ACCEPTED},
        summary="Delete a tenant (documented body form)",
    )
    def delete(self, request: Request) -> Response:
        return self._delete(request, validated(TenantNameSerializer, request.data)["name"])


class TenantDetailView(AdminForWrites):
    @extend_schema(responses=TENANT_ANSWER, summary="A tenant's scope, quota usage, endpoint count and bucket size")
    def get(self, request: Request, name: str) -> Response:
        return envelope("OK", selectors.tenant_get(request_identity(request), selectors.known_tenant_name(name)))

    @extend_schema(
        request=TenantUpdateSerializer, responses=TENANT_PATCHED_ANSWER, summary="Replace a tenant's quota and/or scope"
    )
    def patch(self, request: Request, name: str) -> Response:
        data = validated(TenantUpdateSerializer, request.data)
        return envelope(
            "PATCHED", services.tenant_update(request_identity(request), name=selectors.known_tenant_name(name), **data)
        )

    @extend_schema(request=None, responses={200: TENANT_DELETED_ANSWER, 202: ACCEPTED}, summary="Delete a tenant")
    def delete(self, request: Request, name: str) -> Response:
        return self._delete(request, selectors.known_tenant_name(name))


class TenantCredentialsRotateView(APIView):
    """Platform admins only (403 for anyone else, whatever the name), then 404 for an unknown tenant."""

    permission_classes = [IsAuthenticatedIdentity, IsPlatformAdmin]

    @extend_schema(
        operation_id="tenants_credentials_rotate",
        request=None,
        responses={202: ACCEPTED},
        summary="Rotate the tenant's store key: new key, endpoints rolled onto it, old key revoked (202)",
    )
    def post(self, request: Request, name: str) -> Response:
        data = request.data
        if data is not None and not (hasattr(data, "keys") and not list(data.keys())):
            raise BadRequest(
                "Invalid parameter",
                "This route takes no body (or an empty JSON object).",
                code="request_body_unexpected",
            )
        name = selectors.known_tenant_name(name)
        operation = services.tenant_credentials_rotate(request_identity(request), name=name)
        # A rotation waits for every endpoint to roll (minutes): always answered at once, with the operation.
        return accepted(request, operation, name)
