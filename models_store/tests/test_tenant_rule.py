"""One rule for a tenant in the path (issue 24, item 3): an unknown tenant is 404 ``Tenant <name> does
not exist`` for everyone signed in; an existing tenant that is not the caller's is 403.

Kubernetes and the object store are faked at their chokepoints (``kube.platform_read_namespace`` and the access review;
the store's clients fail the test if reached). Requests carry what the original clients send: the
bash CLI's curl headers, or ``requests`` with ``json=`` (upload protocol) and raw bytes (parts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from inferencemgmt import kube, objectstore
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound
from inferencemgmt.tests.conftest import ORIGINAL_CLI_CURL_HEADERS, REQUESTS_DEFAULT_HEADERS, TestIssuer, on_the_wire
from models_store import access
from tenants import manifests

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

TENANTS = {"team-a-tenant": ["team-a"]}  # the one existing tenant and its scope groups
MODEL = {"modelName": "resnet", "modelVersion": 1}
FILE = {**MODEL, "fileName": "saved_model.pb", "key": None}  # model_upload.py sends "key": null
PART = "upload?partNumber=1&uploadId=u-1&modelName=resnet&modelVersion=1&fileName=saved_model.pb"
MD5 = "0123456789abcdef0123456789abcdef"
# Every model and upload route: (method, path after /tenants/<t>/, body; bytes for the raw part).
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "models", None),
    ("GET", "models?view=grouped", None),
    ("DELETE", "models", MODEL),
    ("POST", "models/extract", {**MODEL, "archive": "m.tar.gz"}),
    ("POST", "models/import", {**MODEL, "source": "https://192.0.2.10/m.bin"}),
    ("POST", "upload/start", FILE),
    ("PUT", PART, b"\x00\x01raw part bytes, not JSON"),
    ("POST", "upload/done", {**FILE, "uploadId": "u-1", "parts": [{"ETag": f'"{MD5}"', "PartNumber": 1}]}),
    ("POST", "upload/abort", {**FILE, "uploadId": "u-1"}),
    ("POST", "upload/dir", {**MODEL, "key": "assets"}),
    ("POST", "uploads", {**MODEL, "path": "m.bin", "size": 10}),
    ("GET", "uploads/u-1", None),
    ("DELETE", "uploads/u-1", None),
    ("POST", "uploads/u-1/complete", {"parts": [{"partNumber": 1, "md5": MD5}]}),
]
USERS = {"alice": ["team-a"], "bob": ["team-b"], "dave": [], "admin": ["admin"]}


class FakeCluster:
    """The two questions the rule asks Kubernetes: is this a tenant, and may this user act in it."""

    def __init__(self) -> None:
        self.reviews: list[tuple[str, str]] = []

    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        if name not in TENANTS:
            raise NotFound(description=f'namespaces "{name}" not found', code="kubernetes_not_found")
        annotations = {manifests.SCOPE_ANNOTATION: json.dumps(TENANTS[name])}
        labels = {"created_by": settings.PLATFORM_ADMIN_LABEL}
        return {"metadata": {"name": name, "labels": labels, "annotations": annotations}}

    def create_self_subject_access_review(self, identity: Identity, body: dict[str, Any]) -> dict[str, Any]:
        """kube.py's typed review, answered as Kubernetes RBAC would for the tenant's scope groups."""
        namespace = body["spec"]["resourceAttributes"]["namespace"]
        self.reviews.append((identity.username, namespace))
        allowed = identity.is_admin or bool(set(identity.groups) & set(TENANTS.get(namespace, [])))
        return {"status": {"allowed": allowed}}


def _store_reached(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the object store was reached before the tenant rule answered")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeCluster:
    settings.IMM_MODEL_ACCESS_CACHE_SECONDS = 0
    access.access_cache_clear()
    fake = FakeCluster()
    monkeypatch.setattr(kube, "platform_read_namespace", fake.platform_read_namespace)
    monkeypatch.setattr(kube, "create_self_subject_access_review", fake.create_self_subject_access_review)
    for chokepoint in ("client", "_presigner", "_streaming_pool"):
        monkeypatch.setattr(objectstore, chokepoint, _store_reached)
    return fake


def send(issuer: TestIssuer, user: str, method: str, path: str, body: Any) -> Any:
    """As the original clients send it: the bare token; curl's headers for the documented JSON
    routes, ``requests`` for the upload protocol (``json=`` bodies, raw bytes without a Content-Type)."""
    token = issuer.mint(email=f"{user}@example.com", groups=USERS[user])
    if isinstance(body, bytes):
        return on_the_wire(method, path, {**REQUESTS_DEFAULT_HEADERS, "Authorization": token}, body)
    if "/upload" in path:
        headers = {**REQUESTS_DEFAULT_HEADERS, "Content-Type": "application/json", "Authorization": token}
    else:
        headers = {**ORIGINAL_CLI_CURL_HEADERS, "Authorization": token}
    return on_the_wire(method, path, headers, b"" if body is None else json.dumps(body).encode())


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
@pytest.mark.parametrize("user", ["alice", "bob", "dave", "admin"])
def test_an_unknown_tenant_is_404_for_everyone(issuer, cluster, user, method, route, body):
    """The original's test: ``POST /tenants/saturn-tenant/upload/start`` as a user of another group
    (was 403 here, while the endpoint routes said 404)."""
    response = send(issuer, user, method, f"/tenants/saturn-tenant/{route}", body)
    assert response.status_code == 404, response.content
    assert response.json() == {
        "title": "404 Not Found",
        "description": "Tenant saturn-tenant does not exist",
        "code": "tenant_not_found",
    }
    assert cluster.reviews == []  # decided before the caller's rights were asked


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
@pytest.mark.parametrize("user", ["bob", "dave"])
def test_an_existing_tenant_not_theirs_is_403(issuer, cluster, user, method, route, body):
    response = send(issuer, user, method, f"/tenants/team-a-tenant/{route}", body)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "tenant_forbidden"
    assert cluster.reviews == [(f"{user}@example.com", "team-a-tenant")]


@pytest.mark.parametrize("user", ["alice", "bob", "admin"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tenants/saturn-tenant"),
        ("GET", "/tenants/saturn-tenant/endpoints"),
        ("GET", "/tenants/saturn-tenant/endpoints/resnet"),
        ("DELETE", "/tenants/saturn-tenant/endpoints/resnet"),
    ],
)
def test_tenant_and_endpoint_routes_follow_the_same_rule(issuer, cluster, user, method, path):
    response = send(issuer, user, method, path, None)
    assert (response.status_code, response.json()["description"]) == (404, "Tenant saturn-tenant does not exist")


def test_a_member_passes_the_rule_and_the_raw_part_reaches_the_store_untouched(issuer, cluster, monkeypatch):
    """A part sent as ``requests.put(url, data=bytes)`` (no Content-Type) is streamed, never parsed as JSON."""
    received: dict[str, Any] = {}

    def part_stream(bucket: str, key: str, upload_id: str, number: int, body: Any, length: int) -> str:
        received.update(bucket=bucket, key=key, upload_id=upload_id, number=number, data=body.read(length))
        return f'"{MD5}"'

    monkeypatch.setattr(objectstore, "multipart_part_stream", part_stream)
    method, route, raw = next(r for r in ROUTES if r[0] == "PUT")
    response = send(issuer, "alice", method, f"/tenants/team-a-tenant/{route}", raw)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "OK", "data": {"ETag": f'"{MD5}"', "op": "upload_part"}}
    assert received == {
        "bucket": "team-a-tenant",
        "key": "resnet/1/saved_model.pb",
        "upload_id": "u-1",
        "number": 1,
        "data": raw,
    }
    assert cluster.reviews == [("alice@example.com", "team-a-tenant")]
