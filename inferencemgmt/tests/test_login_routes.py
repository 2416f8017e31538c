"""Login: the CLI compatibility routes and the console's authorization-code + PKCE flow."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import Client

from inferencemgmt.auth.identity import SESSION_KEY
from inferencemgmt.tests.conftest import API_CLIENT, ISSUER

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


@pytest.mark.parametrize(
    ("query", "redirect_uri"),
    [("", "http://127.0.0.1:5555/callback"), ("?offline=True", "urn:ietf:wg:oauth:2.0:oob"), ("?offline=", None)],
)
def test_authenticate_redirects_308_to_the_provider(api, issuer, query, redirect_uri):
    response = api.get(f"/authenticate{query}")
    assert response.status_code == 308
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/auth"
    params = parse_qs(location.query)
    assert params["client_id"] == [API_CLIENT]
    assert params["response_type"] == ["code"]
    # A blank ?offline= is not "offline" (the original dropped blank query values).
    assert params["redirect_uri"] == [redirect_uri or "http://127.0.0.1:5555/callback"]
    assert "groups" in params["scope"][0].split()


def test_code_is_exchanged_server_side_with_the_client_secret(api, issuer):
    issuer_token = {"access_token": "a", "token_type": "bearer", "expires_in": 3600, "id_token": issuer.mint()}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json=issuer_token)
        response = api.post("/authenticate/token?offline=True", {"code": "the-code"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["status", "data"]
    assert body["status"] == "OK"
    assert body["data"]["token"]["id_token"] == issuer_token["id_token"]
    assert abs(body["data"]["token"]["expires_at"] - (time.time() + 3600)) < 60
    sent = exchange.calls[0].request
    assert parse_qs(sent.body) == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": ["urn:ietf:wg:oauth:2.0:oob"],
    }
    assert sent.headers["Authorization"].startswith("Basic ")  # client id + secret, never from the client


def test_pkce_verifier_is_passed_on_and_checked(api, issuer):
    verifier = "v" * 43
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json={"id_token": "x"})
        response = api.post("/authenticate/token", {"code": "c", "code_verifier": verifier}, format="json")
        short = api.post("/authenticate/token", {"code": "c", "code_verifier": "short"}, format="json")
    assert response.status_code == 200
    assert parse_qs(exchange.calls[0].request.body)["code_verifier"] == [verifier]
    assert short.status_code == 400
    assert "RFC 7636" in short.json()["description"]
    assert len(exchange.calls) == 1  # the bad verifier never reached the provider


def test_refresh_token_exchange(api, issuer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json={"id_token": "x", "refresh_token": "r2"})
        response = api.post("/authenticate/token", {"refresh_token": "r1"}, format="json")
    assert response.status_code == 200
    assert parse_qs(exchange.calls[0].request.body) == {"grant_type": ["refresh_token"], "refresh_token": ["r1"]}


def test_provider_refusal_is_400_token_error(api, issuer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        mock.post(f"{ISSUER}/token", status=400, json={"error": "invalid_grant", "error_description": "expired"})
        response = api.post("/authenticate/token", {"code": "old"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"title": "Token error: invalid_grant (expired)", "code": "token_exchange_failed"}


def test_console_login_uses_pkce_and_keeps_the_identity_in_the_session(issuer, settings):
    settings.IMM_ADMIN_GROUP = "admin"
    browser = Client()
    start = browser.get("/oidc/authenticate/")
    assert start.status_code == 302
    params = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith(f"{ISSUER}/auth?")
    assert params["code_challenge_method"] == ["S256"]
    state = params["state"][0]
    nonce = params["nonce"][0]
    id_token = issuer.mint(aud=API_CLIENT, nonce=nonce, groups=["team-a", "admin"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        exchange = mock.post(f"{ISSUER}/token", json={"access_token": "a", "id_token": id_token})
        callback = browser.get(f"/oidc/callback/?code=c&state={state}")
    assert callback.status_code == 302
    assert callback["Location"] == "/"
    assert "code_verifier" in parse_qs(exchange.calls[0].request.body)
    assert browser.session[SESSION_KEY] == {"username": "alice@example.com", "groups": ["team-a", "admin"]}
    tasks = browser.get("/tasks", HTTP_ACCEPT="application/json")
    assert tasks.status_code == 200
    browsable = browser.get("/tasks", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200
    assert b"alice@example.com" in browsable.content
    assert b"alice@example.com" in browser.get("/").content


def test_browsable_api_without_login_is_401_html(issuer):
    response = Client().get("/tasks", HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    assert b"Missing auth token" in response.content


def test_console_login_with_a_wrong_nonce_is_refused(issuer):
    browser = Client()
    start = browser.get("/oidc/authenticate/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    id_token = issuer.mint(aud=API_CLIENT, nonce="not-the-nonce")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        mock.post(f"{ISSUER}/token", json={"access_token": "a", "id_token": id_token})
        response = browser.get(f"/oidc/callback/?code=c&state={state}")
    # A person reads this: the console's error page, with a way to start again.
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Sign-in failed" in response.content
    assert b'href="/oidc/authenticate/"' in response.content
    assert SESSION_KEY not in browser.session


def test_console_login_with_a_refused_code_is_a_page_without_the_secret(issuer, settings):
    settings.DEBUG = True
    browser = Client(raise_request_exception=False)
    start = browser.get("/oidc/authenticate/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.serve(mock)
        mock.post(f"{ISSUER}/token", status=400, json={"error": "invalid_grant"})
        response = browser.get(f"/oidc/callback/?code=garbage&state={state}")
    assert response.status_code == 400
    assert b"Token error: invalid_grant" in response.content
    assert settings.OIDC_API_CLIENT_SECRET.encode() not in response.content
    assert SESSION_KEY not in browser.session
