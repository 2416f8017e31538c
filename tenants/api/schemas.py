"""The answers of the tenant routes, as the OpenAPI schema documents them."""

from __future__ import annotations

from rest_framework import serializers

from inferencemgmt.api.openapi import envelope_answer, page_envelope_answer, shape
from tenants.api.serializers import QuotaField, ScopeField


def _name() -> serializers.CharField:
    return serializers.CharField()


TENANT_LIST_ANSWER = page_envelope_answer(
    "TenantListAnswer", shape("TenantList", {"tenants": serializers.ListField(child=serializers.CharField())})
)
TENANT_CREATED_ANSWER = envelope_answer("TenantCreatedAnswer", "CREATED", shape("TenantCreated", {"name": _name()}))
TENANT_DELETED_ANSWER = envelope_answer("TenantDeletedAnswer", "DELETED", shape("TenantDeleted", {"name": _name()}))

_QUANTITIES = serializers.DictField(child=serializers.CharField())
TENANT_ANSWER = envelope_answer(
    "TenantAnswer",
    "OK",
    shape(
        "Tenant",
        {
            "name": _name(),
            "scope": serializers.ListField(child=serializers.CharField()),
            "phase": serializers.CharField(allow_null=True),
            "quota": shape("TenantQuotaUsage", {"hard": _QUANTITIES, "used": _QUANTITIES}),
            "maxEndpoints": serializers.IntegerField(allow_null=True),
            "endpoints": serializers.IntegerField(help_text="How many endpoints the tenant has."),
            "bucket": shape(
                "TenantBucket",
                {"name": _name(), "objects": serializers.IntegerField(), "bytes": serializers.IntegerField()},
                allow_null=True,
            ),
            "createdBy": serializers.CharField(allow_null=True),
            "createdAt": serializers.DateTimeField(allow_null=True),
        },
    ),
)
TENANT_PATCHED_ANSWER = envelope_answer(
    "TenantPatchedAnswer",
    "PATCHED",
    shape(
        "TenantPatched",
        {
            "name": _name(),
            "values": shape(
                "TenantChanges",
                {"quota": QuotaField(required=False), "scope": ScopeField(required=False)},
                help_text="What was replaced, as validated (scope always a list).",
            ),
        },
    ),
)
