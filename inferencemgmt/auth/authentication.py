"""DRF authentication: OIDC bearer tokens for API clients, the session for the console.

The original clients send the bare token (``Authorization: <jwt>``); standard clients send
``Bearer <jwt>``. Both are accepted.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from inferencemgmt.api.exceptions import WWW_AUTHENTICATE, missing_token_error
from inferencemgmt.auth.identity import Identity, identity_from_claims, identity_from_session
from inferencemgmt.auth.oidc import provider


def token_from_header(value: str) -> str:
    """``Bearer <jwt>`` or the bare ``<jwt>``; the scheme is case-insensitive."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return value


class OIDCTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Identity, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None  # maybe a console session; the permission check answers 401 otherwise
        token = token_from_header(header)
        if not token:
            raise missing_token_error()
        claims = provider().verify(token)
        keep_token = settings.IMM_KUBE_AUTH_MODE == "passthrough"
        return identity_from_claims(claims, token if keep_token else None), token

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class ConsoleSessionAuthentication(SessionAuthentication):
    """The identity the console login stored in the session (CSRF enforced like DRF's own)."""

    def authenticate(self, request: Request) -> tuple[Identity, None] | None:
        django_request = request._request
        user = getattr(django_request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        identity = identity_from_session(django_request.session)
        if identity is None:
            return None
        self.enforce_csrf(request)
        return identity, None


class OIDCTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents the bearer token in the OpenAPI schema (the bare form is accepted too)."""

    target_class = OIDCTokenAuthentication
    name = "oidcToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class ConsoleSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = ConsoleSessionAuthentication
    name = "consoleSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
