"""How a route that started an operation answers: at once (``Prefer: respond-async``) or when done.

The documented routes (``POST /tenants``, ``DELETE /tenants``) answer ``CREATED`` / ``DELETED``
synchronously, so by default the request waits for its operation, bounded by
``IMM_OPERATION_WAIT_SECONDS``. A client that prefers not to wait, or an operation that outlives the
bound, gets ``202`` with a link to follow.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt.api.responses import EnvelopeStatus, envelope
from inferencemgmt.operations.api.serializers import operation_url
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import error_from_record, operation_wait


def prefers_async(request: Request) -> bool:
    """RFC 7240: ``Prefer: respond-async`` (among other comma-separated preferences)."""
    preferences = request.headers.get("Prefer", "")
    return any(part.split(";")[0].strip().lower() == "respond-async" for part in preferences.split(","))


def accepted(request: Request, operation: Operation, name: str) -> Response:
    url = operation_url(operation)
    response = envelope(
        "ACCEPTED",
        {"name": name, "task": {"id": str(operation.pk), "url": url, "state": operation.state}},
        http_status=202,
    )
    response["Location"] = url
    if prefers_async(request):
        response["Preference-Applied"] = "respond-async"
    return response


def answer_operation(
    request: Request,
    operation: Operation,
    *,
    name: str,
    done_status: EnvelopeStatus,
    done_data: Any = None,
    result_as_data: bool = False,
) -> Response:
    """Call after the creating transaction committed (the task is sent on commit).

    When done, ``data`` is ``done_data``, or the operation's own result with ``result_as_data`` (the
    model routes answer what the task found), or ``{"name": name}``.
    """
    if prefers_async(request):
        return accepted(request, operation, name)
    operation = operation_wait(operation.pk, settings.IMM_OPERATION_WAIT_SECONDS)
    if operation.state == Operation.State.SUCCEEDED:
        if result_as_data:
            return envelope(done_status, operation.result)
        return envelope(done_status, {"name": name} if done_data is None else done_data)
    if operation.state in (Operation.State.FAILED, Operation.State.ROLLED_BACK):
        raise error_from_record(operation.error)
    return accepted(request, operation, name)
