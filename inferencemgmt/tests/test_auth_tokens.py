"""Every way a token can be presented, right or wrong, and the exact 401 body each one gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from rest_framework.test import APIRequestFactory

from inferencemgmt.auth.authentication import OIDCTokenAuthentication, token_from_header
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotAuthenticated
from inferencemgmt.kube import impersonation_groups
from inferencemgmt.tests.conftest import API_CLIENT, ISSUER

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

INVALID = b'{"title": "Authentication required", "description": "Token not valid.", "code": "auth_token_invalid"}'
UNKNOWN_KEY = (
    b'{"title": "Authentication required", "description": "Token not valid.", "code": "auth_token_unknown_key"}'
)
EXPIRED = b'{"title": "Authentication required", "description": "Token expired", "code": "auth_token_expired"}'
MISSING = b'{"title": "Auth token required", "description": "Missing auth token", "code": "auth_token_missing"}'


def _segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _identity(authorization: str) -> Identity:
    result = OIDCTokenAuthentication().authenticate(APIRequestFactory().get("/tasks", HTTP_AUTHORIZATION=authorization))
    assert result is not None
    return result[0]


def _get(api, authorization: str | None):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    return api.get("/tasks", **headers)


def test_valid_token_with_bearer_scheme(api, issuer):
    response = _get(api, f"Bearer {issuer.mint()}")
    assert response.status_code == 200
    assert response.content == b'{"status": "OK", "data": {"tasks": []}}'


def test_valid_bare_token_as_the_original_clients_send_it(api, issuer):
    assert _get(api, issuer.mint()).status_code == 200


def test_token_for_the_api_client_is_accepted_too(api, issuer):
    assert _get(api, issuer.mint(aud=API_CLIENT)).status_code == 200


def test_es256_token_is_accepted(api, issuer):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    jwk.update(kid="ec-key", use="sig", alg="ES256")
    issuer.published.append(jwk)
    token = issuer.mint(key=ec_key, kid="ec-key", algorithm="ES256")
    assert _get(api, f"Bearer {token}").status_code == 200


def test_expired_token(api, issuer):
    response = _get(api, issuer.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))
    assert response.status_code == 401
    assert response.content == EXPIRED
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expiry_within_leeway_is_still_accepted(api, issuer, settings):
    settings.OIDC_LEEWAY_SECONDS = 30
    assert _get(api, issuer.mint(exp=int(time.time()) - 5)).status_code == 200


def test_token_not_yet_valid(api, issuer):
    response = _get(api, issuer.mint(nbf=int(time.time()) + 3600))
    assert (response.status_code, response.content) == (401, INVALID)


def test_wrong_issuer(api, issuer):
    response = _get(api, issuer.mint(iss="https://evil.test/dex"))
    assert (response.status_code, response.content) == (401, INVALID)


def test_wrong_audience(api, issuer):
    response = _get(api, issuer.mint(aud="someone-else"))
    assert (response.status_code, response.content) == (401, INVALID)


def test_token_without_expiry_is_refused(api, issuer):
    response = _get(api, issuer.mint(exp=None))
    assert (response.status_code, response.content) == (401, INVALID)


def test_alg_none_is_refused(api, issuer):
    token = f"{_segment({'alg': 'none', 'kid': issuer.kid, 'typ': 'JWT'})}.{_segment(issuer.claims())}."
    response = _get(api, token)
    assert (response.status_code, response.content) == (401, INVALID)


def test_hs256_signed_with_the_public_key_is_refused(api, issuer):
    """The classic key-confusion attack: the public key used as an HMAC secret."""
    signing_input = f"{_segment({'alg': 'HS256', 'kid': issuer.kid, 'typ': 'JWT'})}.{_segment(issuer.claims())}"
    signature = hmac.new(issuer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    response = _get(api, f"Bearer {token}")
    assert (response.status_code, response.content) == (401, INVALID)


def test_signature_by_another_key_with_a_known_kid_is_refused(api, issuer):
    from cryptography.hazmat.primitives.asymmetric import rsa

    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = _get(api, issuer.mint(key=impostor))
    assert (response.status_code, response.content) == (401, INVALID)


def test_unknown_kid_refreshes_the_keys_once_then_401(api, issuer):
    assert _get(api, issuer.mint()).status_code == 200
    assert issuer.jwks_fetches == 1
    response = _get(api, issuer.mint(kid="not-published"))
    assert (response.status_code, response.content) == (401, UNKNOWN_KEY)
    # The first fetch was just now: within the rate limit, so no refresh yet.
    assert issuer.jwks_fetches == 1


def test_unknown_kid_refresh_is_rate_limited(api, issuer, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 0.0
    assert _get(api, issuer.mint()).status_code == 200
    assert _get(api, issuer.mint(kid="not-published")).status_code == 401
    assert issuer.jwks_fetches == 2  # exactly one refresh for the unknown kid
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 60.0
    assert _get(api, issuer.mint()).status_code == 200  # new provider object: fetches once more
    fetches = issuer.jwks_fetches
    for _ in range(5):
        assert _get(api, issuer.mint(kid="still-unknown")).status_code == 401
    assert issuer.jwks_fetches == fetches  # a flood of forged kids costs the provider nothing


def test_rotated_key_is_picked_up_by_the_refresh(api, issuer, settings):
    from cryptography.hazmat.primitives.asymmetric import rsa

    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 0.0
    assert _get(api, issuer.mint()).status_code == 200
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.published.append(issuer.jwk(new_key, "rotated"))
    assert _get(api, issuer.mint(key=new_key, kid="rotated")).status_code == 200


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "Bearer not.a.jwt", "eyJhbGciOiJSUzI1NiJ9..."])
def test_garbage(api, issuer, garbage):
    response = _get(api, garbage)
    assert (response.status_code, response.content) == (401, INVALID)


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer   "])
def test_no_token(api, issuer, authorization):
    response = _get(api, authorization)
    assert (response.status_code, response.content) == (401, MISSING)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_groups_claim_means_no_groups(issuer):
    identity = _identity(f"Bearer {issuer.mint(groups=None)}")
    assert identity == Identity(username="alice@example.com", groups=(), is_admin=False)


def test_no_groups_claim_still_reaches_the_api(api, issuer):
    assert _get(api, issuer.mint(groups=None)).status_code == 200


def test_admin_group_makes_an_admin(issuer, settings):
    settings.IMM_ADMIN_GROUP = "platform-admins"
    identity = _identity(issuer.mint(groups=["platform-admins"]))
    assert identity.is_admin


def test_token_without_username_claim_is_refused(issuer):
    with pytest.raises(NotAuthenticated):
        _identity(issuer.mint(email=None))


def test_system_groups_are_never_impersonated(issuer):
    identity = _identity(issuer.mint(groups=["team-a", "system:masters"]))
    assert impersonation_groups(identity) == ["team-a"]


def test_groups_kubernetes_would_read_differently_are_dropped_from_the_identity(issuer, settings):
    """Finding 3 of issue 17: `" system:masters"` passed the prefix check and the API server trims it."""
    settings.IMM_ADMIN_GROUP = "admin"
    claimed = ["team-a", " system:masters", "System:masters", "\uff53ystem:masters", " admin", "admin\u200b"]
    claimed.append("Domain Users")
    identity = _identity(issuer.mint(groups=claimed))
    assert identity.groups == ("team-a", "Domain Users")
    assert not identity.is_admin


@pytest.mark.parametrize(
    "username", [" alice@example.com", "system:admin", "SYSTEM:admin", "alice\t@example.com", "\uff41lice@example.com"]
)
def test_a_token_whose_user_name_is_not_a_plain_identity_is_401(api, issuer, username):
    response = _get(api, issuer.mint(email=username))
    assert response.status_code == 401
    assert response.json() == {
        "title": "Authentication required",
        "description": "Token not valid.",
        "code": "auth_token_bad_username",
    }


def test_plain_identities_from_the_claims_the_platform_reads_are_accepted(issuer):
    for username in ("alice@example.com", "j\u00f6rg.m\u00fcller@example.de", "CiQwOGE4Njg0Yi1kYjg4", "oidc:alice"):
        assert _identity(issuer.mint(email=username)).username == username


def test_a_stored_session_or_record_cannot_carry_a_hostile_group():
    from inferencemgmt.auth.identity import SESSION_KEY, identity_from_record, identity_from_session

    hostile = {"username": "alice@example.com", "groups": ["team-a", " system:masters"]}
    assert identity_from_record(hostile).groups == ("team-a",)
    session_identity = identity_from_session({SESSION_KEY: hostile})
    assert session_identity is not None
    assert session_identity.groups == ("team-a",)
    assert identity_from_session({SESSION_KEY: {"username": " system:admin", "groups": []}}) is None


def test_token_is_not_kept_in_the_identity_when_impersonating(issuer):
    identity = _identity(issuer.mint())
    assert identity.token is None
    assert "eyJ" not in repr(identity)


def test_header_forms():
    assert token_from_header("Bearer abc") == "abc"
    assert token_from_header("bearer  abc ") == "abc"
    assert token_from_header("abc") == "abc"


def test_unreachable_identity_provider_is_503_naming_it(api, settings):
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_AUDIENCES = [API_CLIENT]
    header = _segment({"alg": "RS256", "kid": "some-key"})
    with responses.RequestsMock() as mock:
        mock.get(f"{ISSUER}/.well-known/openid-configuration", body=requests.ConnectionError("refused"))
        response = _get(api, f"Bearer {header}.{_segment({'sub': 'x'})}.c2ln")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "identity_provider_unavailable"
    assert body["title"] == "Identity provider is unavailable"
    assert response["Retry-After"] == "5"
