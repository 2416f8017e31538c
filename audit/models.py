"""One audit record per mutating request: who did what to which object, and how it ended.

Append-only: ``save`` refuses to change a stored record and ``delete`` refuses outright. The only
writes after the insert are the two the trail is built on, both through ``audit.services`` with
queryset updates: the outcome of a record whose request started an operation moves once, from
``PENDING`` to the operation's final state; and the retention purge deletes records past the
retention period in bulk.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class AuditRecord(models.Model):
    class Outcome(models.TextChoices):
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        #: The request started an operation that had not finished when the answer went out (202).
        PENDING = "PENDING"
        ROLLED_BACK = "ROLLED_BACK"

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField(default=timezone.now)
    username = models.CharField(max_length=255, help_text="A robot is its service account name")
    groups = models.JSONField(default=list)
    robot = models.BooleanField(default=False)
    action = models.CharField(max_length=64, help_text="e.g. endpoint.scale (audit.actions)")
    tenant = models.CharField(max_length=63, blank=True)
    target = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=8)
    route = models.CharField(max_length=100, help_text="The URL pattern's name")
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.CharField(max_length=300, blank=True, help_text="The error title/code, never a secret")
    operation_id = models.UUIDField(null=True, blank=True)
    request_id = models.CharField(max_length=128)
    client_address = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["-time", "-id"], name="audit_time"),
            models.Index(fields=["tenant", "-time", "-id"], name="audit_tenant_time"),
            models.Index(fields=["username", "-time"], name="audit_user_time"),
            models.Index(fields=["operation_id"], name="audit_operation"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target} ({self.outcome})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("Audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit records are removed only by the retention purge")
