"""The Celery app. Broker: Redis (``REDIS_URL``); results live in Operation rows, not in Celery.

Run a worker with ``celery -A inferencemgmt worker -l INFO``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")

app = Celery("inferencemgmt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    ["inferencemgmt.operations", "tenants", "endpoints", "models_store", "servings", "audit", "usage"]
)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _load_kubernetes_client(**kwargs: Any) -> None:
    """The Kubernetes client's slow first imports at start, not in the first task (``kube.load_api_classes``)."""
    from inferencemgmt import kube

    kube.load_api_classes()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _serve_metrics(**kwargs: Any) -> None:
    """The worker's metrics on ``IMM_METRICS_PORT`` (operations by kind and state, retries, queue wait).

    The worker runs a thread pool (one process), so its own registry holds every value.
    """
    from django.conf import settings

    from inferencemgmt import metrics

    if settings.IMM_METRICS_PORT:
        metrics.serve(settings.IMM_METRICS_PORT, settings.IMM_METRICS_ADDRESS)
