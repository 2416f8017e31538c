"""The count-refusal check of endpoint creates (docs/endpoint-quota.md) against a fake API server.

Only ``inferencemgmt.kube`` is faked: ``FakeCluster`` behaves as the API server's quota admission
does (charge at admission, no refund when the store refuses, conditional status writes), so the
paths a live cluster shows only by chance are exercised here every time: a correction that meets a
new charge, one that is never allowed, an endpoint stored during the settle time. The same design
against the real API server: tests/endpoints/test_endpoint_quota.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from endpoints import services
from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, Forbidden, ImmError, NotFound, UpstreamUnavailable
from tenants.manifests import ENDPOINT_COUNT_KEY

pytestmark = pytest.mark.unit

TENANT = "acme"
ALICE = Identity("alice@example.com", ("team-a",))


class FakeCluster:
    """One namespace: a ResourceQuota on the endpoint count and the endpoints stored."""

    def __init__(self, hard: str, stored: list[str], used: str | None = None) -> None:
        self.hard = hard
        self.stored = set(stored)
        self.used = used if used is not None else str(len(stored))
        self.resource_version = 1
        self.status_writes: list[str] = []
        self.status_forbidden = False
        self.conflicts_left = 0  # status writes answered 409 as if a charge had just landed
        self.on_sleep: Callable[[], None] = lambda: None

    def _value(self, text: str) -> int:
        return int(text[:-1]) * 1000 if text.endswith("k") else int(text)

    # kube.create_endpoint, as the caller
    def create_endpoint(self, identity: Identity, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        used, hard = self._value(self.used), self._value(self.hard)
        if used + 1 > hard:
            key = ENDPOINT_COUNT_KEY
            raise Forbidden(
                description=f"exceeded quota: {ns}, requested: {key}=1, used: {key}={used}, limited: {key}={hard}"
            )
        self.used, self.resource_version = str(used + 1), self.resource_version + 1  # charged, never refunded
        if name in self.stored:
            raise Conflict(description=f'inference-endpoints.ai.intel.com "{name}" already exists')
        self.stored.add(name)
        return body

    # kube.platform_replace_resource_quota_status, as the management API's own identity
    def platform_replace_resource_quota_status(self, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.status_forbidden:
            raise Forbidden(description="cannot update resource resourcequotas/status")
        assert body["kind"] == "ResourceQuota"
        assert body["apiVersion"] == "v1"
        if self.conflicts_left:
            self.conflicts_left -= 1
            self.resource_version += 1
            raise Conflict(description="the object has been modified")
        if body["metadata"]["resourceVersion"] != str(self.resource_version):
            raise Conflict(description="the object has been modified")
        self.used = body["status"]["used"][ENDPOINT_COUNT_KEY]
        self.resource_version += 1
        self.status_writes.append(self.used)
        return body

    # reads as the caller, as the API server's JSON
    def resource_quotas(self, identity: Identity, namespace: str) -> dict[str, Any]:
        quota = {
            "metadata": {"name": TENANT, "namespace": TENANT, "resourceVersion": str(self.resource_version)},
            "spec": {"hard": {ENDPOINT_COUNT_KEY: self.hard}},
            "status": {"hard": {ENDPOINT_COUNT_KEY: self.hard}, "used": {ENDPOINT_COUNT_KEY: self.used}},
        }
        return {"items": [quota]}

    def read_endpoint(self, identity: Identity, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.stored:
            raise NotFound(description=f'inference-endpoints.ai.intel.com "{name}" not found')
        return {"metadata": {"name": name}}

    def endpoints(
        self, identity: Identity, namespace: str, *, limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        return {"items": [{"metadata": {"name": name}} for name in sorted(self.stored)], "metadata": {}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    found = FakeCluster(hard="3", stored=["a"])
    monkeypatch.setattr(kube, "create_endpoint", found.create_endpoint)
    monkeypatch.setattr(kube, "platform_replace_resource_quota_status", found.platform_replace_resource_quota_status)
    for typed in ("resource_quotas", "read_endpoint", "endpoints"):
        monkeypatch.setattr(kube, typed, getattr(found, typed))
    monkeypatch.setattr(time, "sleep", lambda seconds: found.on_sleep())
    return found


def create(name: str) -> None:
    body = {"metadata": {"name": name, "namespace": TENANT}}
    services._create(ALICE, TENANT, body)


def refusal(name: str) -> ImmError:
    with pytest.raises(ImmError) as refused:
        create(name)
    return refused.value


def test_a_create_with_room_is_sent_once_and_nothing_is_corrected(cluster: FakeCluster) -> None:
    create("b")
    assert cluster.stored == {"a", "b"}
    assert cluster.status_writes == []


def test_leaked_charges_are_corrected_and_the_create_goes_through(cluster: FakeCluster) -> None:
    cluster.used = "3"  # two refused creates were charged: 1 endpoint, 3 of 3 used
    create("b")
    assert cluster.stored == {"a", "b"}
    assert cluster.status_writes == ["1"]  # the real count, then the create charged its own slot
    assert cluster.used == "2"


def test_a_tenant_really_at_its_limit_gets_the_limit_refusal_and_no_correction(cluster: FakeCluster) -> None:
    cluster.stored = {"a", "b", "c"}
    cluster.used = "3"
    refused = refusal("d")
    assert (refused.status, refused.code) == (409, "endpoints_quantity_limit_reached")
    assert refused.description == "Endpoints have reached the quantity limit"
    assert cluster.status_writes == []


def test_an_endpoint_stored_during_the_settle_time_is_counted(cluster: FakeCluster) -> None:
    """A create charged before the quota was read lands while the check waits: the count after the
    wait includes it, so the correction cannot make room that is not there."""
    cluster.stored = {"a", "b"}
    cluster.used = "3"  # b's neighbour "c" is charged and in flight
    cluster.on_sleep = lambda: cluster.stored.add("c")
    refused = refusal("d")
    assert refused.code == "endpoints_quantity_limit_reached"
    assert cluster.status_writes == []


def test_a_correction_meeting_a_new_charge_starts_the_check_again(cluster: FakeCluster) -> None:
    cluster.used = "3"
    cluster.conflicts_left = 1
    create("b")
    assert cluster.stored == {"a", "b"}
    assert cluster.status_writes == ["1"]


def test_a_count_that_keeps_changing_is_503_to_retry_never_a_false_limit(cluster: FakeCluster) -> None:
    cluster.used = "3"
    cluster.conflicts_left = services.RECOUNT_ATTEMPTS
    refused = refusal("b")
    assert isinstance(refused, UpstreamUnavailable)
    assert (refused.status, refused.code, refused.retry_after) == (503, "endpoint_count_contended", 2)
    assert cluster.stored == {"a"}


def test_a_deployment_without_the_status_permission_answers_503_not_a_false_limit(cluster: FakeCluster) -> None:
    cluster.used = "3"
    cluster.status_forbidden = True
    refused = refusal("b")
    assert (refused.status, refused.code) == (503, "endpoint_quota_not_correctable")
    assert "resourcequotas/status" in (refused.description or "")
    assert cluster.stored == {"a"}


def test_counts_in_canonical_quantity_form_are_compared_as_numbers(cluster: FakeCluster) -> None:
    """The API server writes 1000 as ``1k``: a refusal at ``1k`` of ``1k`` with 999 stored is stale."""
    cluster.hard = cluster.used = "1k"
    cluster.stored = {f"e{index}" for index in range(999)}
    create("last")
    assert cluster.status_writes == ["999"]
    assert len(cluster.stored) == 1000
    assert refusal("over").code == "endpoints_quantity_limit_reached"


def test_a_duplicate_that_raced_past_the_existence_check_is_already_exists(cluster: FakeCluster) -> None:
    refused = refusal("a")
    assert (refused.status, refused.code) == (409, "endpoint_already_exists")
    assert cluster.used == "2"  # Kubernetes kept the charge; the next count refusal gives it back


def test_a_duplicate_refused_for_the_count_is_already_exists_without_a_correction(cluster: FakeCluster) -> None:
    """Kubernetes answers "exceeded quota" for an existing name once the quota is full (#106842)."""
    cluster.used = "3"  # a leaked charge makes the quota look full
    refused = refusal("a")
    assert (refused.status, refused.code) == (409, "endpoint_already_exists")
    assert cluster.status_writes == []
