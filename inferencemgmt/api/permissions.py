"""Permissions on top of a verified Identity.

Authorisation of tenant resources is Kubernetes RBAC acting as the user (see ``kube.py``); these
classes only decide "signed in at all" and "platform admin".
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from inferencemgmt.auth.identity import Identity


class IsAuthenticatedIdentity(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Identity)


class IsPlatformAdmin(BasePermission):
    message = "Insufficient permissions"

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Identity) and request.user.is_admin
