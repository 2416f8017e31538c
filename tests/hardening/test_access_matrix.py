"""Who may call what: every route of the OpenAPI schema, for every persona, on a live tenant.

One team-a tenant is created through the API for the whole module (tenant creation is slow) and
deleted at the end. Each check collects its mismatches and reports them all at once, so a failure
names every route and persona that answered wrongly, not just the first.

Personas (docs/architecture.md, Tests): admin (group `admin`), member (alice, team-a), outsider (bob, team-b),
nobody (dave, no group), anonymous (no token).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.hardening.conftest import Recorder
from tests.hardening.secrets_scan import find_secrets
from tests.platform_admin import remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CERT_FROM = "tests.tenants.test_tenants_api"
MODEL = {"modelName": "matrix-model", "modelVersion": 1}
ETAG = '"0123456789abcdef0123456789abcdef"'
MD5 = "0123456789abcdef0123456789abcdef"
PART_QUERY = "?modelName=matrix-model&modelVersion=1&fileName=f.bin&partNumber=1&uploadId=no-such-upload"

# Every route that takes a tenant, as the schema names it: who may call it, and a body that passes
# validation (so the answer is decided by authorisation, not by a 400). "member": members of the
# tenant's scope group; "admin": platform admins only. A route of the schema missing here fails
# `test_every_tenant_route_is_in_the_matrix`: a new route must say who may call it.
TENANT_ROUTES: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/tenants/{name}"): ("member", None),
    ("PATCH", "/tenants/{name}"): ("admin", {"quota": {"maxEndpoints": 4}}),
    ("DELETE", "/tenants/{name}"): ("admin", None),
    # The admin's call starts a real rotation of the matrix tenant (its one endpoint has no Deployment).
    ("POST", "/tenants/{name}/credentials/rotate"): ("admin", None),
    ("GET", "/tenants/{tenant}/models"): ("member", None),
    ("DELETE", "/tenants/{tenant}/models"): ("member", MODEL),
    ("POST", "/tenants/{tenant}/models/extract"): ("member", {**MODEL, "archive": "missing.tar.gz"}),
    ("POST", "/tenants/{tenant}/models/import"): ("member", {**MODEL, "source": "s3://{tenant}/missing/file"}),
    ("PUT", "/tenants/{tenant}/upload"): ("member", None),
    ("POST", "/tenants/{tenant}/upload/start"): ("member", {**MODEL, "fileName": "f.bin"}),
    ("POST", "/tenants/{tenant}/upload/abort"): ("member", {**MODEL, "fileName": "f.bin", "uploadId": "no-such"}),
    ("POST", "/tenants/{tenant}/upload/done"): (
        "member",
        {**MODEL, "fileName": "f.bin", "uploadId": "no-such", "parts": [{"ETag": ETAG, "PartNumber": 1}]},
    ),
    ("POST", "/tenants/{tenant}/upload/dir"): ("member", {**MODEL, "key": "subdir"}),
    ("POST", "/tenants/{tenant}/uploads"): ("member", {**MODEL, "path": "f.bin", "size": 10}),
    ("GET", "/tenants/{tenant}/uploads/{upload_id}"): ("member", None),
    ("DELETE", "/tenants/{tenant}/uploads/{upload_id}"): ("member", None),
    ("POST", "/tenants/{tenant}/uploads/{upload_id}/complete"): ("member", {"parts": [{"partNumber": 1, "md5": MD5}]}),
    # Endpoints: `{name}` is filled with the tenant's name, an endpoint that never exists (404 for
    # those allowed in); the create makes one real endpoint, which the admin's call then finds (409).
    ("GET", "/tenants/{tenant}/endpoints"): ("member", None),
    ("POST", "/tenants/{tenant}/endpoints"): (
        "member",
        {"endpointName": "matrix", "modelName": "resnet", "subjectName": "client"},
    ),
    ("DELETE", "/tenants/{tenant}/endpoints"): ("member", {"endpointName": "nosuch"}),
    ("GET", "/tenants/{tenant}/endpoints/{name}"): ("member", None),
    ("PATCH", "/tenants/{tenant}/endpoints/{name}"): ("member", {"subjectName": "client2"}),
    ("DELETE", "/tenants/{tenant}/endpoints/{name}"): ("member", None),
    ("GET", "/tenants/{tenant}/endpoints/{name}/events"): ("member", None),
    ("GET", "/tenants/{tenant}/endpoints/{name}/logs"): ("member", None),
    ("GET", "/tenants/{tenant}/endpoints/{name}/metrics"): ("member", None),
    ("POST", "/tenants/{tenant}/endpoints/{name}/pause"): ("member", None),
    ("POST", "/tenants/{tenant}/endpoints/{name}/resume"): ("member", None),
    ("PATCH", "/tenants/{tenant}/endpoints/{name}/replicas"): ("member", {"replicas": 1}),
    # Robots: the create makes one real robot (the admin's call then finds it: 409); `{name}` is the
    # tenant's name, a robot that never exists (404 for those allowed in).
    ("GET", "/tenants/{tenant}/robots"): ("member", None),
    ("POST", "/tenants/{tenant}/robots"): ("member", {"name": "matrix-robot", "description": "access matrix"}),
    ("GET", "/tenants/{tenant}/robots/{name}"): ("member", None),
    ("DELETE", "/tenants/{tenant}/robots/{name}"): ("member", None),
    ("POST", "/tenants/{tenant}/robots/{name}/tokens"): ("member", {"expiresIn": 600}),
    ("GET", "/tenants/{tenant}/usage"): ("member", None),
}

# Routes without a tenant: who may call them ("user": any signed-in user; "admin": admins only).
GLOBAL_ROUTES: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/tenants"): ("user", None),
    ("POST", "/tenants"): ("admin", None),  # admin's call is the module fixture itself
    ("DELETE", "/tenants"): ("admin", None),  # admin's call deletes the tenant: done at teardown
    ("GET", "/servings"): ("user", None),
    ("GET", "/servings/{name}"): ("user", None),
    ("POST", "/servings/{name}"): ("admin", None),
    ("PUT", "/servings/{name}"): ("admin", None),
    ("DELETE", "/servings/{name}"): ("admin", None),
    ("GET", "/tasks"): ("user", None),
    ("GET", "/tasks/{operation_id}"): ("user", None),
    # Everyone signed in reads the audit records of their own tenants (admins: all).
    ("GET", "/audit"): ("user", None),
}
# Open by design: probes, the schema, and the token exchange of the CLI.
PUBLIC_ROUTES = {("GET", "/authenticate"), ("POST", "/authenticate/token"), ("GET", "/healthz"), ("GET", "/readyz")}

ROUTES_WHO = {route: who for route, (who, _) in (*TENANT_ROUTES.items(), *GLOBAL_ROUTES.items())}

PERSONAS = ("admin", "alice", "bob", "dave", None)
HOSTILE_NAMES = (
    "..",
    "%2e%2e",
    "a%2Fb",
    "..%2F..%2Fetc",
    "x%00y",
    "x%0Ay",
    "x%1By",
    "X" * 300,
    "%c0%ae%c0%ae",
    "..%5C..%5Cx",  # backslashes (issue 17, finding 6)
    "%EF%BC%8E%EF%BC%8E",  # full-width "..", NFKC ".."
)


def schema_operations() -> set[tuple[str, str]]:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    with Recorder() as recorder:
        yield recorder.lines


def fill(path: str, tenant: str, upload_id: str) -> str:
    path = path.replace("{name}", tenant).replace("{tenant}", tenant).replace("{upload_id}", upload_id)
    return path + (PART_QUERY if path.endswith("/upload") else "")


def test_every_tenant_route_is_in_the_matrix():
    operations = schema_operations()
    with_tenant = {op for op in operations if "{tenant}" in op[1] or op[1].startswith("/tenants/{name}")}
    assert with_tenant == set(TENANT_ROUTES), "routes taking a tenant and the matrix differ"
    rest = operations - with_tenant
    assert rest == set(GLOBAL_ROUTES) | PUBLIC_ROUTES, "routes without a tenant and the matrix differ"


def test_access_matrix(call, operations_worker, log_lines, devstack_env, user_token, tmp_path):
    """Every persona on every route: the documented answer, never a 5xx, never another's data."""
    from tests.tenants.test_tenants_api import CERT

    tenant = f"hm{uuid.uuid4().hex[:8]}"
    tenant_body = {"name": tenant, "cert": CERT, "scope": "team-a", "quota": {}}
    created = call("admin", "POST", "/tenants", tenant_body, HTTP_PREFER="")  # waits for the whole saga
    wrong: list[str] = []
    try:
        assert created.status_code == 200, created.content
        upload = call("alice", "POST", f"/tenants/{tenant}/uploads", {**MODEL, "path": "g.bin", "size": 10})
        assert upload.status_code in (200, 201), upload.content
        upload_id = json.loads(upload.content)["data"]["uploadId"]

        for (method, template), (who, raw) in TENANT_ROUTES.items():
            path = fill(template, tenant, upload_id)
            body: Any = None if raw is None else json.loads(json.dumps(raw).replace("{tenant}", tenant))
            for persona in PERSONAS:
                if persona == "admin" and method == "DELETE" and template == "/tenants/{name}":
                    continue  # the teardown is that call
                response = call(persona, method, path, body)
                expected = expectation(persona, who)
                if not expected(response.status_code):
                    wrong.append(f"{persona or 'anonymous'} {method} {template}: {answer(response)}")

        for (method, template), (who, _) in GLOBAL_ROUTES.items():
            path = template.replace("{name}", "tf-serving").replace("{operation_id}", str(uuid.uuid4()))
            for persona in PERSONAS:
                if persona == "admin" and method != "GET":
                    continue  # admin writes of global state are covered by their own apps' tests
                body = {"name": tenant} if template == "/tenants" and method == "DELETE" else None
                response = call(persona, method, path, body)
                ok = expectation(persona, "admin" if who == "admin" else "user")
                if not ok(response.status_code):
                    wrong.append(f"{persona or 'anonymous'} {method} {template}: {answer(response)}")

        # Hostile upload ids in the member's own tenant: 400 or 404, never a 5xx or a 2xx.
        for (method, template), (_, body) in TENANT_ROUTES.items():
            if "{upload_id}" not in template:
                continue
            for name in HOSTILE_NAMES:
                response = call("alice", method, fill(template, tenant, name), body)
                if response.status_code not in (400, 404):
                    wrong.append(f"alice {method} {template} upload_id={name[:20]}: {response.status_code}")

        # Another user's task: 404 for everyone but the admin who asked (existence not disclosed).
        tasks = json.loads(call("admin", "GET", "/tasks").content)["data"]["tasks"]
        task_id = next(t["id"] for t in tasks if t.get("kind", "").startswith("tenant"))
        for persona in ("alice", "bob", "dave"):
            seen = call(persona, "GET", f"/tasks/{task_id}")
            if seen.status_code != 404:
                wrong.append(f"{persona} GET /tasks/<admin's task>: {answer(seen)}")
            if task_id in call(persona, "GET", "/tasks").content.decode():
                wrong.append(f"{persona} sees the admin's task in GET /tasks")
        if call("admin", "GET", f"/tasks/{task_id}").status_code != 200:
            wrong.append("admin cannot follow their own task")

        # The tenant list never shows this team-a tenant to bob or dave.
        for persona in ("bob", "dave"):
            listed = json.loads(call(persona, "GET", "/tenants").content)["data"]["tenants"]
            if tenant in json.dumps(listed):
                wrong.append(f"{persona} sees {tenant} in GET /tenants")
        assert not wrong, "\n".join(wrong)
    finally:
        deleted = call("admin", "DELETE", f"/tenants/{tenant}", HTTP_PREFER="")  # waits for the deletion
        remove_tenant(devstack_env, tenant)  # in case it did not finish
        assert deleted.status_code == 200, deleted.content

    secrets = secret_values(devstack_env) + [user_token(p) for p in PERSONAS if p]
    assert devstack_env["S3_SECRET_ACCESS_KEY"] in secrets
    worker_logs = [p.read_text(errors="replace") for p in Path(operations_worker.logs).glob("*.log")]
    texts = [b.decode(errors="replace") for b in call.bodies] + log_lines + worker_logs
    assert log_lines, "nothing was captured to scan"
    assert worker_logs
    assert call.bodies
    assert find_secrets(texts, secrets) == [], "a secret appeared in a response body or a log line"


