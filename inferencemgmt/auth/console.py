"""Console and browsable-API login through mozilla-django-oidc (authorization code + PKCE).

The ID token is verified by the same code as API tokens (``oidc.provider().verify``), and the
provider's endpoints come from discovery, so the issuer URL is the only login setting. The verified
Identity is kept in the session; platform admins become Django staff so they can use the admin site.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from inferencemgmt.auth.identity import SESSION_KEY, Identity, identity_from_claims
from inferencemgmt.auth.names import username_problem
from inferencemgmt.auth.oidc import provider


class ConsoleOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.OIDC_OP_TOKEN_ENDPOINT = provider().endpoint("token_endpoint")
        return super().get_token(payload)  # type: ignore[no-any-return]

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
    def get(self, request: HttpRequest) -> HttpResponse:
        self.OIDC_OP_AUTH_ENDPOINT = provider().endpoint("authorization_endpoint")
        return super().get(request)  # type: ignore[no-any-return]
