"""The base API views and the read/write permission: what every signed-in route relies on.

Small views of this module stand in for the product's routes; the order of the checks (401, then the
permission's 403, then the tenant name's 404, then the handler) is the contract of
docs/api-conventions.md "Tenants in the path".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from inferencemgmt.api.permissions import IsAuthenticatedIdentity, IsPlatformAdmin, ReadForMembersWriteForAdmins
from inferencemgmt.api.views import IdentityView, TenantView
from inferencemgmt.auth.identity import Identity

pytestmark = [pytest.mark.unit]

ALICE = Identity("alice@example.com", ("team-a",))
ADMIN = Identity("admin@example.com", ("admin",), is_admin=True)
FORBIDDEN = {"title": "Forbidden", "description": "Insufficient permissions", "code": "forbidden"}


class _Echo(TenantView):
    def get(self, request: Request, **rest: Any) -> Response:
        return Response({"user": self.identity.username, "tenant": self.tenant, "rest": rest})

    def post(self, request: Request, **rest: Any) -> Response:
        return Response({"body": request.data})


class _EchoByName(_Echo):
    tenant_kwarg = "name"


class _AdminOnly(_Echo):
    permission_classes = [IsAuthenticatedIdentity, IsPlatformAdmin]


class _Collection(IdentityView):
    permission_classes = [IsAuthenticatedIdentity, ReadForMembersWriteForAdmins]

    def get(self, request: Request) -> Response:
        return Response({"user": self.identity.username})

    def post(self, request: Request) -> Response:
        return Response({"user": self.identity.username})

    def delete(self, request: Request) -> Response:
        return Response({"user": self.identity.username})


def _call(view: Any, method: str, identity: Identity | None, body: Any = None, **path: str) -> tuple[int, Any]:
    factory = APIRequestFactory()
    if method in ("get", "head", "options") or body is None:
        request = getattr(factory, method)("/x")
    else:
        request = getattr(factory, method)("/x", data=json.dumps(body), content_type="application/json")
    if identity is not None:
        force_authenticate(request, user=identity)  # type: ignore[arg-type]  # our Identity is the request user
    response = view.as_view()(request, **path)
    response.render()
    return response.status_code, json.loads(response.content)


def test_the_handler_gets_the_checked_tenant_and_the_caller_and_not_the_raw_segment():
    status, body = _call(_Echo, "get", ALICE, tenant="team-a1", name="e1")
    assert status == 200
    assert body == {"user": "alice@example.com", "tenant": "team-a1", "rest": {"name": "e1"}}


def test_the_tenant_can_come_from_another_url_group():
    status, body = _call(_EchoByName, "get", ALICE, name="team-a1")
    assert (status, body["tenant"], body["rest"]) == (200, "team-a1", {})


@pytest.mark.parametrize("segment", ["Team-A", "-a", "a_b", "a" * 64, "a..b", "%2e%2e"])
def test_a_segment_that_cannot_be_a_tenant_is_404_in_the_one_error_shape(segment):
    status, body = _call(_Echo, "get", ALICE, tenant=segment)
    assert status == 404
    assert body == {
        "title": "404 Not Found",
        "description": f"Tenant {segment} does not exist",
        "code": "tenant_not_found",
    }


def test_the_name_is_checked_before_the_body_is_read():
    status, body = _call(_Echo, "post", ALICE, {"anything": 1}, tenant="NOT-A-TENANT")
    assert (status, body["code"]) == (404, "tenant_not_found")
    status, body = _call(_Echo, "post", ALICE, {"anything": 1}, tenant="team-a1")
    assert (status, body) == (200, {"body": {"anything": 1}})


def test_anonymous_is_401_before_the_name_is_looked_at():
    status, body = _call(_Echo, "get", None, tenant="NOT-A-TENANT")
    assert status == 401
    assert body["code"].startswith("auth_token_")


def test_an_admin_only_route_refuses_a_non_admin_before_the_name():
    status, body = _call(_AdminOnly, "get", ALICE, tenant="NOT-A-TENANT")
    assert (status, body) == (403, FORBIDDEN)
    status, body = _call(_AdminOnly, "get", ADMIN, tenant="NOT-A-TENANT")
    assert (status, body["code"]) == (404, "tenant_not_found")


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_every_signed_in_user_may_read(method):
    request = getattr(APIRequestFactory(), method)("/x")
    force_authenticate(request, user=ALICE)  # type: ignore[arg-type]  # our Identity is the request user
    assert _Collection.as_view()(request).status_code == 200


@pytest.mark.parametrize("method", ["post", "delete"])
def test_only_admins_may_write(method):
    status, body = _call(_Collection, method, ALICE, {})
    assert (status, body) == (403, FORBIDDEN)
    status, body = _call(_Collection, method, ADMIN, {})
    assert (status, body) == (200, {"user": "admin@example.com"})


def test_anonymous_is_401_on_reads_and_writes():
    for method in ("get", "post"):
        status, body = _call(_Collection, method, None, {})
        assert status == 401, (method, body)
