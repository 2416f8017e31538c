"""The tenant routes: the documented `/tenants` collection and the new `/tenants/<name>`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS
from inferencemgmt.api.permissions import IsAuthenticatedIdentity, IsPlatformAdmin, ReadForMembersWriteForAdmins
from inferencemgmt.api.requests import validated
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.views import IdentityView, TenantView
from inferencemgmt.auth.identity import Identity
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


def _delete(request: Request, identity: Identity, name: str) -> Response:
    operation = services.tenant_delete(identity, name=name)
    return answer_operation(request, operation, name=name, done_status="DELETED")


class TenantCollectionView(IdentityView):
    """Reads are for every signed-in user (and filtered); writes are for platform admins only,
    checked before the body is read, as in the original."""

    permission_classes = [IsAuthenticatedIdentity, ReadForMembersWriteForAdmins]

    @extend_schema(
        operation_id="tenants_list",
        parameters=PAGE_PARAMETERS,
        responses={200: TENANT_LIST_ANSWER, 400: error_response(400)},
        summary="Tenants the caller may see (admins: all), one page",
    )
    def get(self, request: Request) -> Response:
        page = paging.page_request(request.query_params, selectors.tenant_page_scope(self.identity))
        names, following = selectors.tenant_page(self.identity, page)
        return paging.page_answer("OK", {"tenants": names}, following)

    @extend_schema(
        request=TenantCreateSerializer,
        responses={200: TENANT_CREATED_ANSWER, 202: ACCEPTED},
        summary="Create a tenant (waits, or 202 with Prefer: respond-async)",
    )
    def post(self, request: Request) -> Response:
        data = validated(TenantCreateSerializer, request.data)
        operation = services.tenant_create(self.identity, **data)
        return answer_operation(request, operation, name=data["name"], done_status="CREATED")

    @extend_schema(
        operation_id="tenants_destroy_by_body",
        request=TenantNameSerializer,
        responses={200: TENANT_DELETED_ANSWER, 202: ACCEPTED},
        summary="Delete a tenant (documented body form)",
    )
    def delete(self, request: Request) -> Response:
        return _delete(request, self.identity, validated(TenantNameSerializer, request.data)["name"])


class TenantDetailView(TenantView):
    """Reads are for every signed-in user (and filtered); writes are for platform admins only,
    checked before the body is read, as in the original."""

    permission_classes = [IsAuthenticatedIdentity, ReadForMembersWriteForAdmins]
    tenant_kwarg = "name"

    @extend_schema(responses=TENANT_ANSWER, summary="A tenant's scope, quota usage, endpoint count and bucket size")
    def get(self, request: Request) -> Response:
        return envelope("OK", selectors.tenant_get(self.identity, self.tenant))

    @extend_schema(
        request=TenantUpdateSerializer, responses=TENANT_PATCHED_ANSWER, summary="Replace a tenant's quota and/or scope"
    )
    def patch(self, request: Request) -> Response:
        data = validated(TenantUpdateSerializer, request.data)
        return envelope("PATCHED", services.tenant_update(self.identity, name=self.tenant, **data))

    @extend_schema(request=None, responses={200: TENANT_DELETED_ANSWER, 202: ACCEPTED}, summary="Delete a tenant")
    def delete(self, request: Request) -> Response:
        return _delete(request, self.identity, self.tenant)


class TenantCredentialsRotateView(TenantView):
    """Platform admins only (403 for anyone else, whatever the name), then 404 for an unknown tenant."""

    permission_classes = [IsAuthenticatedIdentity, IsPlatformAdmin]
    tenant_kwarg = "name"

    @extend_schema(
        operation_id="tenants_credentials_rotate",
        request=None,
        responses={202: ACCEPTED},
        summary="Rotate the tenant's store key: new key, endpoints rolled onto it, old key revoked (202)",
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if data is not None and not (hasattr(data, "keys") and not list(data.keys())):
            raise BadRequest(
                "Invalid parameter",
                "This route takes no body (or an empty JSON object).",
                code="request_body_unexpected",
            )
        operation = services.tenant_credentials_rotate(self.identity, name=self.tenant)
        # A rotation waits for every endpoint to roll (minutes): always answered at once, with the operation.
        return accepted(request, operation, self.tenant)
