"""Sampling the usage ledger and purging it.

A sample is read with the management API's own identity (a periodic task has no caller): the tenant
namespaces, every endpoint Deployment and every ResourceQuota, three list calls whatever the number
of tenants, folded into one row per tenant. What a tenant uses is what its endpoint pods request
(requests, or the limit where a container sets none, as Kubernetes does) times the pods the
Deployment has (``status.replicas``): a paused endpoint uses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from endpoints.selectors import ENDPOINT_SELECTOR
from inferencemgmt import kube
from inferencemgmt.quantities import quantity_value
from tenants.selectors import tenant_label_selector
from usage.models import UsageSample

logger = logging.getLogger(__name__)


def _is_gpu(resource: str) -> bool:
    """``nvidia.com/gpu``, ``amd.com/gpu``, ...: an extended resource named ``gpu``."""
    return resource.endswith("/gpu")


def _number(text: Any) -> Decimal:
    value = quantity_value(str(text)) if text is not None else None
    return value if value is not None and value > 0 else Decimal(0)


@dataclass
class Totals:
    endpoints: int = 0
    replicas: int = 0
    cpu_millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0
    quota: dict[str, int | None] = field(default_factory=dict)


def pod_requests(template: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    """CPU cores, memory bytes and GPUs one pod of this template requests (its containers summed)."""
    cpu = memory = gpus = Decimal(0)
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name in {*requests, *limits}:
            amount = _number(requests.get(name, limits.get(name)))
            if name == "cpu":
                cpu += amount
            elif name == "memory":
                memory += amount
            elif _is_gpu(name):
                gpus += amount
    return cpu, memory, gpus


def _owned_by_endpoint(deployment: Mapping[str, Any]) -> bool:
    references = (deployment.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("kind") == "InferenceEndpoint" for reference in references)


def quota_limits(quotas: Iterable[Mapping[str, Any]], tenant: str) -> dict[str, int | None]:
    """The hard CPU (millicores), memory (bytes) and GPU limits of the tenant's quotas, its own first."""
    hard: dict[str, str] = {}
    for quota in sorted(quotas, key=lambda q: (q.get("metadata") or {}).get("name") != tenant):
        for key, value in ((quota.get("spec") or {}).get("hard") or {}).items():
            hard.setdefault(str(key), str(value))

    def first(*keys: str) -> Decimal | None:
        for key in keys:
            if key in hard:
                return _number(hard[key])
        return None

    cpu, memory = first("requests.cpu", "cpu"), first("requests.memory", "memory")
    gpu_keys = [key for key in hard if key.startswith("requests.") and _is_gpu(key)]
    gpus = sum((_number(hard[key]) for key in gpu_keys), Decimal(0)) if gpu_keys else None
    return {
        "quota_cpu_millicores": int(cpu * 1000) if cpu is not None else None,
        "quota_memory_bytes": int(memory) if memory is not None else None,
        "quota_gpus": int(gpus) if gpus is not None else None,
    }


def usage_rows(
    tenants: Iterable[str],
    deployments: Iterable[Mapping[str, Any]],
    quotas: Iterable[Mapping[str, Any]],
    moment: datetime,
) -> list[UsageSample]:
    """One unsaved row per tenant (tenants without endpoints too: a zero is a fact worth charting)."""
    totals = {tenant: Totals() for tenant in tenants}
    for deployment in deployments:
        metadata = deployment.get("metadata") or {}
        found = totals.get(str(metadata.get("namespace")))
        if found is None or not _owned_by_endpoint(deployment):
            continue
        replicas = int((deployment.get("status") or {}).get("replicas") or 0)
        cpu, memory, gpus = pod_requests((deployment.get("spec") or {}).get("template") or {})
        found.endpoints += 1
        found.replicas += replicas
        found.cpu_millicores += int(cpu * 1000 * replicas)
        found.memory_bytes += int(memory * replicas)
        found.gpus += int(gpus * replicas)
    by_namespace: dict[str, list[Mapping[str, Any]]] = {}
    for quota in quotas:
        by_namespace.setdefault(str((quota.get("metadata") or {}).get("namespace")), []).append(quota)
    return [
        UsageSample(
            time=moment,
            tenant=tenant,
            endpoints=found.endpoints,
            replicas=found.replicas,
            cpu_millicores=found.cpu_millicores,
            memory_bytes=found.memory_bytes,
            gpus=found.gpus,
            **quota_limits(by_namespace.get(tenant, []), tenant),
        )
        for tenant, found in totals.items()
    ]


def usage_sample(now: datetime | None = None) -> int:
    """Take one sample of every tenant; returns the number of rows written."""
    namespaces = kube.platform_namespaces(label_selector=tenant_label_selector())
    tenants = [str(item["metadata"]["name"]) for item in namespaces.get("items") or []]
    deployments = kube.platform_deployments_everywhere(label_selector=ENDPOINT_SELECTOR)
    quotas = kube.platform_resource_quotas_everywhere()
    rows = usage_rows(tenants, deployments.get("items") or [], quotas.get("items") or [], now or timezone.now())
    UsageSample.objects.bulk_create(rows)
    return len(rows)


def usage_purge(now: datetime | None = None) -> int:
    """Delete samples older than ``IMM_USAGE_RETENTION_DAYS``; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.IMM_USAGE_RETENTION_DAYS)
    deleted, _ = UsageSample.objects.filter(time__lt=cutoff).delete()
    if deleted:
        logger.info("Usage purge: %d samples older than %s removed", deleted, cutoff.isoformat())
    return deleted
