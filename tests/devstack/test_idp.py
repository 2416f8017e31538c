"""The devstack's OpenID Connect provider (Dex + LDAP) issues real, verifiable tokens with groups.

Everything here talks to the running Dex over HTTPS verified with the devstack CA, and checks
the tokens' signatures against the provider's published keys, as the product and kube-apiserver
do. The browser test drives Debian's Chromium through Dex's own login form.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
import requests
import yaml

from tests.browser import browser_home_trusting, launch_chromium

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCOPE = "openid email groups profile offline_access"
CLI_REDIRECT = "http://127.0.0.1:5555/callback"


def password_grant(
    env: dict[str, str], user: str, password: str, *, client: str = "api", scope: str = SCOPE
) -> requests.Response:
    data = {"grant_type": "password", "username": user, "password": password, "scope": scope}
    url, ca = f"{env['OIDC_ISSUER']}/token", env["OIDC_CA_FILE"]
    if client == "api":
        auth = (env["OIDC_API_CLIENT_ID"], env["OIDC_API_CLIENT_SECRET"])
        return requests.post(url, data=data, auth=auth, verify=ca, timeout=10)
    data["client_id"] = env["OIDC_CLI_CLIENT_ID"]
    return requests.post(url, data=data, verify=ca, timeout=10)


@pytest.fixture(scope="module")
def discovery(devstack_env: dict[str, str]) -> dict[str, Any]:
    url = f"{devstack_env['OIDC_ISSUER']}/.well-known/openid-configuration"
    response = requests.get(url, verify=devstack_env["OIDC_CA_FILE"], timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def jwks(devstack_env: dict[str, str], discovery: dict[str, Any]) -> jwt.PyJWKClient:
    context = ssl.create_default_context(cafile=devstack_env["OIDC_CA_FILE"])
    return jwt.PyJWKClient(discovery["jwks_uri"], ssl_context=context)


def verify(env: dict[str, str], jwks: jwt.PyJWKClient, token: str, audience: str | None = None) -> dict[str, Any]:
    """Claims of an id_token whose RS256 signature, issuer, audience and expiry all check out."""
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience or env["OIDC_API_CLIENT_ID"],
        issuer=env["OIDC_ISSUER"],
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


def devstack_token(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.token", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_discovery_and_jwks_are_served(devstack_env: dict[str, str], discovery: dict[str, Any]) -> None:
    issuer = devstack_env["OIDC_ISSUER"]
    assert issuer.startswith("https://")
    assert discovery["issuer"] == issuer
    assert discovery["token_endpoint"] == f"{issuer}/token"
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert {"authorization_code", "refresh_token", "password", "urn:ietf:params:oauth:grant-type:device_code"} <= set(
        discovery["grant_types_supported"]
    )
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert {"openid", "email", "groups", "profile", "offline_access"} <= set(discovery["scopes_supported"])
    keys = requests.get(discovery["jwks_uri"], verify=devstack_env["OIDC_CA_FILE"], timeout=10).json()["keys"]
    assert keys
    assert all(key["kty"] == "RSA" and key["use"] == "sig" for key in keys)


def test_alice_token_from_devstack_token_verifies(devstack_env: dict[str, str], jwks: jwt.PyJWKClient) -> None:
    result = devstack_token("alice")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    claims = verify(devstack_env, jwks, token)
    assert claims["iss"] == devstack_env["OIDC_ISSUER"]
    assert claims["aud"] == devstack_env["OIDC_API_CLIENT_ID"]
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["team-a"]
    assert claims["exp"] > time.time()


@pytest.mark.parametrize(
    ("user", "groups"),
    [("admin", ["admin"]), ("bob", ["team-b"]), ("carol", ["team-a", "team-b"]), ("dave", [])],
)
def test_groups_claim_follows_the_directory(
    devstack_env: dict[str, str], jwks: jwt.PyJWKClient, user: str, groups: list[str]
) -> None:
    response = password_grant(devstack_env, user, f"{user}-password")
    assert response.status_code == 200, response.text
    claims = verify(devstack_env, jwks, response.json()["id_token"])
    assert claims["email"] == f"{user}@example.com"
    assert sorted(claims.get("groups") or []) == groups


def test_wrong_password_gets_no_token(devstack_env: dict[str, str]) -> None:
    response = password_grant(devstack_env, "alice", "not-alices-password")
    assert response.status_code == 401
    assert response.json()["error"] == "access_denied"
    assert "id_token" not in response.json()
    assert password_grant(devstack_env, "mallory", "mallory-password").status_code == 401
    result = devstack_token("alice", "--password", "not-alices-password")
    assert result.returncode != 0
    assert result.stdout.strip() == ""
    assert "Invalid username or password" in result.stderr


def test_wrong_client_secret_is_refused(devstack_env: dict[str, str]) -> None:
    data = {"grant_type": "password", "username": "alice", "password": "alice-password", "scope": SCOPE}
    response = requests.post(
        f"{devstack_env['OIDC_ISSUER']}/token",
        data=data,
        auth=(devstack_env["OIDC_API_CLIENT_ID"], "not-the-secret"),
        verify=devstack_env["OIDC_CA_FILE"],
        timeout=10,
    )
    assert response.status_code == 401
    assert "id_token" not in response.json()


def test_refresh_token_gives_a_new_id_token(devstack_env: dict[str, str], jwks: jwt.PyJWKClient) -> None:
    first = password_grant(devstack_env, "carol", "carol-password").json()
    assert first.get("refresh_token")
    response = requests.post(
        f"{devstack_env['OIDC_ISSUER']}/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(devstack_env["OIDC_API_CLIENT_ID"], devstack_env["OIDC_API_CLIENT_SECRET"]),
        verify=devstack_env["OIDC_CA_FILE"],
        timeout=10,
    )
    assert response.status_code == 200, response.text
    claims = verify(devstack_env, jwks, response.json()["id_token"])
    assert claims["email"] == "carol@example.com"
    assert sorted(claims["groups"]) == ["team-a", "team-b"]


def test_cli_tokens_are_meant_for_the_api_only_through_the_trusted_peer(
    devstack_env: dict[str, str], jwks: jwt.PyJWKClient
) -> None:
    api, cli = devstack_env["OIDC_API_CLIENT_ID"], devstack_env["OIDC_CLI_CLIENT_ID"]
    response = password_grant(
        devstack_env, "bob", "bob-password", client="cli", scope=f"{SCOPE} audience:server:client_id:{api}"
    )
    assert response.status_code == 200, response.text
    claims = verify(devstack_env, jwks, response.json()["id_token"], audience=api)
    assert sorted(claims["aud"]) == sorted([api, cli])
    assert claims["azp"] == cli
    # Trust goes one way only: imm-api is no peer of imm-cli.
    refused = password_grant(devstack_env, "bob", "bob-password", scope=f"{SCOPE} audience:server:client_id:{cli}")
    assert refused.status_code != 200
    assert "id_token" not in refused.json()


def test_kube_apiserver_accepts_a_users_id_token(devstack_env: dict[str, str]) -> None:
    kubeconfig = yaml.safe_load(Path(devstack_env["KUBECONFIG"]).read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    token = devstack_token("alice").stdout.strip().splitlines()[-1]
    response = requests.post(
        f"{cluster['server']}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": f"Bearer {token}"},
        verify=cluster["certificate-authority"],
        timeout=10,
    )
    assert response.status_code == 201, response.text
    user = response.json()["status"]["userInfo"]
    assert user["username"] == "alice@example.com"
    assert "team-a" in user["groups"]
    assert "team-b" not in user["groups"]


# --- a real browser: authorization code + PKCE for the public CLI client -------------------------


class _Callback(http.server.BaseHTTPRequestHandler):
    """The CLI's loopback redirect target: records the query of /callback."""

    received: ClassVar[dict[str, list[str]]] = {}

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        type(self).received = urllib.parse.parse_qs(url.query)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Login complete; you can close this window.")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_server() -> Iterator[type[_Callback]]:
    _Callback.received = {}
    server = http.server.HTTPServer(("127.0.0.1", 5555), _Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Callback
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser_home(devstack_env: dict[str, str]) -> Iterator[str]:
    """A throw-away HOME whose NSS database trusts the devstack CA, as a user's browser would."""
    with browser_home_trusting(devstack_env["OIDC_CA_FILE"]) as home:
        yield home


def test_browser_login_with_pkce_for_the_cli(
    devstack_env: dict[str, str],
    jwks: jwt.PyJWKClient,
    callback_server: type[_Callback],
    browser_home: str,
) -> None:
    from playwright.sync_api import sync_playwright

    issuer, cli = devstack_env["OIDC_ISSUER"], devstack_env["OIDC_CLI_CLIENT_ID"]
    api = devstack_env["OIDC_API_CLIENT_ID"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urllib.parse.urlencode(
        {
            "client_id": cli,
            "redirect_uri": CLI_REDIRECT,
            "response_type": "code",
            "scope": f"{SCOPE} audience:server:client_id:{api}",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, browser_home)
        try:
            page = browser.new_page()
            page.goto(f"{issuer}/auth?{query}")
            # One connector: Dex goes straight to the LDAP connector's login form.
            assert page.url.startswith(f"{issuer}/auth/ldap/login")
            page.fill("#login", "carol")
            page.fill("#password", "carol-password")
            page.click("#submit-login")
            page.wait_for_url(f"{CLI_REDIRECT}?*", timeout=20_000)
            assert "Login complete" in page.content()
        finally:
            browser.close()

    received = callback_server.received
    assert received.get("state") == [state]
    code = received["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CLI_REDIRECT, "client_id": cli}
    # Without the verifier the code is refused: PKCE is enforced for this code.
    refused = requests.post(f"{issuer}/token", data=exchange, verify=devstack_env["OIDC_CA_FILE"], timeout=10)
    assert refused.status_code != 200
    response = requests.post(
        f"{issuer}/token", data={**exchange, "code_verifier": verifier}, verify=devstack_env["OIDC_CA_FILE"], timeout=10
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens.get("refresh_token")
    assert tokens.get("access_token")
    claims = verify(devstack_env, jwks, tokens["id_token"], audience=api)
    assert claims["email"] == "carol@example.com"
    assert sorted(claims["groups"]) == ["team-a", "team-b"]
    assert claims["azp"] == cli


def test_device_flow_for_the_cli(devstack_env: dict[str, str], jwks: jwt.PyJWKClient, browser_home: str) -> None:
    from playwright.sync_api import sync_playwright

    issuer, cli = devstack_env["OIDC_ISSUER"], devstack_env["OIDC_CLI_CLIENT_ID"]
    api = devstack_env["OIDC_API_CLIENT_ID"]
    ca = devstack_env["OIDC_CA_FILE"]
    start = requests.post(
        f"{issuer}/device/code",
        data={"client_id": cli, "scope": f"{SCOPE} audience:server:client_id:{api}"},
        verify=ca,
        timeout=10,
    )
    assert start.status_code == 200, start.text
    device = start.json()
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    poll = {"grant_type": grant, "device_code": device["device_code"], "client_id": cli}
    pending = requests.post(f"{issuer}/token", data=poll, verify=ca, timeout=10)
    assert pending.json().get("error") == "authorization_pending"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, browser_home)
        try:
            page = browser.new_page()
            page.goto(device["verification_uri_complete"])
            page.click("#submit-login")  # confirms the prefilled user code
            page.fill("#login", "admin")
            page.fill("#password", "admin-password")
            page.click("#submit-login")
            page.wait_for_selector("text=Login Successful", timeout=20_000)
        finally:
            browser.close()
    deadline = time.monotonic() + 30
    while True:
        response = requests.post(f"{issuer}/token", data=poll, verify=ca, timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        assert response.json().get("error") in {"authorization_pending", "slow_down"}, response.text
        time.sleep(device.get("interval", 5))
    assert response.status_code == 200, response.text
    claims = verify(devstack_env, jwks, response.json()["id_token"], audience=api)
    assert claims["email"] == "admin@example.com"
    assert claims["groups"] == ["admin"]
