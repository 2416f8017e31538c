"""The base classes of every signed-in API view: who is calling, and in which tenant.

Every route used to open with the same two lines (name the caller, check the tenant segment of the
path); written ~30 times they could drift apart. Here they run once, in DRF's ``initial()``, after
authentication and the permission classes and before the handler reads a body:

* ``IdentityView``: ``self.identity`` is the verified caller (the default permission,
  ``IsAuthenticatedIdentity``, has already refused anyone else with a 401).
* ``TenantView``: also ``self.tenant``, the tenant named in the path, checked by
  ``known_tenant_name`` (a segment that cannot be a tenant name is 404 ``tenant_not_found``,
  docs/api-conventions.md "Tenants in the path"). The raw segment is taken out of the handler's
  keyword arguments, so a handler cannot use it unchecked.

Neither class authorises anything: Kubernetes RBAC, acting as ``self.identity``, decides what the
caller may do in ``self.tenant`` (``inferencemgmt/kube.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.plumbing import get_lib_doc_excludes
from rest_framework.request import Request
from rest_framework.views import APIView

from inferencemgmt.api.validation import known_tenant_name
from inferencemgmt.auth.identity import Identity


class IdentityView(APIView):
    """An API view for signed-in callers; handlers read ``self.identity``."""

    identity: Identity

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        identity = request.user
        # Guaranteed by the permission classes that ran in super().initial() (IsAuthenticatedIdentity,
        # the default, or one that implies it); a view opened to anonymous callers must not use this base.
        assert isinstance(identity, Identity)
        self.identity = identity


class TenantView(IdentityView):
    """An API view under ``/tenants/<tenant>/...``; handlers read ``self.identity`` and ``self.tenant``.

    ``tenant_kwarg`` names the URL group holding the tenant (``tenant``, or ``name`` on
    ``/tenants/<name>`` itself). The name check runs after the permission classes, so an admin-only
    route still refuses a non-admin (403) before looking at the name, and before the body is parsed
    or validated, so an impossible name is the same 404 on every tenant route.
    """

    tenant_kwarg: ClassVar[str] = "tenant"
    tenant: str
    _tenant_segment: str

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self._tenant_segment = kwargs.pop(self.tenant_kwarg)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = known_tenant_name(self._tenant_segment)


def schema_doc_excludes() -> list[type]:
    """drf-spectacular's ``GET_LIB_DOC_EXCLUDES`` plus these bases: a view without a docstring of its
    own is documented by none, never by the text above (which is about the code, not the route)."""
    return [*get_lib_doc_excludes(), IdentityView, TenantView]  # type: ignore[no-untyped-call]
