"""Django admin: read-only views of direct uploads and recorded model versions (the bucket is the truth)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from models_store.models import DirectUpload, ModelVersion


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DirectUpload)
class DirectUploadAdmin(ReadOnly):
    list_display = ("tenant", "key", "size", "state", "created_by", "created_at")
    list_filter = ("state", "tenant")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnly):
    list_display = ("tenant", "name", "version", "files", "bytes", "recorded_by", "recorded_at")
    list_filter = ("tenant",)
