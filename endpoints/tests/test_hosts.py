"""Inference host claims (issue 17, finding 5): the host ``<endpoint>-<tenant>.<domain>`` is ambiguous,
so a host already used by another tenant's endpoint is refused. Kubernetes is faked here (the
module ``kube`` only); tests/endpoints/test_endpoint_hosts.py runs the same on the live platform,
parallel creates included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from endpoints import hosts
from inferencemgmt import kube
from inferencemgmt.errors import Conflict, Forbidden, NotFound, UpstreamError, UpstreamUnavailable

pytestmark = pytest.mark.unit


def test_every_other_endpoint_with_the_same_host_is_one_per_dash():
    assert hosts.same_host_endpoints("svc", "a-b") == [("b", "svc-a")]
    assert sorted(hosts.same_host_endpoints("svc-a", "b")) == [("a-b", "svc")]
    assert sorted(hosts.same_host_endpoints("my-svc", "t-1")) == [("1", "my-svc-t"), ("svc-t-1", "my")]
    assert hosts.same_host_endpoints("svc", "t") == []


class FakeCluster:
    """Leases in one namespace and the set of existing endpoints, as the platform's identity sees them."""

    def __init__(self, endpoints: set[tuple[str, str]] | None = None, *, forbidden: bool = False) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.endpoints = endpoints or set()
        self.forbidden = forbidden

    # kube.platform_*_lease (the management API's own identity)
    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.forbidden:
            raise Forbidden("K8s forbidden: Forbidden", code="kubernetes_forbidden")
        name = body["metadata"]["name"]
        if name in self.leases:
            raise Conflict(description=f"leases {name} already exists", code="kubernetes_conflict")
        self.leases[name] = {**body, "uid": uuid.uuid4().hex, "created": datetime.now(UTC)}
        return body

    def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.leases:
            raise NotFound(code="kubernetes_not_found")
        lease = self.leases[name]
        created = lease["created"].strftime("%Y-%m-%dT%H:%M:%SZ")  # as the API server writes it
        return {
            "spec": {"holderIdentity": lease["spec"]["holderIdentity"]},
            "metadata": {"uid": lease["uid"], "resourceVersion": "1", "creationTimestamp": created},
        }

    def delete_lease(self, namespace: str, name: str, *, preconditions: dict[str, str]) -> dict[str, Any]:
        if name not in self.leases:
            raise NotFound(code="kubernetes_not_found")
        if preconditions["uid"] != self.leases[name]["uid"]:
            raise Conflict(description="precondition failed", code="kubernetes_conflict")
        del self.leases[name]
        return {}

    def delete_leases(self, namespace: str, *, label_selector: str) -> dict[str, Any]:
        wanted = dict(part.split("=", 1) for part in label_selector.split(","))
        for name, lease in list(self.leases.items()):
            if all(lease["metadata"]["labels"].get(key) == value for key, value in wanted.items()):
                del self.leases[name]
        return {}

    # kube.platform_read_endpoint
    def read_endpoint(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.endpoints:
            raise NotFound(code="kubernetes_not_found")
        return {}

    def holders(self) -> dict[str, str]:
        return {name: lease["spec"]["holderIdentity"] for name, lease in self.leases.items()}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeCluster:
    settings.PLATFORM_DOMAIN = "imm.local"
    settings.IMM_SYSTEM_NAMESPACE = "imm-system"
    fake = FakeCluster()
    for verb in ("create_lease", "read_lease", "delete_lease", "delete_leases", "read_endpoint"):
        monkeypatch.setattr(kube, f"platform_{verb}", getattr(fake, verb))
    return fake


def test_the_first_endpoint_claims_the_host_and_the_other_tenant_gets_409(cluster):
    assert hosts.host_claim("b", "svc-a") is True
    cluster.endpoints.add(("b", "svc-a"))
    with pytest.raises(Conflict) as refused:
        hosts.host_claim("a-b", "svc")
    assert refused.value.code == "endpoint_host_taken"
    assert refused.value.status == 409
    assert "svc-a-b.imm.local" in str(refused.value.description)
    assert cluster.holders() == {"inference-host.svc-a-b": "b/svc-a"}


def test_a_young_claim_without_its_endpoint_yet_is_respected(cluster):
    # A create in flight: the claim is made, the endpoint not yet.
    hosts.host_claim("b", "svc-a")
    with pytest.raises(Conflict):
        hosts.host_claim("a-b", "svc")


def test_a_stale_claim_whose_endpoint_is_gone_is_taken_over(cluster):
    hosts.host_claim("b", "svc-a")
    lease = cluster.leases["inference-host.svc-a-b"]
    lease["created"] -= timedelta(seconds=hosts.CLAIM_GRACE_SECONDS + 1)
    assert hosts.host_claim("a-b", "svc") is True
    assert cluster.holders() == {"inference-host.svc-a-b": "a-b/svc"}


def test_an_endpoint_older_than_claims_still_holds_its_host(cluster):
    cluster.endpoints.add(("b", "svc-a"))  # made before claims existed: no lease
    with pytest.raises(Conflict):
        hosts.host_claim("a-b", "svc")
    assert cluster.leases == {}


def test_claiming_again_for_the_same_endpoint_is_not_a_clash(cluster):
    assert hosts.host_claim("b", "svc-a") is True
    assert hosts.host_claim("b", "svc-a") is False


def test_release_removes_only_the_endpoints_own_claim(cluster):
    hosts.host_claim("b", "svc-a")
    hosts.host_release("a-b", "svc")  # same host, not its claim
    assert cluster.holders() == {"inference-host.svc-a-b": "b/svc-a"}
    hosts.host_release("b", "svc-a")
    assert cluster.leases == {}
    hosts.host_release("b", "svc-a")  # nothing to release: no error


def test_deleting_a_tenant_releases_all_its_claims(cluster):
    for endpoint in ("one", "two"):
        hosts.host_claim("b", endpoint)
    hosts.host_claim("c", "one")
    hosts.tenant_hosts_release("b")
    assert cluster.holders() == {"inference-host.one-c": "c/one"}


def test_missing_rights_of_the_platform_identity_are_a_502_naming_kubernetes(cluster):
    cluster.forbidden = True
    with pytest.raises(UpstreamError) as failed:
        hosts.host_claim("b", "svc-a")
    assert failed.value.status == 502
    assert failed.value.code == "endpoint_host_claims_forbidden"


def test_a_tenant_deletion_goes_on_without_the_rights_but_is_retried_in_an_outage(cluster, monkeypatch):
    from endpoints import services

    hosts.host_claim("b", "one")

    def forbidden(namespace: str, *, label_selector: str) -> None:
        raise Forbidden("K8s forbidden: Forbidden", code="kubernetes_forbidden")

    monkeypatch.setattr(kube, "platform_delete_leases", forbidden)
    services.endpoint_hosts_release("b")  # logged, not raised: the stale claim is taken over later
    assert cluster.holders() == {"inference-host.one-b": "b/one"}

    def unreachable(namespace: str, *, label_selector: str) -> None:
        raise UpstreamUnavailable("kubernetes", "connection refused")

    monkeypatch.setattr(kube, "platform_delete_leases", unreachable)
    with pytest.raises(UpstreamUnavailable):
        services.endpoint_hosts_release("b")
