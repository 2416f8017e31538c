"""Permissions on top of a verified Identity.

Authorisation of tenant resources is Kubernetes RBAC acting as the user (see ``kube.py``); these
classes only decide "signed in at all", "platform admin" and "reads for all, writes for admins".
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from inferencemgmt.auth.identity import Identity


class IsAuthenticatedIdentity(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Identity)


class IsPlatformAdmin(BasePermission):
    message = "Insufficient permissions"

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Identity) and request.user.is_admin


class ReadForMembersWriteForAdmins(BasePermission):
    """Reads (GET, HEAD, OPTIONS) for every signed-in user, writes for platform admins only.

    The rule of the platform-wide collections (``/tenants``, ``/servings``): what a member reads is
    still filtered by what Kubernetes lets them see; a write is refused here, before its body is read
    (as the original did). Use it after ``IsAuthenticatedIdentity`` so an anonymous caller stays a 401.
    """

    message = IsPlatformAdmin.message

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return isinstance(request.user, Identity)
        return IsPlatformAdmin().has_permission(request, view)
