"""Console and browsable-API login through mozilla-django-oidc (authorization code + PKCE).

The ID token is verified by the same code as API tokens (``oidc.provider().verify``), and the
code is exchanged by the same code as the CLI's token route (``oidc.provider().token_request``),
so the client secret is handled in one place and every provider failure is a domain error. The
provider's endpoints come from discovery, so the issuer URL is the only login setting. The verified
Identity is kept in the session; platform admins become Django staff so they can use the admin site.

Every way a sign-in can fail (a refused or replayed code, an unknown state, the provider down) ends
in a page that says so with a 4xx or 503, never in a 500 whose report could show the secret.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_variables
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from inferencemgmt.auth.identity import SESSION_KEY, Identity, identity_from_claims
from inferencemgmt.auth.names import username_problem
from inferencemgmt.auth.oidc import provider
from inferencemgmt.errors import BadRequest, ImmError

logger = logging.getLogger(__name__)

# The form fields the provider client adds itself (HTTP basic authentication), so they are dropped.
_CLIENT_FIELDS = ("client_id", "client_secret")


class ConsoleOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    @sensitive_variables("payload", "form")
    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Exchange the code through the provider client: a refusal is a 400, an outage a 503."""
        form = {key: value for key, value in payload.items() if key not in _CLIENT_FIELDS and value is not None}
        return provider().token_request(form)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        claims = provider().verify(token)
        if claims.get("nonce") != kwargs.get("nonce"):
            raise SuspiciousOperation("JWT nonce verification failed.")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Groups and the user name are in the verified ID token; no extra round trip.
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """Only a plain identity signs in (the API refuses the same tokens, see ``auth/names.py``)."""
        return username_problem(claims.get(settings.OIDC_USERNAME_CLAIM)) is None

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[Any]:
        return get_user_model().objects.filter(username=claims[settings.OIDC_USERNAME_CLAIM])

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = get_user_model().objects.create_user(
            username=claims[settings.OIDC_USERNAME_CLAIM], email=claims.get("email", "")
        )
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        identity = identity_from_claims(claims)
        if user.is_staff != identity.is_admin or user.is_superuser != identity.is_admin:
            user.is_staff = user.is_superuser = identity.is_admin
            user.save(update_fields=["is_staff", "is_superuser"])
        self._remember(identity, claims)
        return user

    def _remember(self, identity: Identity, claims: dict[str, Any]) -> None:
        session = self.request.session
        session[SESSION_KEY] = identity.as_session()
        expires = claims.get("exp")
        if isinstance(expires, int):
            # The session lives no longer than the token that proved who the user is.
            session.set_expiry(datetime.fromtimestamp(expires, tz=UTC))


class ConsoleLoginView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Start a sign-in: redirect to the provider's authorization endpoint found by discovery."""

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider().endpoint("authorization_endpoint")
        except ImmError as error:
            return login_failed(request, error)
        return super().get(request)  # type: ignore[no-any-return]


def login_failed(request: HttpRequest, error: ImmError) -> HttpResponse:
    """A sign-in that did not work, as a page with the reason and a way to start again."""
    logger.warning("Console sign-in failed with %s (%s)", error.status, error.code)
    heading = "Sign-in failed" if error.status < 500 else "Sign-in is not possible right now"
    return render(
        request,
        "console/error.html",
        {"identity": None, "error": error, "heading": heading, "retryable": error.retryable, "sign_in_again": True},
        status=error.status,
    )


def _stale_state() -> BadRequest:
    return BadRequest(
        "Sign-in failed",
        "The sign-in was not started in this browser, has expired or was already used. Sign in again.",
        code="login_state_invalid",
    )


class ConsoleCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """The provider's redirect back to the console.

    The library raises for a state it does not know (SuspiciousOperation) and lets the token
    exchange's and the ID token check's errors through; each becomes a page with its status.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get(request)  # type: ignore[no-any-return]
        except SuspiciousOperation:
            return login_failed(request, _stale_state())
        except ImmError as error:
            return login_failed(request, error)
