"""The usage ledger without a cluster: rows folded per tenant from the API server's JSON, the
integration over sample intervals (1 -> 3 -> 0 replicas), gaps, buckets that add up to the totals,
the query checks, the purge, and the SVG charts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings

from inferencemgmt import kube
from inferencemgmt.tests.kube_fakes import NamespaceJson, patch_kube
from tenants import manifests
from usage import selectors, services
from usage.charts import usage_charts
from usage.models import UsageSample

pytestmark = [pytest.mark.unit, pytest.mark.django_db]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def deployment(
    namespace: str, replicas: int, containers: list[dict[str, Any]], *, owned: bool = True
) -> dict[str, Any]:
    owners = [{"kind": "InferenceEndpoint", "name": "e"}] if owned else []
    return {
        "metadata": {"namespace": namespace, "name": "e", "ownerReferences": owners},
        "spec": {"template": {"spec": {"containers": containers}}},
        "status": {"replicas": replicas},
    }


def test_one_row_per_tenant_with_requests_times_pods_and_the_quota():
    deployments = [
        deployment("a", 2, [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]),
        deployment("a", 3, [{"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}, {"resources": {}}]),
        deployment("a", 4, [{"resources": {"requests": {"cpu": "1"}}}], owned=False),  # a leftover
        deployment("not-a-tenant", 5, [{"resources": {"requests": {"cpu": "8"}}}]),
    ]
    quotas = [
        {
            "metadata": {"namespace": "a", "name": "a"},
            "spec": {"hard": {"requests.cpu": "10", "requests.nvidia.com/gpu": "2"}},
        },
        {"metadata": {"namespace": "a", "name": "extra"}, "spec": {"hard": {"requests.cpu": "99", "memory": "8Gi"}}},
    ]
    rows = {row.tenant: row for row in services.usage_rows(["a", "b"], deployments, quotas, T0)}
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert (a.endpoints, a.replicas, a.cpu_millicores, a.memory_bytes, a.gpus) == (2, 5, 4000, 2 * 2**30, 3)
    assert (a.quota_cpu_millicores, a.quota_memory_bytes, a.quota_gpus) == (10000, 8 * 2**30, 2)
    b = rows["b"]
    assert (b.endpoints, b.replicas, b.cpu_millicores, b.quota_cpu_millicores, b.quota_gpus) == (0, 0, 0, None, None)


def test_a_sample_reads_three_lists_as_the_platform_and_writes_one_row_per_tenant(monkeypatch):
    calls: list[tuple[str, dict[str, Any]]] = []
    answers: dict[str, dict[str, Any]] = {
        "list_namespace": {"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]},
        "list_deployment_for_all_namespaces": {
            "items": [deployment("a", 1, [{"resources": {"requests": {"cpu": "250m"}}}])]
        },
        "list_resource_quota_for_all_namespaces": {"items": []},
    }

    def platform(method: str) -> Any:
        """kube.py's ``platform_*`` function for ``method``: the management API's own identity."""

        def call(**kwargs: Any) -> dict[str, Any]:
            calls.append((method, kwargs))
            return answers[method]

        return call

    monkeypatch.setattr(kube, "platform_namespaces", platform("list_namespace"))
    monkeypatch.setattr(kube, "platform_deployments_everywhere", platform("list_deployment_for_all_namespaces"))
    monkeypatch.setattr(kube, "platform_resource_quotas_everywhere", platform("list_resource_quota_for_all_namespaces"))
    monkeypatch.setattr(kube, "api_client_for", lambda identity: pytest.fail("a sample read as a user"))
    assert services.usage_sample(T0) == 2
    assert [method for method, _ in calls] == list(answers)
    assert calls[0][1]["label_selector"] == f"{manifests.TENANT_OWNER_LABEL}={django_settings.PLATFORM_ADMIN_LABEL}"
    assert dict(UsageSample.objects.values_list("tenant", "cpu_millicores")) == {"a": 250, "b": 0}


def _ledger(values: list[int], interval: float, start: datetime = T0, tenant: str = "a") -> None:
    UsageSample.objects.bulk_create(
        UsageSample(
            time=start + timedelta(seconds=interval * index),
            tenant=tenant,
            replicas=value,
            cpu_millicores=value * 500,
            memory_bytes=value * 2**30,
            gpus=value,
            quota_gpus=4,
        )
        for index, value in enumerate(values)
    )


def test_scaling_1_3_0_integrates_to_the_replica_hours_held(settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 60
    # One hour at 1 replica, half an hour at 3, then 0 for an hour: 2.5 replica-hours.
    _ledger([1] * 60 + [3] * 30 + [0] * 60, 60)
    period = selectors.Period(T0, T0 + timedelta(hours=3), timedelta(minutes=30))
    usage = selectors.usage_series("a", period, now=T0 + timedelta(hours=5))
    assert usage["totals"] == {"replicaHours": 2.5, "cpuHours": 1.25, "memoryGiBHours": 2.5, "gpuHours": 2.5}
    assert [point["replicas"] for point in usage["series"]] == [1, 1, 3, 0, 0, 0]
    assert usage["series"][0]["quotaGpus"] == 4
    # The buckets add up to the totals whatever the step.
    fine = selectors.usage_series(
        "a", selectors.Period(T0, T0 + timedelta(hours=3), timedelta(seconds=7)), now=T0 + timedelta(hours=5)
    )
    assert sum(point["replicas"] * 7 for point in fine["series"]) / 3600 == pytest.approx(2.5, abs=1e-3)


def test_a_gap_in_sampling_is_not_billed_and_the_last_sample_holds_only_until_now(settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 60
    settings.IMM_USAGE_MAX_GAP_SAMPLES = 2
    _ledger([2], 60)
    _ledger([2], 60, start=T0 + timedelta(hours=1))  # the sampler was down for an hour in between
    period = selectors.Period(T0, T0 + timedelta(hours=2), timedelta(hours=1))
    # First sample: 2 minutes (the gap cap); second: until now, 30 s after it.
    usage = selectors.usage_series("a", period, now=T0 + timedelta(hours=1, seconds=30))
    assert usage["totals"]["replicaHours"] == pytest.approx(2 * (120 + 30) / 3600, abs=1e-6)
    assert [point["sampled"] for point in usage["series"]] == [True, True]


def test_a_sample_before_the_period_counts_from_its_start(settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 600
    _ledger([3, 3], 600, start=T0 - timedelta(minutes=5))
    period = selectors.Period(T0, T0 + timedelta(minutes=10), timedelta(minutes=10))
    usage = selectors.usage_series("a", period, now=T0 + timedelta(hours=1))
    assert usage["totals"]["replicaHours"] == pytest.approx(3 * 10 / 60)


def test_the_ranking_orders_tenants_by_gpu_then_cpu_hours(settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 60
    _ledger([1, 1, 1], 60, tenant="small")
    _ledger([4, 4, 4], 60, tenant="big")
    UsageSample.objects.create(time=T0, tenant="cpu-only", replicas=9, cpu_millicores=90000)
    ranking = selectors.usage_ranking(
        selectors.Period(T0, T0 + timedelta(hours=1), timedelta(hours=1)), now=T0 + timedelta(hours=2)
    )
    assert [row["tenant"] for row in ranking] == ["big", "small", "cpu-only"]
    assert ranking[0]["gpuHours"] == pytest.approx(4 * 3 / 60)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "last week"}, "from"),
        ({"to": "2026-02-30T00:00:00Z"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"step": "0"}, "step"),
        ({"step": "5 minutes"}, "step"),
        ({"step": "1s"}, "step"),  # a day in 1 s steps: too many points
        ({"to": "0001-01-01T00:00:00Z"}, "to"),  # a day before would not be a date
        ({"from": "9999-12-31T00:00:00Z"}, "from"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(query, field):
    from inferencemgmt.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        selectors.usage_period(query, now=T0)
    assert refused.value.description is not None
    assert refused.value.description.startswith(f"{field}:")


def test_periods_default_to_the_last_day_and_steps_take_units():
    period = selectors.usage_period({"step": "1h"}, now=T0)
    assert (period.start, period.end, period.step) == (T0 - timedelta(days=1), T0, timedelta(hours=1))
    # A step longer than the period is the period: one point, no date computed past it.
    assert selectors.usage_period({"step": "999999999d"}, now=T0).step == timedelta(days=1)


def test_the_purge_keeps_what_retention_keeps(settings):
    settings.IMM_USAGE_RETENTION_DAYS = 10
    UsageSample.objects.create(time=datetime.now(UTC) - timedelta(days=11), tenant="a")
    UsageSample.objects.create(time=datetime.now(UTC) - timedelta(days=9), tenant="a")
    assert services.usage_purge() == 1
    assert UsageSample.objects.count() == 1


def test_charts_are_polylines_scaled_to_the_peak_or_the_quota(settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 600
    _ledger([1, 3, 0], 600)
    usage = selectors.usage_series(
        "a", selectors.Period(T0, T0 + timedelta(minutes=30), timedelta(minutes=10)), now=T0 + timedelta(hours=1)
    )
    replicas, _, _, gpus = usage_charts(usage)
    assert len(replicas.points.split()) == 3
    assert replicas.top == pytest.approx(3.3)
    assert gpus.quota_y is not None
    assert gpus.top == pytest.approx(4.4)


# --- the route ---------------------------------------------------------------------------------------
TENANT = "usage-u1"


class Cluster(NamespaceJson):
    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        from inferencemgmt.errors import NotFound

        if name != TENANT:
            raise NotFound(description="not found", code="kubernetes_not_found")
        return self._namespace()

    def _namespace(self) -> dict[str, Any]:
        labels = {manifests.TENANT_OWNER_LABEL: django_settings.PLATFORM_ADMIN_LABEL}
        annotations = {manifests.SCOPE_ANNOTATION: json.dumps(["team-a"])}
        return {"metadata": {"name": TENANT, "labels": labels, "annotations": annotations}}

    def platform_namespaces(self, *, label_selector: str = "") -> dict[str, Any]:
        return {"items": [self._namespace()], "metadata": {}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, issuer: Any) -> Cluster:
    fake = Cluster()
    patch_kube(monkeypatch, fake)
    return fake


def get(api: Any, issuer: Any, path: str, who: str, groups: list[str]) -> Any:
    return api.get(path, HTTP_AUTHORIZATION=f"Bearer {issuer.mint(email=who, groups=groups)}")


def test_members_and_admins_read_a_tenants_usage_and_others_are_refused(api, issuer, cluster, settings):
    settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS = 60
    now = datetime.now(UTC).replace(microsecond=0)
    _ledger([2, 2, 2], 60, start=now - timedelta(minutes=3), tenant=TENANT)
    start, end = (moment.isoformat().replace("+00:00", "Z") for moment in (now - timedelta(minutes=3), now))
    query = f"?from={start}&to={end}&step=60"
    member = get(api, issuer, f"/tenants/{TENANT}/usage{query}", "alice@example.com", ["team-a"])
    assert member.status_code == 200, member.content
    data = member.json()["data"]
    assert data["totals"]["replicaHours"] == pytest.approx(2 * 3 / 60)
    assert [point["replicas"] for point in data["series"]] == [2, 2, 2]
    assert get(api, issuer, f"/tenants/{TENANT}/usage", "admin@example.com", ["admin"]).status_code == 200
    outsider = get(api, issuer, f"/tenants/{TENANT}/usage", "bob@example.com", ["team-b"])
    assert (outsider.status_code, outsider.json()["code"]) == (403, "tenant_forbidden")
    unknown = get(api, issuer, "/tenants/nope/usage", "alice@example.com", ["team-a"])
    assert (unknown.status_code, unknown.json()["code"]) == (404, "tenant_not_found")
    bad = get(api, issuer, f"/tenants/{TENANT}/usage?step=x", "alice@example.com", ["team-a"])
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_failed")
