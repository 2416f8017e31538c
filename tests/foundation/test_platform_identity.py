"""Real tokens from the platform's identity provider, and who Kubernetes thinks the caller is."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory

from inferencemgmt import kube
from inferencemgmt.auth.authentication import OIDCTokenAuthentication
from inferencemgmt.auth.identity import Identity, identity_from_claims
from inferencemgmt.auth.oidc import provider

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _identity(token: str) -> Identity:
    result = OIDCTokenAuthentication().authenticate(APIRequestFactory().get("/tasks", HTTP_AUTHORIZATION=token))
    assert result is not None
    return result[0]


def test_real_token_in_both_header_forms(api, platform_settings, user_token):
    token = user_token("alice")
    for authorization in (f"Bearer {token}", token):
        response = api.get("/tasks", HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 200, response.content
        assert response.content == b'{"status": "OK", "data": {"tasks": []}}'


def test_tampered_real_token_is_401(api, platform_settings, user_token):
    header, payload, signature = user_token("alice").split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = api.get("/tasks", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401
    assert response.json()["description"] == "Token not valid."


def test_alice_reaches_kubernetes_as_herself(platform_settings, user_token):
    identity = _identity(user_token("alice"))
    assert identity == Identity("alice@example.com", ("team-a",), is_admin=False)
    username, groups = kube.self_subject_review(identity)
    assert username == "alice@example.com"
    assert "team-a" in groups
    assert "admin" not in groups


def test_admin_is_platform_admin_and_reaches_kubernetes_in_the_admin_group(platform_settings, user_token):
    identity = _identity(user_token("admin"))
    assert identity.is_admin
    username, groups = kube.self_subject_review(identity)
    assert (username, "admin" in groups) == ("admin@example.com", True)


def test_user_without_groups_is_authenticated_with_no_groups(platform_settings, user_token):
    identity = _identity(user_token("dave"))
    assert identity.groups == ()
    username, groups = kube.self_subject_review(identity)
    assert username == "dave@example.com"
    assert [g for g in groups if not g.startswith("system:")] == []


def test_claimed_system_masters_is_not_passed_on(platform_settings, user_token):
    claims = provider().verify(user_token("alice"))
    claims["groups"] = ["team-a", "system:masters"]  # as if the provider had been tricked into it
    username, groups = kube.self_subject_review(identity_from_claims(claims))
    assert username == "alice@example.com"
    assert "system:masters" not in groups
    assert "team-a" in groups


def test_the_api_server_trims_impersonated_group_names(devstack_env):
    """Why issue 17's finding 3 was a hole: a raw ``Impersonate-Group: " system:masters"`` IS system:masters."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(devstack_env["IMM_KUBECONFIG"])
    api_client.set_default_header("Impersonate-User", "mallory@example.com")
    api_client.set_default_header("Impersonate-Group", " system:masters")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(body=body)
    assert "system:masters" in (review.status.user_info.groups or [])


def test_no_spelling_of_system_masters_in_a_real_token_reaches_the_api_server(platform_settings, user_token):
    """Issue 17, finding 3: the platform's own path drops every such group before it is sent."""
    claims = provider().verify(user_token("alice"))
    # As if the directory held such groups (LDAP group names may carry spaces) or the provider were tricked.
    claims["groups"] = ["team-a", " system:masters", "system:masters\t", "System:masters", "\uff53ystem:masters"]
    identity = identity_from_claims(claims)
    assert identity.groups == ("team-a",)
    username, groups = kube.self_subject_review(identity)
    assert username == "alice@example.com"
    assert "team-a" in groups
    assert not [group for group in groups if "masters" in group.casefold()]
    assert not kube.access_allowed(identity, verb="list", resource="secrets", namespace="kube-system")
    # Even an Identity made by hand (no token, no filter on the way in) is checked at the door.
    mallory = Identity("mallory@example.com", (" system:masters",))
    assert not kube.access_allowed(mallory, verb="list", resource="secrets", namespace="kube-system")


def test_non_ascii_names_reach_the_api_server_as_asserted(platform_settings):
    """Names go out as UTF-8: Python's HTTP client would have sent Latin-1 (another name) or failed."""
    identity = Identity("j\u00f6rg@example.com", ("\u00c9quipe IA", "\u30c1\u30fc\u30e0"))
    username, groups = kube.self_subject_review(identity)
    assert username == "j\u00f6rg@example.com"
    assert {"\u00c9quipe IA", "\u30c1\u30fc\u30e0"} <= set(groups)


def test_passthrough_mode_sends_the_users_own_token(platform_settings, user_token):
    platform_settings.IMM_KUBE_AUTH_MODE = "passthrough"
    identity = _identity(user_token("carol"))
    assert identity.token is not None
    username, groups = kube.self_subject_review(identity)
    assert username == "carol@example.com"
    assert {"team-a", "team-b"} <= set(groups)


def test_refresh_token_is_exchanged_with_the_server_side_secret(api, platform_settings, devstack_env):
    import requests

    issued = requests.post(
        f"{devstack_env['OIDC_ISSUER']}/token",
        data={
            "grant_type": "password",
            "username": "bob",
            "password": "bob-password",
            "scope": "openid email groups offline_access",
        },
        auth=(devstack_env["OIDC_API_CLIENT_ID"], devstack_env["OIDC_API_CLIENT_SECRET"]),
        verify=devstack_env["OIDC_CA_FILE"],
        timeout=30,
    )
    assert issued.status_code == 200, issued.text
    response = api.post(
        "/authenticate/token?offline=True", {"refresh_token": issued.json()["refresh_token"]}, format="json"
    )
    assert response.status_code == 200, response.content
    token = response.json()["data"]["token"]
    assert {"id_token", "refresh_token", "expires_at"} <= set(token)
    assert _identity(token["id_token"]).username == "bob@example.com"


def test_authenticate_redirects_to_the_real_provider(api, platform_settings):
    response = api.get("/authenticate?offline=True")
    assert response.status_code == 308
    assert response["Location"].startswith(f"{platform_settings.OIDC_ISSUER}/auth?")
    assert "redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob" in response["Location"]


def test_access_review_answers_as_the_user(platform_settings, user_token):
    admin = _identity(user_token("admin"))
    alice = _identity(user_token("alice"))
    assert kube.access_allowed(admin, verb="create", resource="namespaces")
    assert not kube.access_allowed(alice, verb="create", resource="namespaces")
    assert not kube.access_allowed(alice, verb="list", resource="secrets", namespace="kube-system")
    mallory = Identity("mallory@example.com", ("system:masters",))
    assert not kube.access_allowed(mallory, verb="list", resource="secrets", namespace="kube-system")
