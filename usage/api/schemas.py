"""The answer of ``GET /tenants/<t>/usage``."""

from __future__ import annotations

from rest_framework import serializers

from inferencemgmt.api.openapi import envelope_answer, shape

_POINT = shape(
    "UsagePoint",
    {
        "time": serializers.DateTimeField(help_text="Start of the bucket."),
        "replicas": serializers.FloatField(help_text="Time-weighted average over the bucket."),
        "cpu": serializers.FloatField(help_text="Requested cores, averaged."),
        "memoryGiB": serializers.FloatField(),
        "gpus": serializers.FloatField(),
        "quotaCpu": serializers.FloatField(allow_null=True),
        "quotaMemoryGiB": serializers.FloatField(allow_null=True),
        "quotaGpus": serializers.IntegerField(allow_null=True),
        "sampled": serializers.BooleanField(help_text="False where no sample covers the bucket."),
    },
)
_TOTALS = shape(
    "UsageTotals",
    {
        "replicaHours": serializers.FloatField(),
        "cpuHours": serializers.FloatField(),
        "memoryGiBHours": serializers.FloatField(),
        "gpuHours": serializers.FloatField(),
    },
)
USAGE_ANSWER = envelope_answer(
    "UsageAnswer",
    "OK",
    shape(
        "Usage",
        {
            "tenant": serializers.CharField(),
            "from": serializers.DateTimeField(),
            "to": serializers.DateTimeField(),
            "step": serializers.IntegerField(help_text="Seconds per point."),
            "samples": serializers.IntegerField(),
            "series": serializers.ListField(child=_POINT),
            "totals": _TOTALS,
        },
    ),
)
