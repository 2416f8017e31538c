from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from inferencemgmt.operations.models import Operation


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin[Operation]):
    """Read-only: state changes belong to the workers' compare-and-set updates."""

    list_display = [
        "id",
        "kind",
        "target",
        "state",
        "progress",
        "requested_by",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["id", "target", "requested_by", "celery_task_id"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Operation | None = None) -> list[str]:
        return [field.name for field in Operation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Operation | None = None) -> bool:
        return False
