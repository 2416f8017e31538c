"""The verified caller, as every service and ``kube.py`` sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from inferencemgmt.auth.names import (
    passable_groups,
    service_account_groups,
    service_account_of,
    username_problem,
)
from inferencemgmt.errors import NotAuthenticated

SESSION_KEY = "imm_identity"


@dataclass(frozen=True)
class Identity:
    """A user proven by a verified token (or a console session made from one).

    ``token`` is kept only for the Kubernetes pass-through mode; it never appears in ``repr`` so a
    logged Identity cannot leak it.
    """

    username: str
    groups: tuple[str, ...] = ()
    is_admin: bool = False
    token: str | None = field(default=None, repr=False, compare=False)
    #: A tenant's robot (a ServiceAccount proven by a TokenReview): the only Identity whose ``system:``
    #: names are sent to Kubernetes (``names.py``, "the one exception"). Set only by
    #: ``identity_from_service_account``.
    service_account: bool = False

    # Django and DRF code (templates, the browsable API) asks any "user" these.
    is_authenticated = True
    is_anonymous = False

    def __str__(self) -> str:
        return self.username

    def as_session(self) -> dict[str, Any]:
        return {"username": self.username, "groups": list(self.groups)}

    @property
    def robot_namespace(self) -> str | None:
        """The tenant namespace of a robot identity, None for a person."""
        found = service_account_of(self.username) if self.service_account else None
        return found[0] if found else None

    def as_record(self) -> dict[str, Any]:
        """What an Operation stores to act as this user later (never the token)."""
        record: dict[str, Any] = {"username": self.username, "groups": list(self.groups), "is_admin": self.is_admin}
        if self.service_account:
            record["serviceAccount"] = True
        return record


def _identity(username: str, groups: tuple[str, ...], token: str | None) -> Identity:
    """Every constructor ends here, so no Identity carries a group Kubernetes must not be sent (names.py)."""
    groups = passable_groups(groups)
    return Identity(
        username=username,
        groups=groups,
        is_admin=settings.IMM_ADMIN_GROUP in groups,
        token=token,
    )


def identity_from_claims(claims: Mapping[str, Any], token: str | None = None) -> Identity:
    """Build an Identity from verified claims; names of the claims are settings.

    A missing groups claim means "no groups": a user outside every group is still a user. A user
    name that is not a plain identity (``names.username_problem``) refuses the token: Kubernetes
    would otherwise be told a name the identity provider did not mean, or one only it may assign.
    Groups that may not be passed on are dropped (``names.passable_groups``).
    """
    username = claims.get(settings.OIDC_USERNAME_CLAIM)
    if not isinstance(username, str) or not username:
        raise NotAuthenticated(description="Token not valid.", code="auth_token_no_username")
    if username_problem(username) is not None:
        raise NotAuthenticated(description="Token not valid.", code="auth_token_bad_username")
    raw_groups = claims.get(settings.OIDC_GROUPS_CLAIM, [])
    if raw_groups is None:
        raw_groups = []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    if not isinstance(raw_groups, list) or not all(isinstance(g, str) for g in raw_groups):
        raise NotAuthenticated(description="Token not valid.", code="auth_token_bad_groups")
    return _identity(username, tuple(raw_groups), token)


def identity_from_service_account(username: str) -> Identity:
    """A robot: the service account a TokenReview proved (the caller checked its namespace is a tenant).

    The groups are not taken from the review: they are exactly the two Kubernetes gives every service
    account of the namespace, derived from the user name, so nothing else can ride on the exception.
    A name that is not exactly ``system:serviceaccount:<ns>:<name>`` refuses the token.
    """
    found = service_account_of(username)
    if found is None:
        raise NotAuthenticated(description="Token not valid.", code="auth_token_bad_username")
    return Identity(username=username, groups=service_account_groups(found[0]), service_account=True)


def identity_from_record(record: Mapping[str, Any]) -> Identity:
    """Rebuild the Identity an Operation was requested by (Celery tasks act as that user)."""
    if record.get("serviceAccount") is True:
        return identity_from_service_account(str(record["username"]))
    return _identity(str(record["username"]), tuple(record.get("groups", ())), None)


def identity_from_session(session: Mapping[str, Any]) -> Identity | None:
    stored = session.get(SESSION_KEY)
    if not isinstance(stored, dict) or username_problem(stored.get("username")) is not None:
        return None  # a session stored before the name rules existed signs in again
    token = session.get("oidc_id_token")
    return _identity(
        str(stored["username"]),
        tuple(stored.get("groups", ())),
        token if isinstance(token, str) else None,
    )
