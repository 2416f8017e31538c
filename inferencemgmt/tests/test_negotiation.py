"""Content negotiation as the original clients need it: JSON whatever ``Accept`` says, and a body
without a ``Content-Type`` read as JSON (issue 24, items 1 and 2).

Each request is sent with exactly the headers the original client puts on the wire
(``on_the_wire``), because the bug was in what those headers made DRF do.
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs

import pytest
import responses
from django.test import Client

from inferencemgmt.tests.conftest import (
    ISSUER,
    ORIGINAL_TOKEN_HELPER_HEADERS,
    REQUESTS_DEFAULT_HEADERS,
    on_the_wire,
)

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

JSON = "application/json; charset=utf-8"
WRITES_AND_READS = ("get", "post", "put", "patch", "delete")


@pytest.mark.parametrize(
    ("path", "body", "grant"),
    [
        ("/authenticate/token", {"code": "the-code"}, "authorization_code"),  # `imm login`
        ("/authenticate/token?offline=True", {"code": "the-code"}, "authorization_code"),  # `imm login -o`
        ("/authenticate/token?offline=True", {"refresh_token": "r1"}, "refresh_token"),  # refresh_token.py
    ],
)
def test_the_original_token_helper_gets_json_despite_accept_text_plain(issuer, path, body, grant):
    """common_token.py: ``Content-type: application/json``, ``Accept: text/plain`` (was 406)."""
    token = {"access_token": "a", "token_type": "bearer", "expires_in": 3600, "id_token": issuer.mint()}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json={**token, "refresh_token": "r2"})
        response = on_the_wire("POST", path, ORIGINAL_TOKEN_HELPER_HEADERS, json.dumps(body).encode())
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == JSON
    # What the helper then does with the answer: json.loads(...)['data']['token'].
    saved = json.loads(response.content.decode("utf-8"))["data"]["token"]
    assert saved["id_token"] == token["id_token"]
    assert saved["refresh_token"] == "r2"
    assert abs(saved["expires_at"] - (time.time() + 3600)) < 60
    assert parse_qs(exchange.calls[0].request.body)["grant_type"] == [grant]


def test_a_json_body_without_content_type_is_read_as_json(issuer):
    """The original tests: ``requests.post(url, data=json.dumps({...}))`` sends no Content-Type (was 415)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json={"id_token": "x"})
        response = on_the_wire(
            "POST", "/authenticate/token", REQUESTS_DEFAULT_HEADERS, json.dumps({"refresh_token": "r1"}).encode()
        )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == JSON
    assert json.loads(response.content)["data"] == {"token": {"id_token": "x"}}
    assert parse_qs(exchange.calls[0].request.body)["refresh_token"] == ["r1"]


def test_a_wrong_body_without_content_type_is_the_json_error_not_415(issuer):
    """The original's test sends ``{"modelName": "wrong"}`` this way and expects 400."""
    wrong = on_the_wire("POST", "/authenticate/token", REQUESTS_DEFAULT_HEADERS, b'{"modelName": "wrong"}')
    assert (wrong.status_code, wrong.json()["code"]) == (400, "validation_failed")
    garbage = on_the_wire("POST", "/authenticate/token", REQUESTS_DEFAULT_HEADERS, b"code=x")
    assert (garbage.status_code, garbage.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8"])
def test_text_plain_is_read_as_json_because_wsgiref_servers_say_it_for_none(issuer, content_type):
    """runserver (and Django's live server) put ``text/plain`` in the environ when the client sent no
    Content-Type: the original tests' bodies arrive labelled so there, and must be read as JSON."""
    headers = {**REQUESTS_DEFAULT_HEADERS, "Content-Type": content_type}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        mock.post(f"{ISSUER}/token", json={"id_token": "x"})
        response = on_the_wire("POST", "/authenticate/token", headers, b'{"code": "c"}')
    assert response.status_code == 200, response.content
    garbage = on_the_wire("POST", "/authenticate/token", headers, b"code=c")
    assert (garbage.status_code, garbage.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "application/xml", "application/octet-stream", "multipart/form-data; b=x"],
)
def test_a_body_that_says_another_type_is_still_415(content_type):
    headers = {**REQUESTS_DEFAULT_HEADERS, "Content-Type": content_type}
    response = on_the_wire("POST", "/authenticate/token", headers, b'{"code": "x"}')
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert response["Content-Type"] == JSON


def _operations() -> list[tuple[str, str]]:
    schema = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    filled = {"{tenant}": "t-one", "{name}": "n-one", "{upload_id}": "u-one", "{operation_id}": str(uuid.uuid4())}
    operations = []
    for template, methods in schema["paths"].items():
        path = template
        for placeholder, value in filled.items():
            path = path.replace(placeholder, value)
        operations += [(method.upper(), path) for method in methods if method in WRITES_AND_READS]
    return operations


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", "image/png"])
def test_no_route_of_the_schema_answers_406(issuer, settings, accept):
    """Every documented route negotiates through the same class: whatever ``Accept`` names, the
    answer (here the anonymous one, or the public route's own) is JSON, never 406."""
    settings.IMM_READINESS_TIMEOUT_SECONDS = 0.2
    operations = _operations()
    assert ("POST", "/authenticate/token") in operations
    assert len(operations) > 30
    wrong = []
    for method, path in operations:
        response = on_the_wire(method, path, {"Accept": accept, "Content-Type": "application/json"}, b"{}")
        body = response.content
        if response.status_code == 406 or (body and not response["Content-Type"].startswith("application/json")):
            wrong.append(f"{method} {path}: {response.status_code} {response['Content-Type']}")
        elif body:
            json.loads(body)
    assert not wrong, "\n".join(wrong)


def test_a_signed_in_read_with_accept_text_plain_is_json(issuer):
    headers = {"Accept": "text/plain", "Authorization": issuer.mint()}
    response = on_the_wire("GET", "/tasks", headers)
    assert response.status_code == 200
    assert response["Content-Type"] == JSON
    assert json.loads(response.content)["status"] == "OK"


def test_what_the_client_accepts_still_wins():
    """The browsable API (``text/html``) and the YAML schema stay; an unknown ``?format=`` stays 404."""
    page = on_the_wire("GET", "/healthz", {"Accept": "text/html"})
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"<html" in page.content
    schema = on_the_wire("GET", "/api/schema", {"Accept": "text/plain"})
    assert schema.status_code == 200
    assert schema["Content-Type"].startswith("application/vnd.oai.openapi")
    assert on_the_wire("GET", "/healthz?format=api", {"Accept": "text/plain"})["Content-Type"].startswith("text/html")
    unknown = on_the_wire("GET", "/healthz?format=xml", {"Accept": "*/*"})
    assert unknown.status_code == 404
