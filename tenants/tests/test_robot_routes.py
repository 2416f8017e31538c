"""The robot routes with the Kubernetes chokepoint faked: validation before any call, the one error
shape, 409 on duplicates, 404 for unknown robots, the token lifetime bounds, and the schema.
RBAC itself (who may) is proven live in tests/tenants/test_robots.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, NotFound
from inferencemgmt.tests.kube_fakes import ROBOT_FUNCTIONS
from tenants import manifests

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

TENANT = "robots-u1"


class FakeCluster:
    """Service accounts and role bindings of one tenant namespace; records every write and who made it."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.bindings: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.token_requests: list[dict[str, Any]] = []

    # kube.platform_read_namespace, as the management API's own identity
    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        if name != TENANT:
            raise NotFound(description=f'namespaces "{name}" not found', code="kubernetes_not_found")
        labels = {"created_by": django_settings.PLATFORM_ADMIN_LABEL}
        return {"metadata": {"name": name, "labels": labels, "annotations": {}}}

    # kube.py's typed functions, as the caller; answers are the API server's JSON
    def _account(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        return {
            "metadata": {
                "name": meta["name"],
                "uid": f"uid-{meta['name']}",
                "labels": meta.get("labels"),
                "annotations": meta.get("annotations"),
                "creationTimestamp": "2026-12-06T00:00:00Z",
            }
        }

    def create_service_account(self, identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create serviceaccount", body["metadata"]["name"]))
        if body["metadata"]["name"] in self.accounts:
            raise Conflict(description="serviceaccounts already exists", code="kubernetes_conflict")
        self.accounts[body["metadata"]["name"]] = body
        return self._account(body)

    def read_service_account(self, identity: Identity, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.accounts:
            raise NotFound(description="not found", code="kubernetes_not_found")
        return self._account(self.accounts[name])

    def service_accounts(
        self,
        identity: Identity,
        namespace: str,
        *,
        label_selector: str = "",
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """Kubernetes' chunking, by name: ``continue`` is the next name here (opaque to the API)."""
        names = sorted(self.accounts)
        if continue_token is not None:
            names = [name for name in names if name >= continue_token]
        following = names[limit] if limit is not None and len(names) > limit else None
        names = names[:limit] if limit is not None else names
        self.calls.append(("list serviceaccounts", str(limit)))
        return {
            "items": [self._account(self.accounts[name]) for name in names],
            "metadata": {"continue": following} if following else {},
        }

    def delete_service_account(self, identity: Identity, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("delete serviceaccount", name))
        self.accounts.pop(name)
        return {}

    def create_service_account_token(
        self, identity: Identity, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self.token_requests.append(body)
        return {"status": {"token": "header.payload.signature", "expirationTimestamp": "2026-12-06T12:00:00Z"}}

    def create_role_binding(self, identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create rolebinding", body["metadata"]["name"]))
        self.bindings[body["metadata"]["name"]] = body
        return body

    def delete_role_binding(self, identity: Identity, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("delete rolebinding", name))
        self.bindings.pop(name)
        return {}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, issuer: Any) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(kube, "platform_read_namespace", fake.platform_read_namespace)
    for typed in ROBOT_FUNCTIONS:
        monkeypatch.setattr(kube, typed, getattr(fake, typed))
    return fake


def call(api: Any, issuer: Any, method: str, path: str, body: Any = None) -> Any:
    token = issuer.mint(email="alice@example.com", groups=["team-a"])
    data = None if body is None else json.dumps(body)
    return getattr(api, method)(path, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_create_makes_the_account_then_its_binding_as_the_caller(api, issuer, cluster):
    created = call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "ci", "description": "CI pipeline"})
    assert created.status_code == 200, created.content
    assert created.json() == {
        "status": "CREATED",
        "data": {
            "name": "ci",
            "description": "CI pipeline",
            "role": "tenant",
            "username": f"system:serviceaccount:{TENANT}:ci",
            "createdBy": "alice@example.com",
            "createdAt": "2026-12-06T00:00:00+00:00",
        },
    }
    assert cluster.calls == [("create serviceaccount", "ci"), ("create rolebinding", "imm-robot-ci")]
    binding = cluster.bindings["imm-robot-ci"]
    assert binding["roleRef"]["name"] == TENANT  # the tenant's own Role by default
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ci", "namespace": TENANT}]
    assert binding["metadata"]["ownerReferences"][0]["uid"] == "uid-ci"
    assert cluster.accounts["ci"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("role", "bound"), [("deployer", "imm-robot-deployer"), ("reader", "imm-robot-reader")])
def test_narrower_roles_bind_the_robot_roles(api, issuer, cluster, role, bound):
    body = {"name": "narrow", "description": "", "role": role}
    assert call(api, issuer, "post", f"/tenants/{TENANT}/robots", body).status_code == 200
    assert cluster.bindings["imm-robot-narrow"]["roleRef"]["name"] == bound


def test_duplicates_are_409_and_change_nothing(api, issuer, cluster):
    body = {"name": "twice", "description": "first"}
    assert call(api, issuer, "post", f"/tenants/{TENANT}/robots", body).status_code == 200
    again = call(api, issuer, "post", f"/tenants/{TENANT}/robots", {**body, "description": "second"})
    assert again.status_code == 409
    assert again.json() == {"title": "Robot twice already exists", "code": "robot_exists"}
    assert cluster.accounts["twice"]["metadata"]["annotations"][manifests.DESCRIPTION_ANNOTATION] == "first"


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"description": "x"}, "name: 'name' is a required property"),
        ({"name": "CI", "description": "x"}, "name: 'CI' does not match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
        ({"name": "-ci", "description": "x"}, "name: '-ci' does not match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
        ({"name": "a" * 64, "description": "x"}, f"name: '{'a' * 64}' is too long"),
        ({"name": "ci"}, "description: 'description' is a required property"),
        ({"name": "ci", "description": "x" * 257}, f"description: '{'x' * 257}' is too long"),
        (
            {"name": "ci", "description": "a\nb"},
            "description: must hold printable characters only (no control characters)",
        ),
        ({"name": "ci", "description": "x", "role": "admin"}, 'role: "admin" is not a valid choice.'),
        ({"name": 5, "description": "x"}, "name: 5 is not of type 'string'"),
    ],
)
def test_bad_bodies_are_400_before_any_kubernetes_write(api, issuer, cluster, body, description):
    answer = call(api, issuer, "post", f"/tenants/{TENANT}/robots", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["description"] == description
    assert set(answer.json()) == {"title", "description", "code"}
    assert cluster.calls == []


def test_unknown_tenant_and_robot_are_404(api, issuer, cluster):
    assert call(api, issuer, "get", "/tenants/nosuch-tenant/robots").json()["code"] == "tenant_not_found"
    for method, path, body in (
        ("get", f"/tenants/{TENANT}/robots/ghost", None),
        ("delete", f"/tenants/{TENANT}/robots/ghost", None),
        ("post", f"/tenants/{TENANT}/robots/ghost/tokens", {"expiresIn": 600}),
        ("get", f"/tenants/{TENANT}/robots/Not_A_Name", None),
    ):
        answer = call(api, issuer, method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (404, "robot_not_found"), (method, path)
    assert cluster.calls == []


def test_the_default_service_account_is_not_a_robot(api, issuer, cluster):
    cluster.accounts["default"] = {"metadata": {"name": "default", "labels": {}, "annotations": {}}}
    assert call(api, issuer, "get", f"/tenants/{TENANT}/robots/default").status_code == 404
    assert call(api, issuer, "post", f"/tenants/{TENANT}/robots/default/tokens", {}).status_code == 404
    assert cluster.token_requests == []


def test_tokens_are_bounded_bound_to_our_audience_and_not_cached(api, issuer, cluster, settings):
    settings.IMM_ROBOT_TOKEN_MAX_SECONDS = 7200
    call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "ci", "description": ""})
    path = f"/tenants/{TENANT}/robots/ci/tokens"
    for lifetime, text in (
        (599, "599 is less than the minimum of 600"),
        (7201, "7201 is greater than the maximum of 7200"),
        ("1h", "'1h' is not of type 'integer'"),
    ):
        refused = call(api, issuer, "post", path, {"expiresIn": lifetime})
        assert (refused.status_code, refused.json()["description"]) == (400, f"expiresIn: {text}")
    assert cluster.token_requests == []
    given = call(api, issuer, "post", path, {"expiresIn": 600})
    assert given.status_code == 200
    assert given["Cache-Control"] == "no-store"
    assert given.json()["data"] == {
        "name": "ci",
        "token": "header.payload.signature",
        "expiresAt": "2026-12-06T12:00:00+00:00",
        "audience": settings.IMM_ROBOT_TOKEN_AUDIENCE,
    }
    default = call(api, issuer, "post", path)  # no body: the longest lifetime allowed
    assert default.status_code == 200
    assert [r["spec"] for r in cluster.token_requests] == [
        {"audiences": [settings.IMM_ROBOT_TOKEN_AUDIENCE], "expirationSeconds": 600},
        {"audiences": [settings.IMM_ROBOT_TOKEN_AUDIENCE], "expirationSeconds": 7200},
    ]


def test_list_and_delete(api, issuer, cluster):
    for name in ("b-robot", "a-robot"):
        call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": name, "description": name})
    listed = call(api, issuer, "get", f"/tenants/{TENANT}/robots").json()["data"]["robots"]
    assert [robot["name"] for robot in listed] == ["a-robot", "b-robot"]
    gone = call(api, issuer, "delete", f"/tenants/{TENANT}/robots/a-robot")
    assert gone.json() == {"status": "DELETED", "data": {"name": "a-robot"}}
    assert cluster.calls[-2:] == [("delete rolebinding", "imm-robot-a-robot"), ("delete serviceaccount", "a-robot")]
    assert list(cluster.accounts) == ["b-robot"]


def test_robot_roles_are_subsets_of_the_tenant_role_and_reader_writes_nothing():
    tenant_rules = manifests.role(TENANT)["rules"]
    granted = {
        (g, r, v) for rule in tenant_rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    deployer, reader = manifests.robot_roles(TENANT)
    for role in (deployer, reader):
        rules = {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }
        assert rules <= granted, role["metadata"]["name"]  # a member may bind it without `bind`
    reader_verbs = {v for rule in reader["rules"] for v in rule["verbs"]}
    assert reader_verbs == {"get", "list", "watch"}
    deployer_resources = {r for rule in deployer["rules"] for r in rule["resources"]}
    assert not deployer_resources & {"serviceaccounts", "serviceaccounts/token", "rolebindings"}


def test_the_routes_are_in_the_schema():
    schema = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/json").content)
    robots = {path: sorted(ops) for path, ops in schema["paths"].items() if "/robots" in path}
    assert robots == {
        "/tenants/{tenant}/robots": ["get", "post"],
        "/tenants/{tenant}/robots/{name}": ["delete", "get"],
        "/tenants/{tenant}/robots/{name}/tokens": ["post"],
    }
    assert "robotToken" in schema["components"]["securitySchemes"]


def test_the_robot_list_pages(api, issuer, cluster):
    """The paging contract (docs/api-conventions.md "Lists and paging") on a faked cluster: the live
    contract is tests/foundation/test_paging_contract.py."""
    for name in ("r-a", "r-b", "r-c"):
        call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": name, "description": name})
    first = call(api, issuer, "get", f"/tenants/{TENANT}/robots?limit=2").json()
    assert [robot["name"] for robot in first["data"]["robots"]] == ["r-a", "r-b"]
    assert ("list serviceaccounts", "2") in cluster.calls
    token = first["continue"]
    last = call(api, issuer, "get", f"/tenants/{TENANT}/robots?limit=2&continue={token}").json()
    assert [robot["name"] for robot in last["data"]["robots"]] == ["r-c"]
    assert "continue" not in last
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    tampered = call(api, issuer, "get", f"/tenants/{TENANT}/robots?continue={altered}")
    assert tampered.status_code == 400
    assert tampered.json()["code"] == "invalid_continue"
    for bad in ("0", "501", "x"):
        refused = call(api, issuer, "get", f"/tenants/{TENANT}/robots?limit={bad}")
        assert refused.status_code == 400
        assert refused.json()["code"] == "validation_failed"
