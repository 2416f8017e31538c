"""The usage ledger: one row per tenant per sample (not per endpoint), so storage grows with
tenants x samples and is bounded by the retention purge."""

from __future__ import annotations

from django.db import models


class UsageSample(models.Model):
    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField()
    tenant = models.CharField(max_length=63)
    endpoints = models.PositiveIntegerField(default=0)
    #: Pods the tenant's endpoint Deployments had (Deployment ``status.replicas``), summed.
    replicas = models.PositiveIntegerField(default=0)
    #: Requested per pod x replicas, summed over endpoints (requests, or limits where no request).
    cpu_millicores = models.BigIntegerField(default=0)
    memory_bytes = models.BigIntegerField(default=0)
    gpus = models.PositiveIntegerField(default=0)
    #: The tenant quota's hard limits (requests.cpu / cpu, requests.memory / memory, GPUs); None if unset.
    quota_cpu_millicores = models.BigIntegerField(null=True, blank=True)
    quota_memory_bytes = models.BigIntegerField(null=True, blank=True)
    quota_gpus = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["tenant", "time"]
        indexes = [
            models.Index(fields=["tenant", "time"], name="usage_tenant_time"),
            models.Index(fields=["time"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} {self.time:%Y-%m-%d %H:%M} replicas={self.replicas}"
