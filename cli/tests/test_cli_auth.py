"""Tokens: expiry from the JWT, refresh before expiry and after a 401, PKCE and issuer discovery."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cli_fakes import Recorder, make_api

from imm_cli import auth
from imm_cli.http import token_claims, token_expiry

pytestmark = pytest.mark.unit


def jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


def test_expiry_and_claims_are_read_without_verification() -> None:
    token = jwt({"exp": 1700000000, "email": "alice@example.com"})
    assert token_expiry(token) == 1700000000
    assert token_claims(token)["email"] == "alice@example.com"
    assert token_expiry("not-a-jwt") is None
    assert token_claims("x.!!!.y") == {}


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = auth.pkce_pair()
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == digest
    assert 43 <= len(verifier) <= 128


def test_authorization_url_adds_offline_access_state_and_challenge() -> None:
    redirect = auth.LoginRedirect(
        "https://idp/dex/auth",
        {"client_id": "imm-api", "redirect_uri": "http://127.0.0.1:5555/callback", "scope": "openid email groups"},
    )
    query = parse_qs(urlsplit(auth.authorization_url(redirect, state="s1", challenge="c1")).query)
    assert query["scope"] == ["openid email groups offline_access"]
    assert query["state"] == ["s1"]
    assert query["code_challenge"] == ["c1"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == ["imm-api"]
    plain = parse_qs(urlsplit(auth.authorization_url(redirect, state="s", challenge=None)).query)
    assert "code_challenge" not in plain


def test_issuer_candidates_cut_the_path() -> None:
    assert auth.issuer_candidates("https://idp:5556/dex/auth") == ["https://idp:5556/dex", "https://idp:5556"]
    assert auth.issuer_candidates("https://kc/realms/r/protocol/openid-connect/auth")[2] == "https://kc/realms/r"


def test_login_redirect_reads_the_308(tmp_path: Path) -> None:
    location = "https://idp/dex/auth?client_id=imm-api&redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob&scope=openid"
    recorder = Recorder(handler=lambda request: httpx.Response(308, headers={"Location": location}))
    redirect = auth.login_redirect(make_api(recorder, tmp_path), offline=True)
    assert recorder.last.url.params["offline"] == "True"
    assert "Authorization" not in recorder.last.headers
    assert redirect.endpoint == "https://idp/dex/auth"
    assert redirect.redirect_uri == "urn:ietf:wg:oauth:2.0:oob"
    assert redirect.client_id == "imm-api"


def test_code_exchange_sends_the_verifier(tmp_path: Path) -> None:
    recorder = Recorder(
        handler=lambda request: httpx.Response(200, json={"status": "OK", "data": {"token": {"id_token": "x.y.z"}}})
    )
    token = auth.exchange_code(make_api(recorder, tmp_path), "the-code", verifier="v" * 50, offline=False)
    assert token == {"id_token": "x.y.z"}
    assert json.loads(recorder.last.content) == {"code": "the-code", "code_verifier": "v" * 50}


def test_a_401_is_retried_once_after_a_refresh(tmp_path: Path) -> None:
    fresh = jwt({"exp": time.time() + 3600})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/authenticate/token":
            assert json.loads(request.content) == {"refresh_token": "r1"}
            return httpx.Response(200, json={"status": "OK", "data": {"token": {"id_token": fresh}}})
        if request.headers["Authorization"] == f"Bearer {fresh}":
            return httpx.Response(200, json={"status": "OK", "data": []})
        return httpx.Response(401, json={"title": "Authentication required", "description": "Token expired"})

    recorder = Recorder(handler=handler)
    api = make_api(recorder, tmp_path, {"id_token": "old.old.old", "refresh_token": "r1"})
    assert api.json("GET", "/servings") == {"status": "OK", "data": []}
    assert [r.url.path for r in recorder.requests] == ["/servings", "/authenticate/token", "/servings"]
    saved = json.loads((tmp_path / "cfg").read_text())
    assert saved["id_token"] == fresh
    assert saved["refresh_token"] == "r1"  # kept when the provider does not rotate it


def test_a_token_about_to_expire_is_refreshed_first(tmp_path: Path) -> None:
    fresh = jwt({"exp": time.time() + 3600})
    recorder = Recorder(
        handler=lambda request: httpx.Response(
            200, json={"status": "OK", "data": {"token": {"id_token": fresh, "refresh_token": "r2"}}}
        )
    )
    api = make_api(recorder, tmp_path, {"id_token": jwt({"exp": time.time() + 5}), "refresh_token": "r1"})
    api.send("GET", "/tenants")
    assert [r.url.path for r in recorder.requests] == ["/authenticate/token", "/tenants"]
    assert recorder.last.headers["Authorization"] == f"Bearer {fresh}"
    assert json.loads((tmp_path / "cfg").read_text())["refresh_token"] == "r2"


def test_no_refresh_without_a_refresh_token(tmp_path: Path) -> None:
    recorder = Recorder(handler=lambda request: httpx.Response(401, json={"title": "Authentication required"}))
    api = make_api(recorder, tmp_path, {"id_token": jwt({"exp": 1})})
    with pytest.raises(Exception, match="401 Authentication required"):
        api.send("GET", "/tenants")
    assert len(recorder.requests) == 1
