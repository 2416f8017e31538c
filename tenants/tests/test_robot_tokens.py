"""Robot tokens: routing, the TokenReview answer, the tenant rule, the cache, and the one impersonation
exception. The Kubernetes chokepoint is faked (``kube.token_review`` and the namespace read); the
authentication, identity and impersonation code under test is the real one."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity, identity_from_claims, identity_from_record
from inferencemgmt.errors import Forbidden, NotAuthenticated, NotFound
from inferencemgmt.tests.conftest import ISSUER
from tenants import authentication

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

TENANT = "robots-t1"
ROBOT = f"system:serviceaccount:{TENANT}:ci"
GROUPS = ("system:serviceaccounts", f"system:serviceaccounts:{TENANT}")


def robot_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": [django_settings.IMM_ROBOT_TOKEN_AUDIENCE],
        "sub": ROBOT,
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)
    # The signature is Kubernetes' business: the API never checks it itself, it asks a TokenReview.
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, "not-a-real-key-" * 4, algorithm="HS256")


class FakeKubernetes:
    """Answers TokenReviews from ``valid`` (token -> user name) and reads tenant namespaces."""

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.reviews: list[list[str]] = []
        self.tenants = {TENANT}
        self.forbidden = False

    def token_review(self, token: str, audiences: list[str]) -> kube.TokenReviewAnswer:
        self.reviews.append(audiences)
        if self.forbidden:
            raise Forbidden("K8s forbidden: Forbidden", "tokenreviews is forbidden", code="kubernetes_forbidden")
        username = self.valid.get(token)
        return kube.TokenReviewAnswer(
            authenticated=username is not None,
            username=username or "",
            audiences=list(audiences) if username else [],
            error=self.errors.get(token, "" if username else "invalid bearer token"),
        )

    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        if name not in self.tenants and name != "kube-system":
            raise NotFound(description=f'namespaces "{name}" not found', code="kubernetes_not_found")
        labels = {"created_by": django_settings.PLATFORM_ADMIN_LABEL} if name in self.tenants else {}
        return {"metadata": {"name": name, "labels": labels, "annotations": {}}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, settings: Any, issuer: Any) -> FakeKubernetes:
    settings.IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS = 10.0
    authentication.review_cache_clear()
    fake = FakeKubernetes()
    monkeypatch.setattr(kube, "token_review", fake.token_review)
    monkeypatch.setattr(kube, "platform_read_namespace", fake.platform_read_namespace)
    return fake


def get(api: Any, token: str) -> Any:
    return api.get("/tasks", HTTP_AUTHORIZATION=f"Bearer {token}")


def body(code: str, description: str = "Token not valid.") -> dict[str, str]:
    return {"title": "Authentication required", "description": description, "code": code}


# --- routing ------------------------------------------------------------------------------------------
def test_only_jwts_for_our_robot_audience_and_not_from_our_provider_are_reviewed(cluster, issuer):
    assert authentication.is_robot_token(robot_token())
    assert authentication.is_robot_token(robot_token(aud=django_settings.IMM_ROBOT_TOKEN_AUDIENCE))
    assert not authentication.is_robot_token(issuer.mint())  # our provider's: OIDC verifies it
    assert not authentication.is_robot_token(robot_token(aud=["https://kubernetes.default.svc"]))
    assert not authentication.is_robot_token(robot_token(iss=ISSUER))
    assert not authentication.is_robot_token("not-a-jwt")
    assert not authentication.is_robot_token("a.b.c")


def test_an_oidc_token_never_reaches_a_token_review(api, cluster, issuer):
    assert get(api, issuer.mint()).status_code == 200
    assert get(api, issuer.mint(iss="https://evil.test/dex")).status_code == 401
    assert cluster.reviews == []


# --- the review's answer ------------------------------------------------------------------------------
def test_a_valid_robot_token_acts_as_its_service_account_with_exactly_its_two_groups(api, cluster):
    token = robot_token()
    cluster.valid[token] = ROBOT
    identity = authentication.robot_identity(token)
    assert identity == Identity(ROBOT, GROUPS, is_admin=False, service_account=True)
    assert identity.robot_namespace == TENANT
    assert kube.impersonation_user(identity) == ROBOT
    assert kube.impersonation_groups(identity) == list(GROUPS)
    assert cluster.reviews == [[django_settings.IMM_ROBOT_TOKEN_AUDIENCE]]  # bound to our audience
    assert get(api, token).status_code == 200


def test_invalid_and_expired_tokens_are_401_in_the_one_error_shape(api, cluster):
    invalid = get(api, robot_token(sub="invalid"))
    assert (invalid.status_code, invalid.json()) == (401, body("auth_token_invalid"))
    assert invalid["WWW-Authenticate"].startswith("Bearer")
    expired_token = robot_token(sub="expired")
    cluster.errors[expired_token] = "[invalid bearer token, service account token has expired]"
    expired = get(api, expired_token)
    assert (expired.status_code, expired.json()) == (401, body("auth_token_expired", "Token expired"))


def test_a_token_whose_exp_passed_is_never_cached(api, cluster):
    """The expiry path: Kubernetes refuses an expired token; the cache never outlives ``exp``."""
    token = robot_token(exp=int(time.time()) - 1)
    cluster.errors[token] = "service account token has expired"
    for _ in range(2):
        assert get(api, token).json()["code"] == "auth_token_expired"
    assert len(cluster.reviews) == 2


def test_service_accounts_outside_tenants_and_other_users_are_refused(api, cluster):
    outside, person, odd = robot_token(sub="1"), robot_token(sub="2"), robot_token(sub="3")
    cluster.valid[outside] = "system:serviceaccount:kube-system:namespace-controller"
    cluster.valid[person] = "alice@example.com"  # a user another authenticator of the cluster knows
    cluster.valid[odd] = f"system:serviceaccount:{TENANT}:ci:extra"
    not_robot = body("auth_token_not_robot", "Only a tenant's robot token is accepted here.")
    assert get(api, outside).json() == not_robot
    assert get(api, person).json() == not_robot
    assert get(api, odd).status_code == 401


def test_a_review_the_platform_may_not_make_is_503_naming_kubernetes(api, cluster):
    cluster.forbidden = True
    answer = get(api, robot_token())
    assert answer.status_code == 503
    assert answer.json()["code"] == "kubernetes_token_review_forbidden"


def test_passthrough_mode_refuses_robot_tokens(api, cluster, settings):
    settings.IMM_KUBE_AUTH_MODE = "passthrough"
    answer = get(api, robot_token())
    assert (answer.status_code, answer.json()["code"]) == (401, "auth_robot_unsupported")
    assert cluster.reviews == []


# --- the cache: a deleted robot's token is 401 within the bound ------------------------------------------
def test_answers_are_cached_and_a_deleted_robot_is_refused_once_the_cache_expires(api, cluster, settings):
    settings.IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS = 0.3
    token = robot_token()
    cluster.valid[token] = ROBOT
    assert get(api, token).status_code == 200
    assert get(api, token).status_code == 200
    assert len(cluster.reviews) == 1  # the second request paid no review
    del cluster.valid[token]  # the robot was deleted: Kubernetes refuses its tokens from now on
    time.sleep(0.35)
    assert get(api, token).status_code == 401
    assert get(api, token).status_code == 401
    assert len(cluster.reviews) == 2  # the refusal is cached too


def test_cache_zero_reviews_every_request(api, cluster, settings):
    settings.IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS = 0
    token = robot_token()
    cluster.valid[token] = ROBOT
    for _ in range(3):
        assert get(api, token).status_code == 200
    assert len(cluster.reviews) == 3


# --- the impersonation exception is narrow --------------------------------------------------------------
def test_oidc_claims_can_never_claim_a_service_account(settings):
    settings.OIDC_USERNAME_CLAIM = "email"
    with pytest.raises(NotAuthenticated):
        identity_from_claims({"email": ROBOT, "groups": list(GROUPS)})
    person = identity_from_claims({"email": "alice@example.com", "groups": ["team-a", *GROUPS, "system:masters"]})
    assert person.groups == ("team-a",)
    assert person.service_account is False


def test_only_a_service_account_identity_is_sent_as_one_and_only_with_its_two_groups():
    forged = Identity(ROBOT, ("team-a",))  # not built by the TokenReview path
    with pytest.raises(Forbidden):
        kube.impersonation_user(forged)
    widened = Identity(ROBOT, ("system:masters", *GROUPS), service_account=True)
    assert kube.impersonation_groups(widened) == list(GROUPS)
    for bad in ("system:masters", "system:serviceaccount:kube-system", "system:serviceaccount:A:b", "alice"):
        with pytest.raises(Forbidden):
            kube.impersonation_user(Identity(bad, (), service_account=True))


def test_an_operation_record_keeps_the_robot_and_refuses_anything_else():
    robot = Identity(ROBOT, GROUPS, service_account=True)
    assert identity_from_record(robot.as_record()) == robot
    person = Identity("alice@example.com", ("team-a",))
    assert identity_from_record(person.as_record()).service_account is False
    with pytest.raises(NotAuthenticated):
        identity_from_record({"username": "system:masters", "groups": [], "serviceAccount": True})
    # A person's record naming a service account is still refused at the door.
    with pytest.raises(Forbidden):
        kube.impersonation_user(identity_from_record({"username": ROBOT, "groups": list(GROUPS)}))
