"""What the platform records about model files; the bucket stays the truth of what exists.

``DirectUpload`` is the plan of a presigned upload (key, declared size, part size): completion
checks the parts in the store against it, and the reaper finds abandoned ones. ``ModelVersion``
records each version's files and bytes when an upload completes, so the console can show who
uploaded what and when without walking the bucket.
"""

from __future__ import annotations

import uuid

from django.db import models


class DirectUpload(models.Model):
    class State(models.TextChoices):
        OPEN = "OPEN"
        COMPLETED = "COMPLETED"
        ABORTED = "ABORTED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.CharField(max_length=63, db_index=True)
    model_name = models.CharField(max_length=255)
    model_version = models.BigIntegerField()
    path = models.CharField(max_length=1024)
    key = models.CharField(max_length=1024)
    s3_upload_id = models.CharField(max_length=1024)
    size = models.BigIntegerField(help_text="Declared total size in bytes")
    part_size = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    etag = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.key} ({self.state})"

    @property
    def part_count(self) -> int:
        """At least one part: an empty file is one empty part."""
        return max(1, -(-self.size // self.part_size))

    def expected_part_size(self, number: int) -> int:
        if number < self.part_count:
            return self.part_size
        return self.size - self.part_size * (self.part_count - 1)


class ModelVersion(models.Model):
    tenant = models.CharField(max_length=63)
    name = models.CharField(max_length=255)
    version = models.BigIntegerField()
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    recorded_by = models.CharField(max_length=255)
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name", "version"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name}/{self.version}"