def expectation(persona: str | None, who: str) -> Callable[[int], bool]:
    if persona is None:
        return lambda status: status == 401
    allowed = who == "user" or persona == "admin" or (who == "member" and persona == "alice")
    if allowed:
        return lambda status: status < 500 and status not in (401, 403)
    return lambda status: status == 403


def answer(response: Any) -> str:
    return f"{response.status_code} {body_of(response)}"


def body_of(response: Any) -> str:
    return response.content[:200].decode(errors="replace")


def secret_values(env: dict[str, str]) -> list[str]:
    """Values of every variable whose name says it is secret (S3 secret key, client secrets, passwords)."""
    return [value for key, value in env.items() if re.search(r"SECRET|PASSWORD|TOKEN", key) and len(value) >= 8]


@pytest.mark.parametrize("persona", ["admin", "alice"])
def test_hostile_names_are_400_or_404(call, persona):
    """Traversal, encoded separators, control characters and over-long names on every named route,
    with a body that would otherwise pass validation: 400 or 404, never a 5xx, never a 2xx."""
    routes = [(m, t, body) for (m, t), (_, body) in (*TENANT_ROUTES.items(), *GLOBAL_ROUTES.items()) if "{" in t]
    wrong = []
    for method, template, body in routes:
        for name in HOSTILE_NAMES:
            for tenant, other in ((name, "no-such-upload"), ("no-such-tenant", name)):
                path = template.replace("{name}", name).replace("{operation_id}", name)
                path = path.replace("{tenant}", tenant).replace("{upload_id}", other)
                response = call(persona, method, path, body)
                # An admin-only route refuses a non-admin (403) before any name is looked at (404
                # when the name does not even route, e.g. an encoded slash); on every other route a
                # name that is no tenant (or no object) is 400 or 404, for everyone
                # (docs/api-conventions.md, "Tenants in the path").
                admin_only = ROUTES_WHO[(method, template)] == "admin" and persona != "admin"
                acceptable = (403, 404) if admin_only else (400, 404)
                if response.status_code not in acceptable:
                    wrong.append(f"{persona} {method} {path[:90]}: {response.status_code} {body_of(response)}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_unknown_tenant_is_404_on_every_tenant_route(call):
    """One rule for every route that names a tenant: an unknown tenant is 404 `Tenant <name> does not
    exist` for everyone signed in (tenant names are not secret); only an admin-only route answers a
    non-admin 403 first. The original's own tests expect the 404 for `saturn` (docs/compatibility.md)."""
    tenant = f"saturn-{uuid.uuid4().hex[:8]}"
    wrong = []
    for (method, template), (who, raw) in TENANT_ROUTES.items():
        path = fill(template, tenant, "no-such-upload")
        body: Any = None if raw is None else json.loads(json.dumps(raw).replace("{tenant}", tenant))
        for persona in ("admin", "alice", "bob", "dave"):
            response = call(persona, method, path, body)
            if who == "admin" and persona != "admin":
                expected = (403, "forbidden", "Insufficient permissions")
            else:
                expected = (404, "tenant_not_found", f"Tenant {tenant} does not exist")
            seen = json.loads(response.content) if response.content else {}
            if (response.status_code, seen.get("code"), seen.get("description")) != expected:
                wrong.append(f"{persona} {method} {template}: {answer(response)}")
    assert not wrong, "\n".join(wrong)


def test_oversized_json_is_413(call, settings):
    """A JSON body one byte over the limit is refused before any upstream call, on every JSON route."""
    limit = settings.IMM_MAX_JSON_BODY_BYTES
    big = json.dumps({"name": "x" * limit})
    assert len(big) > limit
    json_routes = [(m, t) for (m, t), (_, body) in TENANT_ROUTES.items() if body is not None]
    json_routes += [("POST", "/tenants")]
    wrong = []
    for method, template in json_routes:
        path = fill(template, "no-such-tenant", "no-such-upload")
        response = call("admin", method, path, big)
        if response.status_code != 413:
            wrong.append(f"{method} {template}: {response.status_code} {body_of(response)}")
    assert not wrong, "\n".join(wrong)


def test_deeply_nested_json_is_400_on_every_json_route(call):
    """Issue 17, finding 6: a body nested 1,000 deep was a 500 (RecursionError) on every JSON route,
    the anonymous token exchange included. It is a 400 `malformed_json` before any view runs."""
    nested = "[" * 1000 + "]" * 1000
    json_routes = [(m, t) for (m, t), (_, body) in TENANT_ROUTES.items() if body is not None]
    json_routes += [("POST", "/tenants"), ("POST", "/servings/{name}"), ("PUT", "/servings/{name}")]
    wrong = []
    calls = [(None, "POST", "/authenticate/token"), *(("admin", m, t) for m, t in json_routes)]
    for persona, method, template in calls:
        path = fill(template, "no-such-tenant", "no-such-upload")
        response = call(persona, method, path, nested)
        if response.status_code != 400 or b'"code": "malformed_json"' not in response.content:
            wrong.append(f"{persona} {method} {template}: {response.status_code} {body_of(response)}")
    assert not wrong, "\n".join(wrong)


def test_names_cannot_forge_log_lines(call, log_lines):
    """A CR/LF in any path name never starts a line of its own in the logs (log forging)."""
    routes = [(m, t) for (m, t) in (*TENANT_ROUTES, *GLOBAL_ROUTES) if "{" in t and m == "GET"]
    for _, template in routes:
        path = template.replace("{name}", "x%0D%0AFORGED").replace("{tenant}", "x%0D%0AFORGED")
        path = path.replace("{operation_id}", "x%0AFORGED").replace("{upload_id}", "x%0AFORGED")
        assert call("admin", "GET", path).status_code in (400, 404)
    call("admin", "GET", "/no-such-route%0AFORGED")
    assert log_lines, "nothing was logged to check"
    forged = [line for line in log_lines if any(part.startswith("FORGED") for part in line.splitlines()[1:])]
    assert forged == []
