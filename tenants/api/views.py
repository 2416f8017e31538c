"""The tenant routes: the documented `/tenants` collection and the new `/tenants/<name>`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inferencemgmt.api.permissions import IsAuthenticatedIdentity, IsPlatformAdmin
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.validation import DNS_1123_LABEL, matches
from inferencemgmt.auth.identity import Identity
from inferencemgmt.operations.api.answers import answer_operation
from tenants import selectors, services
from tenants.api.serializers import TenantCreateSerializer, TenantNameSerializer, TenantUpdateSerializer


def _identity(request: Request) -> Identity:
    identity = request.user
    assert isinstance(identity, Identity)  # guaranteed by IsAuthenticatedIdentity
    return identity


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _known_name(name: str) -> str:
    """A path segment that cannot be a tenant name names no tenant (and never reaches Kubernetes)."""
    if not matches(DNS_1123_LABEL, name) or len(name) > 63:
        raise selectors.tenant_not_found(name)
    return name


class AdminForWrites(APIView):
    """Reads are for every signed-in user (and filtered); writes are for platform admins only,
    checked before the body is read, as in the original."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticatedIdentity()]
        return [IsAuthenticatedIdentity(), IsPlatformAdmin()]

    def _delete(self, request: Request, name: str) -> Response:
        operation = services.tenant_delete(_identity(request), name=name)
        return answer_operation(request, operation, name=name, done_status="DELETED")


class TenantCollectionView(AdminForWrites):
    @extend_schema(summary="Tenants the caller may see (admins: all)")
    def get(self, request: Request) -> Response:
        return envelope("OK", {"tenants": selectors.tenant_list(_identity(request))})

    @extend_schema(request=TenantCreateSerializer, summary="Create a tenant (waits, or 202 with Prefer: respond-async)")
    def post(self, request: Request) -> Response:
        data = _validated(TenantCreateSerializer, request.data)
        operation = services.tenant_create(_identity(request), **data)
        return answer_operation(request, operation, name=data["name"], done_status="CREATED")

    @extend_schema(request=TenantNameSerializer, summary="Delete a tenant (documented body form)")
    def delete(self, request: Request) -> Response:
        return self._delete(request, _validated(TenantNameSerializer, request.data)["name"])


class TenantDetailView(AdminForWrites):
    @extend_schema(summary="A tenant's scope, quota usage, endpoint count and bucket size")
    def get(self, request: Request, name: str) -> Response:
        return envelope("OK", selectors.tenant_get(_identity(request), _known_name(name)))

    @extend_schema(request=TenantUpdateSerializer, summary="Replace a tenant's quota and/or scope")
    def patch(self, request: Request, name: str) -> Response:
        data = _validated(TenantUpdateSerializer, request.data)
        return envelope("PATCHED", services.tenant_update(_identity(request), name=_known_name(name), **data))

    @extend_schema(request=None, summary="Delete a tenant")
    def delete(self, request: Request, name: str) -> Response:
        return self._delete(request, _known_name(name))
