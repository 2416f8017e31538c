"""API conventions: envelope bytes, optional trailing slash, one error shape, honest status codes."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import override_settings

from inferencemgmt.api.exceptions import exception_handler
from inferencemgmt.api.parsers import MAX_JSON_DEPTH, loads_bounded
from inferencemgmt.errors import Conflict, UpstreamUnavailable

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def test_success_envelope_bytes_use_python_default_separators(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.content == b'{"status": "OK", "data": {"alive": true}}'
    assert response["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("path", ["/healthz", "/healthz/", "/tasks", "/tasks/"])
def test_trailing_slash_is_optional_and_never_redirects(api, issuer, path):
    response = api.get(path, HTTP_AUTHORIZATION=issuer.mint())
    assert response.status_code == 200


def test_unknown_route_is_404_in_the_error_shape(api):
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {
        "title": "404 Not Found",
        "description": "No route matches /no/such/route",
        "code": "not_found",
    }


def test_unknown_route_is_404_even_with_a_token(api, issuer):
    response = api.get("/tenantz", HTTP_AUTHORIZATION=issuer.mint())
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_405_in_the_error_shape(api, issuer):
    response = api.delete("/tasks", HTTP_AUTHORIZATION=issuer.mint())
    assert response.status_code == 405
    assert response.content == (
        b'{"title": "Method not allowed", "description": "Method \\"DELETE\\" not allowed.", '
        b'"code": "method_not_allowed"}'
    )


def test_malformed_json_is_400(api, issuer):
    response = api.post("/authenticate/token", data=b'{"code": ', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "malformed_json"
    assert body["title"] == "Malformed JSON"
    assert set(body) == {"title", "description", "code"}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,  # issue 17, finding 6: RecursionError, a 500, without a token
        b'{"a": ' * 1000 + b"1" + b"}" * 1000,
        b"[" * 100_000,  # not even well-formed: still the depth answer, not a crash
        b'{"code": ' + b"[" * 33 + b"]" * 33 + b"}",  # one level over the bound
    ],
    ids=["arrays-1000", "objects-1000", "unclosed-100000", "bound-plus-one"],
)
def test_deeply_nested_json_is_400_in_the_error_shape(api, body):
    response = api.post("/authenticate/token", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "title": "Malformed JSON",
        "description": f"Could not parse the JSON body: it nests deeper than {MAX_JSON_DEPTH} levels.",
        "code": "malformed_json",
    }


def test_json_nested_up_to_the_bound_is_parsed():
    assert loads_bounded(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    nested = b'{"a": ' * (MAX_JSON_DEPTH - 1) + b"[1]" + b"}" * (MAX_JSON_DEPTH - 1)
    assert loads_bounded(nested)["a"]["a"]


def test_valid_json_of_the_wrong_shape_is_400_validation(api, issuer):
    response = api.post("/authenticate/token", data=b'"just a string"', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["title"] == "Failed data validation"
    assert response.json()["code"] == "validation_failed"


def test_both_code_and_refresh_token_is_400(api, issuer):
    response = api.post("/authenticate/token", {"code": "a", "refresh_token": "b"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "validation_failed")


@override_settings(IMM_MAX_JSON_BODY_BYTES=1024)
def test_too_large_json_body_is_413(api, issuer):
    response = api.post("/authenticate/token", data=json.dumps({"code": "x" * 5000}), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_unsupported_media_type_is_415(api):
    response = api.post("/authenticate/token", data="code=x", content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


def test_upstream_failure_names_the_part_and_says_when_to_retry():
    response = exception_handler(UpstreamUnavailable("kubernetes", "connection refused"), {})
    assert response.status_code == 503
    assert response.data == {
        "title": "Kubernetes is unavailable",
        "description": "connection refused",
        "code": "kubernetes_unavailable",
    }
    assert response["Retry-After"] == "5"


def test_domain_error_keeps_its_title_words():
    response = exception_handler(Conflict(description="Endpoints have reached the quantity limit"), {})
    assert response.status_code == 409
    assert response.data["title"] == "409 Conflict"


def test_unexpected_error_is_500_without_internals(caplog):
    with caplog.at_level(logging.ERROR):
        response = exception_handler(RuntimeError("password=hunter2 in a stack"), {"view": None})
    assert response.status_code == 500
    assert response.data == {"title": "Internal server error", "code": "internal_error"}
    assert "hunter2" not in json.dumps(response.data)


def test_request_id_is_echoed_and_in_the_log_lines(api, issuer, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = api.get("/no/such/route", HTTP_X_REQUEST_ID="req-123")
    assert response["X-Request-ID"] == "req-123"
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records
    assert all(getattr(r, "request_id", None) == "req-123" for r in records)


def test_unacceptable_request_id_is_replaced(api):
    response = api.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_tokens_are_redacted_from_log_lines(issuer):
    from inferencemgmt.requestlog import RedactSecretsFilter

    token = issuer.mint()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "header was %s", (f"Bearer {token}",), None)
    RedactSecretsFilter().filter(record)
    assert token not in record.getMessage()
    assert "[redacted" in record.getMessage()


def test_openapi_schema_is_served(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/tasks" in json.loads(response.content)["paths"]


@override_settings(DEBUG=True)
def test_unknown_route_is_json_even_in_debug(api):
    response = api.get("/nope/deeper")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["code"] == "not_found"


def test_drf_validation_errors_name_the_first_failing_field():
    from rest_framework import serializers

    class Quota(serializers.Serializer[dict[str, int]]):
        maxEndpoints = serializers.IntegerField(min_value=1)  # noqa: N815 (the API's own key)

    class Tenant(serializers.Serializer[dict[str, object]]):
        name = serializers.CharField(min_length=3)
        quota = Quota()

    serializer = Tenant(data={"name": "abc", "quota": {"maxEndpoints": 0}})
    assert not serializer.is_valid()
    response = exception_handler(serializers.ValidationError(serializer.errors), {})
    assert response.status_code == 400
    assert response.data == {
        "title": "Failed data validation",
        "description": "quota.maxEndpoints: Ensure this value is greater than or equal to 1.",
        "code": "validation_failed",
    }
