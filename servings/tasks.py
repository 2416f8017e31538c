"""Thin Celery wrappers (inferencemgmt.operations.execution.operation_task) over services.py."""
