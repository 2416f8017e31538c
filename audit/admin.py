from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditRecord


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin[AuditRecord]):
    """Read-only: the trail is append-only (only the retention purge removes records)."""

    list_display = ["time", "username", "action", "tenant", "target", "outcome", "status_code", "client_address"]
    list_filter = ["outcome", "action"]
    search_fields = ["username", "tenant", "target", "request_id"]
    date_hierarchy = "time"

    def get_readonly_fields(self, request: HttpRequest, obj: AuditRecord | None = None) -> list[str]:
        return [field.name for field in AuditRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditRecord | None = None) -> bool:
        return False
