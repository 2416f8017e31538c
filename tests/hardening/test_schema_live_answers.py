"""Real success answers of the routes conform to the OpenAPI schema, not only the ones fuzzing reaches.

Generated names rarely name a real endpoint, upload or task, so test_fuzz_schema compares mostly
error answers with the schema. Here one team-a tenant goes through what the clients do (upload a
model, serve it, scale, pause, inspect, delete) and every answer is checked against the schema
with the same schemathesis checks, so a documented shape that drifts from the real one fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.hardening.conftest import RESPONSE_BODIES, SEEN_TOKENS
from tests.platform_admin import remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCHEMA = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
APP = get_wsgi_application()

Send = Callable[..., Any]


@pytest.fixture
def send(user_token: Callable[[str], str], platform_settings: Any) -> Send:
    """``send(persona, method, path, status, **case)``: one documented call, its answer checked."""

    def call(persona: str, method: str, path: str, status: int | tuple[int, ...], **case: Any) -> Any:
        token = user_token(persona)
        SEEN_TOKENS.add(token)
        headers = {"Authorization": f"Bearer {token}", **case.pop("headers", {})}
        made = SCHEMA[path][method].Case(headers=headers, **case)
        response = made.call(app=APP)
        RESPONSE_BODIES.append(response.content)
        expected = status if isinstance(status, tuple) else (status,)
        assert response.status_code in expected, (method, path, response.status_code, response.content[:500])
        made.validate_response(response, checks=[response_schema_conformance, content_type_conformance])
        return response.json()["data"] if response.status_code < 300 else response.json()

    return call


@pytest.fixture
def tenant(
    send: Send, user_token: Callable[[str], str], devstack_env: dict[str, str], operations_worker: Any
) -> Iterator[str]:
    """A team-a tenant made through the API (its synchronous CREATED checked), deleted through it (202)."""
    from tests.tenants.test_tenants_api import CERT

    name = f"hs{uuid.uuid4().hex[:8]}"
    body = {"name": name, "cert": CERT, "scope": "team-a", "quota": {"maxEndpoints": 5}}
    try:
        assert send("admin", "POST", "/tenants", 200, body=body) == {"name": name}
        yield name
        headers = {"Prefer": "respond-async"}
        accepted = send("admin", "DELETE", "/tenants/{name}", 202, path_parameters={"name": name}, headers=headers)
        assert accepted["name"] == name
    finally:
        remove_tenant(devstack_env, name)


def walk_tenant(send: Send, tenant: str) -> None:
    at = {"path_parameters": {"name": tenant}}
    assert tenant in send("alice", "GET", "/tenants", 200)["tenants"]
    assert send("alice", "GET", "/tenants/{name}", 200, **at)["scope"] == ["team-a"]
    patched = send("admin", "PATCH", "/tenants/{name}", 200, body={"quota": {"maxEndpoints": 4}}, **at)
    assert patched["values"] == {"quota": {"maxEndpoints": 4}}


def walk_models(send: Send, tenant: str) -> None:
    """The original upload protocol, the listings, a directory marker and an aborted upload."""
    at = {"path_parameters": {"tenant": tenant}}
    file = {"modelName": "resnet", "modelVersion": 1, "fileName": "saved_model.pb"}
    upload_id = send("alice", "POST", "/tenants/{tenant}/upload/start", 200, body=file, **at)["uploadId"]
    query = {
        "modelName": "resnet",
        "modelVersion": 1,
        "fileName": "saved_model.pb",
        "partNumber": 1,
        "uploadId": upload_id,
    }
    part = send(
        "alice",
        "PUT",
        "/tenants/{tenant}/upload",
        200,
        query=query,
        body=b"weights",
        media_type="application/octet-stream",
        **at,
    )
    parts = [{"ETag": part["ETag"], "PartNumber": 1}]
    send(
        "alice",
        "POST",
        "/tenants/{tenant}/upload/done",
        200,
        body={**file, "uploadId": upload_id, "parts": parts},
        **at,
    )
    send(
        "alice",
        "POST",
        "/tenants/{tenant}/upload/dir",
        200,
        body={"modelName": "resnet", "modelVersion": 1, "key": "assets"},
        **at,
    )
    other = {**file, "fileName": "spare.bin"}
    spare = send("alice", "POST", "/tenants/{tenant}/upload/start", 200, body=other, **at)["uploadId"]
    send("alice", "POST", "/tenants/{tenant}/upload/abort", 200, body={**other, "uploadId": spare}, **at)
    listed = send("alice", "GET", "/tenants/{tenant}/models", 200, **at)["models"]
    assert [entry["path"] for entry in listed] == ["resnet/1/saved_model.pb"]
    grouped = send("alice", "GET", "/tenants/{tenant}/models", 200, query={"view": "grouped"}, **at)["models"]
    assert [group["name"] for group in grouped] == ["resnet"]


def walk_direct_uploads(send: Send, tenant: str) -> None:
    at = {"path_parameters": {"tenant": tenant}}
    body = {"modelName": "bert", "modelVersion": 2, "path": "model.bin", "size": 11}
    plan = send("alice", "POST", "/tenants/{tenant}/uploads", 200, body=body, **at)
    one = {"path_parameters": {"tenant": tenant, "upload_id": plan["uploadId"]}}
    assert send("alice", "GET", "/tenants/{tenant}/uploads/{upload_id}", 200, **one)["state"] == "OPEN"
    send("alice", "DELETE", "/tenants/{tenant}/uploads/{upload_id}", 200, **one)


def walk_endpoints(send: Send, tenant: str) -> None:
    """Create, list, view, inspect, change, scale, pause, resume and delete (both documented forms)."""
    at = {"path_parameters": {"tenant": tenant}}
    one = {"path_parameters": {"tenant": tenant, "name": "predict"}}
    create = {"endpointName": "predict", "modelName": "resnet", "subjectName": "client"}
    created = send("alice", "POST", "/tenants/{tenant}/endpoints", 200, body=create, **at)
    assert created["warning"] == ""
    assert [entry["name"] for entry in send("alice", "GET", "/tenants/{tenant}/endpoints", 200, **at)["endpoints"]] == [
        "predict"
    ]
    base = "/tenants/{tenant}/endpoints/{name}"
    assert send("alice", "GET", base, 200, **one)["resources"] == "Not specified"
    send("alice", "GET", f"{base}/events", 200, **one)
    send("alice", "GET", f"{base}/logs", (200, 502), query={"tail": 5}, **one)
    send("alice", "PATCH", base, 200, body={"modelVersionPolicy": "{specific{versions:1}}"}, **one)
    send("alice", "PATCH", base, 200, body={"resources": {"requests.cpu": "100m", "limits.memory": "1Gi"}}, **one)
    assert send("alice", "GET", base, 200, **one)["resources"] == {
        "requests": {"cpu": "100m"},
        "limits": {"memory": "1Gi"},
    }
    send("alice", "PATCH", f"{base}/replicas", 200, body={"replicas": 2}, **one)
    assert send("alice", "POST", f"{base}/pause", 200, **one)["values"] == {"replicas": 0}
    assert send("alice", "POST", f"{base}/resume", 200, **one)["values"] == {"replicas": 2}
    send("alice", "DELETE", base, 200, **one)
    send("alice", "POST", "/tenants/{tenant}/endpoints", 200, body={**create, "endpointName": "second"}, **at)
    send("alice", "DELETE", "/tenants/{tenant}/endpoints", 200, body={"endpointName": "second"}, **at)
    send("alice", "DELETE", "/tenants/{tenant}/models", 200, body={"modelName": "resnet", "modelVersion": 1}, **at)


def walk_tasks_and_servings(send: Send) -> None:
    tasks = send("admin", "GET", "/tasks", 200, query={"limit": 5})["tasks"]
    assert tasks
    send("admin", "GET", "/tasks/{operation_id}", 200, path_parameters={"operation_id": tasks[0]["id"]})
    assert "tf-serving" in send("alice", "GET", "/servings", 200)
    send("alice", "GET", "/servings/{name}", 200, path_parameters={"name": "tf-serving"})


def test_real_answers_conform_to_the_schema(send, tenant):
    walk_tenant(send, tenant)
    walk_models(send, tenant)
    walk_direct_uploads(send, tenant)
    walk_endpoints(send, tenant)
    walk_tasks_and_servings(send)
