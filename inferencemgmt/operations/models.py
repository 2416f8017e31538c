"""The Operation row: state, steps, error, who and when, for one long task.

The row, not the Celery message, is the truth: it is written in the request's transaction, every
state change is a compare-and-set update, and a retried or redelivered message consults it before
doing anything.
"""

from __future__ import annotations

import uuid

from django.db import models


class Operation(models.Model):
    class State(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        ROLLED_BACK = "ROLLED_BACK"

    FINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.ROLLED_BACK})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100, db_index=True, help_text="Celery task name, e.g. tenants.create")
    target = models.CharField(max_length=255, blank=True, help_text="What the operation acts on")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    steps = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="The error shape the API shows")
    error_detail = models.TextField(blank=True, help_text="Operator-only detail (never shown by the API)")
    requested_by = models.CharField(max_length=255, db_index=True)
    requested_identity = models.JSONField(default=dict, help_text="username and groups to act as (no token)")
    celery_task_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    owner = models.CharField(max_length=64, blank=True, help_text="Id of the run that holds the operation")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="operation_by_user"),
            # The keyset of GET /tasks (inferencemgmt.operations.selectors.operation_page) for admins.
            models.Index(fields=["-created_at", "-id"], name="operation_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def progress(self) -> int:
        """Percent done, from the steps recorded so far (100 once SUCCEEDED)."""
        if self.state == self.State.SUCCEEDED:
            return 100
        if not self.steps:
            return 0
        done = 0.0
        for step in self.steps:
            if step.get("state") == "done":
                done += 1
            elif step.get("total"):
                done += min(1.0, step.get("done", 0) / step["total"])
        return int(100 * done / len(self.steps))
