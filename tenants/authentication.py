"""Robot tokens: a bearer token that is not one of our identity provider's is asked of Kubernetes.

A robot (README "Robots") is a ServiceAccount in a tenant namespace; its tokens come from the
TokenRequest API, bound to the audience ``IMM_ROBOT_TOKEN_AUDIENCE``. Such a token is verified by a
TokenReview made with the management API's own identity: Kubernetes alone knows whether the
ServiceAccount still exists (a bound token dies with it) and whether the token expired. The caller
then acts AS that service account (``identity.identity_from_service_account``, the one exception to
the ``system:`` rule in ``auth/names.py``), so Kubernetes RBAC authorises every call.

Which path a token takes is decided without trusting it: only a JWT whose (unverified) audience is
``IMM_ROBOT_TOKEN_AUDIENCE`` and whose issuer is not our identity provider's is reviewed; every other
token is left to the OIDC authentication, which verifies it as before. A forged claim gains nothing,
because the review decides.

Answers are cached per token (its SHA-256) for ``IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS`` and never
beyond the token's own ``exp``, so a request does not pay a review while a deleted robot's token is
refused within that bound. Refusals are cached too, so a flood of one bad token costs one review.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from inferencemgmt import kube
from inferencemgmt.api.exceptions import WWW_AUTHENTICATE
from inferencemgmt.auth.authentication import token_from_header
from inferencemgmt.auth.identity import Identity, identity_from_service_account
from inferencemgmt.auth.names import service_account_of
from inferencemgmt.errors import KUBERNETES, Forbidden, NotAuthenticated, UpstreamUnavailable
from tenants.selectors import tenant_namespace

_MAX_ENTRIES = 10_000
_lock = threading.Lock()
# sha256(token) -> (monotonic deadline, the robot or the refusal)
_answers: OrderedDict[str, tuple[float, Identity | NotAuthenticated]] = OrderedDict()


@receiver(setting_changed)
def _forget(**kwargs: object) -> None:
    if str(kwargs.get("setting", "")).startswith("IMM_ROBOT"):
        review_cache_clear()


def review_cache_clear() -> None:
    with _lock:
        _answers.clear()


def _refused(description: str = "Token not valid.", code: str = "auth_token_invalid") -> NotAuthenticated:
    return NotAuthenticated("Authentication required", description, code=code)


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT read WITHOUT verifying it (only to route it), or None if it is not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims, dict) else None


def is_robot_token(token: str) -> bool:
    """A JWT that names our robot audience and is not our identity provider's: only Kubernetes can judge it.

    Read unverified, only to route: a forged claim buys one TokenReview, which refuses it.
    """
    claims = unverified_claims(token)
    if claims is None:
        return False
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or settings.IMM_ROBOT_TOKEN_AUDIENCE not in audiences:
        return False
    return str(claims.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER.rstrip("/")


def _review(token: str) -> Identity:
    """Ask Kubernetes; a valid token must name a service account of a tenant namespace."""
    audience = settings.IMM_ROBOT_TOKEN_AUDIENCE
    try:
        answer = kube.token_review(token, [audience])
    except Forbidden:
        raise UpstreamUnavailable(
            KUBERNETES,
            "the management API may not create TokenReviews (helm/imm/files/rbac/management-api.yaml)",
            code="kubernetes_token_review_forbidden",
        ) from None
    if not answer.authenticated:
        if "expired" in answer.error.lower():
            raise _refused("Token expired", code="auth_token_expired")
        raise _refused()
    if answer.audiences and audience not in answer.audiences:
        raise _refused()
    found = service_account_of(answer.username)
    if found is None:
        raise _refused("Only a tenant's robot token is accepted here.", code="auth_token_not_robot")
    if tenant_namespace(found[0]) is None:
        raise _refused("Only a tenant's robot token is accepted here.", code="auth_token_not_robot")
    return identity_from_service_account(answer.username)


def robot_identity(token: str) -> Identity:
    """The robot ``token`` proves, or NotAuthenticated (401); cached briefly (module docstring)."""
    key = hashlib.sha256(token.encode()).hexdigest()
    now = time.monotonic()
    with _lock:
        cached = _answers.get(key)
    if cached is not None and now < cached[0]:
        if isinstance(cached[1], NotAuthenticated):
            raise _refused(cached[1].description or "Token not valid.", code=cached[1].code)
        return cached[1]
    answer: Identity | NotAuthenticated
    try:
        answer = _review(token)
    except NotAuthenticated as refusal:
        answer = refusal
    ttl = settings.IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS
    expiry = (unverified_claims(token) or {}).get("exp")
    if isinstance(expiry, int | float) and not isinstance(expiry, bool):
        ttl = min(ttl, max(0.0, float(expiry) - time.time()))
    if ttl > 0:
        with _lock:
            _answers[key] = (now + ttl, answer)
            _answers.move_to_end(key)
            while len(_answers) > _MAX_ENTRIES:
                _answers.popitem(last=False)
    if isinstance(answer, NotAuthenticated):
        raise answer
    return answer


class RobotTokenAuthentication(BaseAuthentication):
    """Authenticates robot tokens; leaves every other request to the next authentication class."""

    def authenticate(self, request: Request) -> tuple[Identity, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        token = token_from_header(header)
        if not token or not is_robot_token(token):
            return None  # empty, not a JWT, or our provider's: the OIDC authentication decides
        if settings.IMM_KUBE_AUTH_MODE == "passthrough":
            raise _refused("Robot tokens need IMM_KUBE_AUTH_MODE=impersonate.", code="auth_robot_unsupported")
        return robot_identity(token), token

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class RobotTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents robot tokens (a service-account token from ``POST /tenants/<t>/robots/<name>/tokens``)."""

    target_class = RobotTokenAuthentication
    name = "robotToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A robot token from POST /tenants/{tenant}/robots/{name}/tokens.",
        }
