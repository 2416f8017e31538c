"""The original clients' login and refresh, as they put them on the wire, against the platform's Dex.

The original CLI (``scripts/webbrowser_authenticate.py`` and ``refresh_token.py`` on top of
``common_token.py``) reads ``Location`` from ``GET /authenticate``, adds ``offline_access`` to the
scope, lets a browser log in, takes the code from its loopback callback and posts it with
``http.client``: ``Content-type: application/json``, ``Accept: text/plain``. The original API tests
post ``json.dumps(...)`` with ``requests`` and no ``Content-Type`` at all. Both were refused (406,
415) before issue 24; here both run against a real server socket (pytest-django's live server, in
this process with the platform's settings) and the devstack's real Dex.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import requests

from inferencemgmt.auth.authentication import OIDCTokenAuthentication

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CALLBACK = "http://127.0.0.1:5555/callback"


def _connection(live_server: Any) -> http.client.HTTPConnection:
    address = urlsplit(live_server.url)
    return http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)


def dex_auth_url(live_server: Any, offline: bool = False) -> str:
    """common_token.get_dex_auth_url: a bare GET, no redirect followed, ``Location`` read."""
    conn = _connection(live_server)
    conn.request("GET", "/authenticate?offline=True" if offline else "/authenticate")
    response = conn.getresponse()
    response.read()
    assert response.status == 308
    location = response.getheader("location")
    assert location
    return location


def browser_login(auth_url: str, user: str, ca_file: str) -> str:
    """What the user's browser does with the URL: Dex's LDAP form, then the redirect to the CLI's
    loopback callback, whose ``code`` the CLI reads (nothing listens there: the code is enough)."""
    parts = urlsplit(auth_url)
    query = parse_qs(parts.query)
    query["scope"] = [query["scope"][0] + " offline_access"]  # webbrowser_authenticate.py adds it
    url = urlunsplit(parts._replace(query=urlencode({k: v[0] for k, v in query.items()})))
    trust = ssl.create_default_context(cafile=ca_file)
    with httpx.Client(verify=trust, follow_redirects=False, timeout=20) as browser:
        page = browser.get(url)
        while page.is_redirect:
            page = browser.get(page.url.join(page.headers["location"]))
        action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        landed = browser.post(page.url.join(action), data={"login": user, "password": f"{user}-password"})
        for _ in range(10):
            location = landed.headers.get("location", "")
            assert landed.is_redirect, landed.text[:300]
            if location.startswith(CALLBACK):
                return parse_qs(urlsplit(location).query)["code"][0]
            landed = browser.get(landed.url.join(location))
    raise AssertionError("Dex never redirected to the CLI's callback")


def token_helper(live_server: Any, auth: dict[str, str], offline: bool = False) -> tuple[int, dict[str, str], bytes]:
    """common_token.get_dex_auth_token, exactly: http.client, its two headers, json.dumps body."""
    conn = _connection(live_server)
    headers = {"Content-type": "application/json", "Accept": "text/plain"}
    url = "/authenticate/token?offline=True" if offline else "/authenticate/token"
    conn.request("POST", url, json.dumps(auth), headers)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def username_of(id_token: str) -> str:
    from rest_framework.test import APIRequestFactory

    result = OIDCTokenAuthentication().authenticate(APIRequestFactory().get("/tasks", HTTP_AUTHORIZATION=id_token))
    assert result is not None
    return str(result[0].username)


def test_original_cli_login_and_refresh(live_server, platform_settings, devstack_env):
    """`imm login` (browser mode) then the token refresh, each as the original CLI sends it."""
    code = browser_login(dex_auth_url(live_server), "alice", devstack_env["OIDC_CA_FILE"])
    status, headers, body = token_helper(live_server, {"code": code})
    assert status == 200, body
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    token = json.loads(body.decode("utf-8"))["data"]["token"]  # what the helper saves
    assert {"id_token", "refresh_token", "expires_at"} <= set(token)
    assert username_of(token["id_token"]) == "alice@example.com"

    # refresh_token.py: the same helper, ?offline=True, {"refresh_token": ...}.
    status, _, body = token_helper(live_server, {"refresh_token": token["refresh_token"]}, offline=True)
    assert status == 200, body
    refreshed = json.loads(body.decode("utf-8"))["data"]["token"]
    assert refreshed["id_token"] != token["id_token"]
    assert username_of(refreshed["id_token"]) == "alice@example.com"


def test_original_api_tests_token_requests_without_content_type(live_server, platform_settings, devstack_env):
    """test_authenticate.py::test_get_token: ``requests.post(url, data=json.dumps({key: value}))``."""
    url = f"{live_server.url}/authenticate/token"
    code = browser_login(dex_auth_url(live_server), "bob", devstack_env["OIDC_CA_FILE"])
    prepared = requests.Request("POST", url, data=json.dumps({"code": code})).prepare()
    assert "Content-Type" not in prepared.headers  # the shape this test is about
    with requests.Session() as session:
        response = session.send(prepared, timeout=30)
    assert response.status_code == 200, response.text
    assert "token" in response.text
    refresh_token = response.json()["data"]["token"]["refresh_token"]
    refreshed = requests.post(url, data=json.dumps({"refresh_token": refresh_token}), timeout=30)
    assert refreshed.status_code == 200, refreshed.text
    assert username_of(refreshed.json()["data"]["token"]["id_token"]) == "bob@example.com"
    # A body of the wrong shape sent the same way: the original's 400, not 415.
    wrong = requests.post(url, data=json.dumps({"modelName": "wrong"}), timeout=30)
    assert wrong.status_code == 400
    assert wrong.json()["title"] == "Failed data validation"
