"""The Inference Model Manager project package."""

from inferencemgmt.celery import app as celery_app

__all__ = ["celery_app"]
