"""``/servings`` and ``/servings/<name>``: read by every authenticated user, written by platform admins."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inferencemgmt.api.permissions import IsAuthenticatedIdentity, IsPlatformAdmin
from inferencemgmt.api.responses import envelope
from inferencemgmt.auth.identity import Identity
from servings import selectors, services


class ServingListView(APIView):
    def get(self, request: Request) -> Response:
        """``{"status": "OK", "data": ["ovms", "tf-serving"]}``."""
        identity: Identity = request.user  # type: ignore[assignment]
        return envelope("OK", selectors.serving_list(identity))


class ServingDetailView(APIView):
    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticatedIdentity()]
        return [IsAuthenticatedIdentity(), IsPlatformAdmin()]

    def get(self, request: Request, name: str) -> Response:
        """``{"status": "OK", "data": {"configMap.tmpl": "...", "deployment.tmpl": "...", ...}}``."""
        identity: Identity = request.user  # type: ignore[assignment]
        return envelope("OK", selectors.serving_get(identity, name))

    def post(self, request: Request, name: str) -> Response:
        identity: Identity = request.user  # type: ignore[assignment]
        services.serving_create(identity, name, request.data)
        return envelope("CREATED", {"name": name})

    def put(self, request: Request, name: str) -> Response:
        identity: Identity = request.user  # type: ignore[assignment]
        services.serving_replace(identity, name, request.data)
        return envelope("PATCHED", {"name": name})

    def delete(self, request: Request, name: str) -> Response:
        identity: Identity = request.user  # type: ignore[assignment]
        services.serving_delete(identity, name)
        return envelope("DELETED", {"name": name})
