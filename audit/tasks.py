"""Periodic upkeep of the audit trail (Celery beat: ``audit-purge`` in settings)."""

from __future__ import annotations

from audit import services
from inferencemgmt.celery import app


@app.task(name="audit.purge", ignore_result=True)  # type: ignore[untyped-decorator]
def purge() -> dict[str, int]:
    """Drop records past retention, and settle outcomes whose task-end signal was lost."""
    return {"purged": services.audit_purge(), "settled": services.audit_settle_pending()}
