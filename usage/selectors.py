"""Reading the usage ledger: a tenant's series and totals over a period, and tenants ranked.

Integration: each sample's values hold from its time until the tenant's next sample, but never
longer than ``IMM_USAGE_MAX_GAP_SAMPLES`` sampling intervals (a sampler outage is not billed as the
last sample stretched over it); the newest sample of a tenant holds one interval (until the next
sample is due: a deleted tenant stops there), and nothing holds past now. The held segments are cut
at the bucket and period edges, so a total over a period equals the sum of its buckets.
Replica-hours are replicas x hours held; CPU-hours requested cores x hours; GPU-hours GPUs x hours;
memory in GiB-hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Forbidden, ValidationFailed
from tenants.selectors import known_tenant_name, tenant_list, tenant_namespace, tenant_not_found
from usage.charts import usage_charts
from usage.models import UsageSample

MAX_BUCKETS = 1000
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000
DEFAULT_PERIOD = timedelta(days=1)
_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: Per sample field: how one unit held for one second counts (x seconds / 3600 -> "hours").
METRICS = {
    "replicas": ("replicaHours", 1.0),
    "cpu_millicores": ("cpuHours", 1 / 1000),
    "memory_bytes": ("memoryGiBHours", 1 / 2**30),
    "gpus": ("gpuHours", 1.0),
}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    step: timedelta


def _moment(name: str, raw: str) -> datetime:
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationFailed(description=f"{name}: must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        # Arithmetic near datetime's own limits would overflow (a day before year 1).
        raise ValidationFailed(description=f"{name}: must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def usage_period(query: Mapping[str, str], *, now: datetime | None = None) -> Period:
    """``from`` (default: a day before ``to``), ``to`` (default: now), ``step`` (seconds, or with s/m/h/d;
    default: the period in 100 buckets, at least the sampling interval). At most ``MAX_BUCKETS`` buckets."""
    end = _moment("to", query["to"]) if query.get("to") else (now or timezone.now())
    start = _moment("from", query["from"]) if query.get("from") else end - DEFAULT_PERIOD
    if start >= end:
        raise ValidationFailed(description="from: must be before to")
    raw_step = query.get("step", "")
    if raw_step:
        match = _DURATION.fullmatch(raw_step)
        if match is None:
            raise ValidationFailed(description="step: a whole number of seconds, or with a unit s, m, h or d (5m)")
        step = timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
    else:
        step = max((end - start) / 100, timedelta(seconds=settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS))
        step = timedelta(seconds=max(1, round(step.total_seconds())))
    if (end - start) / step > MAX_BUCKETS:
        raise ValidationFailed(description=f"step: the period would have more than {MAX_BUCKETS} points")
    return Period(start, end, min(step, end - start))  # one point at most: no date past the period


def usage_tenant_allowed(identity: Identity, tenant: str) -> None:
    """Members and admins. An admin may read a deleted tenant's ledger; for anyone else the tenant rule
    of every route holds (404 unknown, 403 not yours)."""
    known_tenant_name(tenant)
    if identity.is_admin:
        if tenant_namespace(tenant) is None and not UsageSample.objects.filter(tenant=tenant).exists():
            raise tenant_not_found(tenant)
        return
    if tenant_namespace(tenant) is None:
        raise tenant_not_found(tenant)
    if tenant not in tenant_list(identity):
        raise Forbidden(description=f"You are not a member of tenant {tenant}.", code="tenant_forbidden")


def _max_gap() -> timedelta:
    return timedelta(seconds=settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS * settings.IMM_USAGE_MAX_GAP_SAMPLES)


def _segments(
    samples: list[UsageSample], period: Period, now: datetime
) -> Iterable[tuple[datetime, datetime, UsageSample]]:
    """Each sample's held time (see the module's docstring), cut to the period."""
    gap = _max_gap()
    interval = timedelta(seconds=settings.IMM_USAGE_SAMPLE_INTERVAL_SECONDS)
    for index, sample in enumerate(samples):
        if index + 1 < len(samples):
            held_until = min(samples[index + 1].time, sample.time + gap)
        else:
            held_until = sample.time + interval  # the newest: until the next sample is due
        held_until = min(held_until, now, period.end)
        begin = max(sample.time, period.start)
        if held_until > begin:
            yield begin, held_until, sample


def _samples(tenants: list[str] | None, period: Period) -> dict[str, list[UsageSample]]:
    rows = UsageSample.objects.filter(time__gte=period.start - _max_gap(), time__lt=period.end)
    if tenants is not None:
        rows = rows.filter(tenant__in=tenants)
    found: dict[str, list[UsageSample]] = {}
    for row in rows.order_by("tenant", "time"):
        found.setdefault(row.tenant, []).append(row)
    return found


def _totals(segments: Iterable[tuple[datetime, datetime, UsageSample]]) -> dict[str, float]:
    totals = dict.fromkeys((name for name, _ in METRICS.values()), 0.0)
    for begin, end, sample in segments:
        hours = (end - begin).total_seconds() / 3600
        for field, (name, scale) in METRICS.items():
            totals[name] += getattr(sample, field) * scale * hours
    return {name: round(value, 6) for name, value in totals.items()}


def usage_series(tenant: str, period: Period, *, now: datetime | None = None) -> dict[str, Any]:
    """Per bucket the time-weighted averages (replicas, CPU cores, memory GiB, GPUs) and the quota's
    hard limits of the last sample in it; totals over the whole period."""
    moment = now or timezone.now()
    samples = _samples([tenant], period).get(tenant, [])
    segments = list(_segments(samples, period, moment))
    points: list[dict[str, Any]] = []
    bucket = period.start
    while bucket < period.end:
        bucket_end = min(bucket + period.step, period.end)
        inside = [
            (max(begin, bucket), min(end, bucket_end), sample)
            for begin, end, sample in segments
            if begin < bucket_end and end > bucket
        ]
        seconds = (bucket_end - bucket).total_seconds()
        totals = _totals(inside)
        last = inside[-1][2] if inside else None
        points.append(
            {
                "time": bucket.isoformat(),
                "replicas": round(totals["replicaHours"] * 3600 / seconds, 4),
                "cpu": round(totals["cpuHours"] * 3600 / seconds, 4),
                "memoryGiB": round(totals["memoryGiBHours"] * 3600 / seconds, 4),
                "gpus": round(totals["gpuHours"] * 3600 / seconds, 4),
                "quotaCpu": last.quota_cpu_millicores / 1000
                if last and last.quota_cpu_millicores is not None
                else None,
                "quotaMemoryGiB": round(last.quota_memory_bytes / 2**30, 4)
                if last and last.quota_memory_bytes is not None
                else None,
                "quotaGpus": last.quota_gpus if last else None,
                "sampled": bool(inside),
            }
        )
        bucket = bucket_end
    return {
        "tenant": tenant,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "step": int(period.step.total_seconds()),
        "samples": len(samples),
        "series": points,
        "totals": _totals(segments),
    }


def usage_ranking(period: Period, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every tenant with samples in the period and its totals, most GPU-hours first (then CPU-hours,
    then replica-hours)."""
    moment = now or timezone.now()
    totals = {tenant: _totals(_segments(samples, period, moment)) for tenant, samples in _samples(None, period).items()}
    order = sorted(
        totals, key=lambda t: (-totals[t]["gpuHours"], -totals[t]["cpuHours"], -totals[t]["replicaHours"], t)
    )
    return [{"tenant": tenant, **totals[tenant]} for tenant in order]


PERIOD_KEYS = ("from", "to", "step")


def tenant_usage_context(query: Mapping[str, str], tenant: str) -> dict[str, Any]:
    """The console tenant page's usage section (series, totals, charts). The page has already read the
    tenant as the caller, so whether they may see its usage is decided."""
    period = usage_period({key: query.get(key, "").strip() for key in PERIOD_KEYS})
    usage = usage_series(tenant, period)
    return {"usage": usage, "usage_charts": usage_charts(usage)}
