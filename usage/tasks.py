"""Periodic tasks of the usage ledger (Celery beat: ``usage-sample`` and ``usage-purge`` in settings)."""

from __future__ import annotations

from inferencemgmt.celery import app
from usage import services


@app.task(name="usage.sample", ignore_result=True)  # type: ignore[untyped-decorator]
def sample() -> int:
    """One row per tenant; a failed sample is a gap (charted as nothing known), not a retry storm."""
    return services.usage_sample()


@app.task(name="usage.purge", ignore_result=True)  # type: ignore[untyped-decorator]
def purge() -> int:
    return services.usage_purge()
