"""The answers of ``GET /audit``."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditRecord
from inferencemgmt.api.openapi import envelope_answer, shape

AUDIT_RECORD = shape(
    "AuditRecord",
    {
        "id": serializers.IntegerField(),
        "time": serializers.DateTimeField(),
        "user": serializers.CharField(help_text="A robot appears as system:serviceaccount:<tenant>:<robot>."),
        "groups": serializers.ListField(child=serializers.CharField()),
        "robot": serializers.BooleanField(),
        "action": serializers.CharField(help_text="e.g. endpoint.scale"),
        "tenant": serializers.CharField(allow_blank=True),
        "target": serializers.CharField(allow_blank=True),
        "method": serializers.CharField(),
        "route": serializers.CharField(),
        "statusCode": serializers.IntegerField(),
        "outcome": serializers.ChoiceField(choices=AuditRecord.Outcome.values),
        "error": serializers.CharField(allow_blank=True),
        "operationId": serializers.UUIDField(allow_null=True),
        "requestId": serializers.CharField(),
        "clientAddress": serializers.CharField(allow_blank=True),
    },
)

AUDIT_LIST_ANSWER = envelope_answer(
    "AuditListAnswer",
    "OK",
    shape(
        "AuditList",
        {
            "items": serializers.ListField(child=AUDIT_RECORD),
            "continue": serializers.CharField(
                allow_null=True, help_text="Send as ?continue= for the next page; null on the last page."
            ),
        },
    ),
)
