"""The console's session: CSRF on every form post and on session-authenticated API writes, and the
security headers of its pages. No platform needed: a signed-in session is built the way the OIDC
login stores it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inferencemgmt.auth.identity import SESSION_KEY

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


@pytest.fixture
def console(settings: Any) -> Client:
    """A browser signed in to the console as a platform admin, with CSRF checks on as in production
    (an admin, so that without CSRF every write below would be allowed and answer 400 for its body)."""
    client = Client(enforce_csrf_checks=True)
    user = get_user_model().objects.create_user(username="alice@example.com")
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = {"username": "alice@example.com", "groups": ["admin", "team-a"]}
    session.save()
    return client


def csrf_token(client: Client) -> str:
    client.get("/")
    return str(client.cookies["csrftoken"].value)


def test_logout_form_without_csrf_token_is_403(console):
    assert console.post("/oidc/logout/").status_code == 403
    assert SESSION_KEY in console.session  # still signed in


def test_logout_form_with_csrf_token_signs_out(console):
    token = csrf_token(console)
    response = console.post("/oidc/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code in (302, 303)
    assert SESSION_KEY not in console.session


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/tenants"),
        ("post", "/tenants/team-a-tenant/upload/start"),
        ("post", "/tenants/team-a-tenant/uploads"),
        ("delete", "/tenants/team-a-tenant/models"),
    ],
)
def test_session_authenticated_api_write_without_csrf_token_is_403(console, method, path):
    """A page on another site cannot make the signed-in browser write through the API."""
    response = getattr(console, method)(path, data="{}", content_type="application/json")
    assert response.status_code == 403
    # The same request with the token is not refused: the 403 above was CSRF, not a missing login or right.
    token = csrf_token(console)
    with_token = getattr(console, method)(path, data="{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert with_token.status_code == 400, with_token.content


def test_session_reads_need_no_csrf_token(console, settings):
    """The session is a real identity for the API (so the CSRF 403 above is not a missing login)."""
    response = console.get("/tenants/UPPER")  # not a tenant name: 404 without any upstream call
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/", "/api/docs/", "/healthz", "/tenants", "/no-such-page"])
def test_security_headers(client, path):
    response = client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    # drf-spectacular's Swagger UI page relaxes COOP for its OAuth2 pop-up (SECURITY.md, known gaps).
    expected_coop = "unsafe-none" if path == "/api/docs/" else "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == expected_coop
