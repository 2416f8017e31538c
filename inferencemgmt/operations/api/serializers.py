from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from inferencemgmt.operations.models import Operation


def operation_url(operation: Operation) -> str:
    """Relative, so it stays right behind any proxy or ingress host."""
    return reverse("operation-detail", args=[str(operation.pk)])


class OperationSerializer(serializers.ModelSerializer[Operation]):
    url = serializers.SerializerMethodField()
    progress = serializers.IntegerField(read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "url",
            "kind",
            "target",
            "state",
            "progress",
            "steps",
            "result",
            "error",
            "requested_by",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_url(self, operation: Operation) -> str:
        return operation_url(operation)
