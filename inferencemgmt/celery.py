"""The Celery app. Broker: Redis (``REDIS_URL``); results live in Operation rows, not in Celery.

Run a worker with ``celery -A inferencemgmt worker -l INFO``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")

app = Celery("inferencemgmt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    ["inferencemgmt.operations", "tenants", "endpoints", "models_store", "servings", "audit", "usage"]
)
