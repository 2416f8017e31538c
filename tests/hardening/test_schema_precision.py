"""The OpenAPI schema is precise enough to check answers against (what test_fuzz_schema relies on).

Before, most APIViews gave drf-spectacular's "unable to guess serializer" and were documented without
a body or an answer, so the fuzzing's schema-conformance check had nothing to compare. These tests
keep it that way: no generator warning or error (``manage.py spectacular --fail-on-warn``), a valid
OpenAPI document, every operation with its body, its enveloped success and the one error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.unit

METHODS = ("get", "post", "put", "patch", "delete")
# POST routes that act on the path alone (any body is ignored).
BODYLESS_POSTS = {
    "/tenants/{tenant}/endpoints/{name}/pause",
    "/tenants/{tenant}/endpoints/{name}/resume",
    "/tenants/{name}/credentials/rotate",
}
# The documented DELETE routes that name their object in a JSON body (docs/compatibility.md).
DELETES_WITH_BODY = {"/tenants", "/tenants/{tenant}/endpoints", "/tenants/{tenant}/models"}
ENVELOPE_WORDS = {"OK", "CREATED", "DELETED", "PATCHED", "ACCEPTED"}


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, Any], dict[str, int]]:
    """The schema the fuzzing uses, with what the generator complained about while making it."""
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    complaints = {**GENERATOR_STATS._warn_cache, **GENERATOR_STATS._error_cache}
    GENERATOR_STATS.reset()
    return schema, complaints


@pytest.fixture(scope="module")
def schema(generated: tuple[dict[str, Any], dict[str, int]]) -> dict[str, Any]:
    return generated[0]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def json_schema(schema: dict[str, Any], response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content", {}).get("application/json")
    return resolve(schema, content["schema"]) if content and "schema" in content else None


def test_the_generator_has_nothing_to_complain_about(generated):
    _, complaints = generated
    assert complaints == {}


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_every_operation_declares_its_success_answer_with_a_schema(schema):
    missing = []
    for method, path, operation in operations(schema):
        successes = {status: response for status, response in operation["responses"].items() if status[0] == "2"}
        if not successes and any(status[0] == "3" for status in operation["responses"]):
            continue  # a redirect (GET /authenticate): its answer is the Location header, not a body
        if not successes or any(json_schema(schema, response) is None for response in successes.values()):
            missing.append((method, path))
    assert missing == []


def test_success_answers_are_the_documented_envelope(schema):
    wrong = []
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status[0] != "2":
                continue
            answer = json_schema(schema, response)
            assert answer is not None, (method, path, status)
            words = set(answer.get("properties", {}).get("status", {}).get("enum", []))
            expected = {"ACCEPTED"} if status == "202" else ENVELOPE_WORDS - {"ACCEPTED"}
            if set(answer.get("required", [])) != {"status", "data"} or len(words) != 1 or not words <= expected:
                wrong.append((method, path, status))
    assert wrong == []


def test_operations_that_take_a_body_declare_it_and_the_others_do_not(schema):
    wrong = []
    for method, path, operation in operations(schema):
        takes_body = (method in ("POST", "PUT", "PATCH") and path not in BODYLESS_POSTS) or (
            method == "DELETE" and path in DELETES_WITH_BODY
        )
        body = operation.get("requestBody", {}).get("content", {})
        declared = any("schema" in media for media in body.values())
        if declared != takes_body:
            wrong.append((method, path, "missing" if takes_body else "unexpected"))
    assert wrong == []


def test_bodies_are_not_free_form(schema):
    """A JSON body is described field by field (a bare ``{"type": "object"}`` checks nothing)."""
    vague = []
    for method, path, operation in operations(schema):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if media is not None and not resolve(schema, media["schema"]).get("properties"):
            vague.append((method, path))
    assert vague == []


def test_every_error_answer_has_the_one_error_shape(schema):
    wrong = []
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status[0] not in "45":
                continue
            error = json_schema(schema, response)
            if (
                error is None
                or not {"title", "description", "code"} <= set(error.get("properties", {}))
                or set(error.get("required", [])) & {"title", "description", "code"} != {"title", "code"}
            ):
                wrong.append((method, path, status))
    assert wrong == []


def test_signed_in_routes_declare_the_authentication_and_upstream_errors(schema):
    missing = []
    for method, path, operation in operations(schema):
        if {} in operation.get("security", [{}]):
            continue  # open to anonymous callers (health, login)
        declared = set(operation["responses"])
        needed = {"401", "403", "500", "502", "503"} | ({"404"} if "{" in path else set())
        if "requestBody" in operation:
            needed |= {"400", "413"}
        if not needed <= declared:
            missing.append((method, path, sorted(needed - declared)))
    assert missing == []
