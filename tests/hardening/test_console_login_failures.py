"""Every way a console sign-in can fail ends in a page with a 4xx or a 503, never a 500.

The security review's attack first: an anonymous browser starts a sign-in, then calls the callback
with a made-up code. The real identity provider refuses the code; the answer must say so, and no
page (DEBUG on, as `make dev` once ran) may show the client secret.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.views.debug import ExceptionReporter

pytestmark = [pytest.mark.django_db]


def _start_sign_in(browser: Client) -> str:
    response = browser.get("/oidc/authenticate/")
    assert response.status_code == 302, response.content
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


@pytest.mark.integration
def test_a_refused_code_is_a_400_page_without_the_client_secret(platform_settings):
    platform_settings.DEBUG = True
    platform_settings.OIDC_RP_CLIENT_SECRET = platform_settings.OIDC_API_CLIENT_SECRET
    browser = Client(raise_request_exception=False)
    state = _start_sign_in(browser)
    response = browser.get("/oidc/callback/", {"code": "garbage", "state": state})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Sign-in failed" in page
    assert "invalid_grant" in page or "Token error" in page
    assert 'href="/oidc/authenticate/"' in page
    assert platform_settings.OIDC_API_CLIENT_SECRET not in page
    # The state was used up: replaying the same callback is refused as stale, again as a page.
    replay = browser.get("/oidc/callback/", {"code": "garbage", "state": state})
    assert replay.status_code in (302, 400)
    assert platform_settings.OIDC_API_CLIENT_SECRET not in replay.content.decode()


@pytest.mark.integration
def test_an_unknown_state_is_a_400_page(platform_settings):
    browser = Client(raise_request_exception=False)
    _start_sign_in(browser)
    response = browser.get("/oidc/callback/", {"code": "garbage", "state": "not-the-one-we-sent"})
    assert response.status_code == 400
    assert "not started in this browser" in response.content.decode()


@pytest.mark.unit
def test_an_unreachable_provider_is_a_503_page(settings: Any):
    # A closed loopback port: the discovery request is refused at once.
    settings.OIDC_ISSUER = "http://127.0.0.1:9"
    browser = Client(raise_request_exception=False)
    response = browser.get("/oidc/authenticate/")
    assert response.status_code == 503
    page = response.content.decode()
    assert "Sign-in is not possible right now" in page
    assert "identity provider" in page.lower()


@pytest.mark.unit
def test_error_reports_hide_secrets_by_name_and_by_value(settings: Any, rf: Any):
    """Library frames we cannot decorate hold the secret in dicts and in encoded bodies."""
    settings.DEBUG = True
    secret = f"s3cr3t-{uuid.uuid4().hex}"  # made at run time: the page also shows this file's source
    settings.OIDC_API_CLIENT_SECRET = secret

    def exchange() -> None:
        payload = {"client_id": "imm", "client_secret": secret, "code": "abc"}
        body = f"grant_type=authorization_code&client_secret={secret}"
        raise RuntimeError(f"token endpoint said no ({len(payload)} fields, {len(body)} bytes)")

    request = rf.post("/oidc/callback/", {"client_secret": secret, "password": secret, "note": f"x{secret}x"})
    try:
        exchange()
    except RuntimeError:
        html = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    assert "token endpoint said no" in html  # the report itself is there
    assert "client_secret" in html  # the names stay, the values go
    assert secret not in html
