"""Property-based fuzzing of every route of the OpenAPI schema (schemathesis), in-process over WSGI.

Each operation is called with generated (valid and invalid) parameters and bodies, as a platform
admin, as a tenant user and as an outsider, against the live platform's identity provider, cluster and store.
Checks: no 5xx ever, responses match the schema wherever the schema declares their shape, and the
outsider (bob, team-b) never gets a 2xx on a route of the team-a tenant, whatever the input.

Routes that take a tenant are fuzzed in a real team-a tenant (alice is a member), created through
the API once for the module and removed at its end, so the generated bodies reach the store and the
cluster rather than stopping at "no such tenant"; hostile tenant names are test_access_matrix's job.

Bounded for CI: ``IMM_FUZZ_MAX_EXAMPLES`` examples per operation and persona (default 25: about
30 s on 2 cores).

The admin does not fuzz the operations that change shared state of the whole platform (create or
delete tenants, write serving templates): the local platform is shared, and a generated name
could be another test's tenant. Those operations are fuzzed as the user (who must be refused) and
covered for the admin by the tenants and servings apps' own tests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.hardening.conftest import RESPONSE_BODIES, SEEN_TOKENS
from tests.platform_admin import remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = int(os.environ.get("IMM_FUZZ_MAX_EXAMPLES", "25"))
ADMIN_ONLY_PLATFORM_WRITES = {
    ("POST", "/tenants"),
    ("DELETE", "/tenants"),
    ("PATCH", "/tenants/{name}"),
    ("DELETE", "/tenants/{name}"),
    ("POST", "/servings/{name}"),
    ("PUT", "/servings/{name}"),
    ("DELETE", "/servings/{name}"),
}

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
APP = get_wsgi_application()


_TENANT: dict[str, str] = {}


@pytest.fixture(scope="module")
def fuzz_tenant_cleanup(devstack_env: dict[str, str]) -> Iterator[None]:
    """Remove the module's tenant (namespace and bucket) at the end, whatever the tests left."""
    yield
    if "name" in _TENANT:
        remove_tenant(devstack_env, _TENANT.pop("name"))


@pytest.fixture
def fuzz_tenant(request: Any, fuzz_tenant_cleanup: None, user_token: Any, platform_settings: Any) -> str:
    """The module's team-a tenant, created through the API by the first test that needs it."""
    if "name" not in _TENANT:
        request.getfixturevalue("operations_worker")
        from django.test import Client

        from tests.tenants.test_tenants_api import CERT

        name = f"hz{uuid.uuid4().hex[:8]}"
        _TENANT["name"] = name
        response = Client().post(
            "/tenants",
            json.dumps({"name": name, "cert": CERT, "scope": "team-a", "quota": {}}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {user_token('admin')}",
        )
        assert response.status_code == 200, response.content
    return _TENANT["name"]


@pytest.fixture(params=["admin", "alice", "bob"])
def persona(request: Any) -> str:
    return str(request.param)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_schema_conformance(case, persona, user_token, platform_settings, request):
    if persona == "admin" and (case.method.upper(), case.path) in ADMIN_ONLY_PLATFORM_WRITES:
        pytest.skip("platform-wide writes are not fuzzed as admin on the shared local platform")
    if "tenant" in (case.path_parameters or {}) or case.path.startswith("/tenants/{name}"):
        tenant = request.getfixturevalue("fuzz_tenant")
        case.path_parameters = {**case.path_parameters, "tenant" if "{tenant}" in case.path else "name": tenant}
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {user_token(persona)}"}
    case.headers["Prefer"] = "respond-async"
    SEEN_TOKENS.add(user_token(persona))
    response = case.call(app=APP)
    RESPONSE_BODIES.append(response.content)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
    tenant_route = "{tenant}" in case.path or case.path.startswith("/tenants/{name}")
    # OPTIONS answers the view's name and media types for any signed-in user: the same for every
    # tenant, existing or not, and no tenant data (DRF's metadata), so it is not an access.
    if persona == "bob" and tenant_route and case.method.upper() != "OPTIONS":
        # An outsider (team-b) in the team-a tenant: no generated input gets past the access check.
        assert response.status_code >= 400, (case.method, case.path, response.status_code)
        assert response.status_code in (400, 403, 404, 405, 411, 413, 415), (case.method, case.path)
