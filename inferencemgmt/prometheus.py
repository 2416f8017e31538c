"""Queries to the Prometheus that scrapes the serving pods (``PROMETHEUS_URL``), as the platform.

Only this module speaks to Prometheus. Callers pass label values, never PromQL: every selector is
built here from a fixed metric name and label matchers whose values are checked (DNS-1123 names)
and escaped, so a tenant can never widen a query to another tenant's series.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

from inferencemgmt.errors import PROMETHEUS, UpstreamError, UpstreamUnavailable
from inferencemgmt.metrics import upstream_call

_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def not_configured() -> UpstreamUnavailable:
    return UpstreamUnavailable(
        PROMETHEUS,
        "Metrics are not configured: the platform has no PROMETHEUS_URL.",
        code="metrics_not_configured",
        retry_after=3600,
    )


def label_value(value: str) -> str:
    """A PromQL string literal for ``value``: only Kubernetes object names, escaped all the same."""
    if len(value) > 253 or not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes object name")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(metric: str, **labels: str) -> str:
    """``metric{label="value",...}`` from a fixed metric name and checked label values."""
    if not _METRIC.fullmatch(metric):
        raise ValueError(f"{metric!r} is not a metric name")
    matchers = ",".join(f"{name}={label_value(value)}" for name, value in labels.items())
    return f"{metric}{{{matchers}}}"


@dataclass(frozen=True)
class Series:
    """One series of a range query: ``[unix_seconds, value or None]`` pairs (None: no data, NaN)."""

    points: list[tuple[float, float | None]]


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def query_range(query: str, *, start: float, end: float, step: float) -> list[Series]:
    """Run a range query; 503 when Prometheus is unreachable or not configured, 502 when it errs."""
    base = settings.PROMETHEUS_URL
    if not base:
        raise not_configured()
    headers = {"Accept": "application/json"}
    if settings.PROMETHEUS_BEARER_TOKEN:
        headers["Authorization"] = f"Bearer {settings.PROMETHEUS_BEARER_TOKEN}"
    with upstream_call(PROMETHEUS):
        try:
            response = requests.post(
                f"{base}/api/v1/query_range",
                data={"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
                headers=headers,
                timeout=settings.PROMETHEUS_TIMEOUT_SECONDS,
                verify=settings.PROMETHEUS_CA_FILE or True,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable(PROMETHEUS, f"{type(exc).__name__}: cannot reach Prometheus") from None
        if response.status_code in (429, 502, 503, 504):
            raise UpstreamUnavailable(PROMETHEUS, f"HTTP {response.status_code} from Prometheus")
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(PROMETHEUS, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise UpstreamError(PROMETHEUS, f"HTTP {response.status_code}: {str(error or 'no answer')[:200]}")
        data = body.get("data") or {}
        found: list[Series] = []
        for item in data.get("result") or []:
            points = [(float(at), _number(value)) for at, value in item.get("values") or []]
            found.append(Series(points))
        return found
