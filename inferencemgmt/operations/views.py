"""Console pages for tasks: every Operation the user may see, filtered, and one task followed live.

The task page polls a small HTML fragment (the steps with their progress) rather than the JSON API,
so the page needs no client-side rendering and shows exactly what a reload would.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inferencemgmt import paging
from inferencemgmt.api.validation import CONTROL_CHARACTERS
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.selectors import operation_get, operation_page, operations_visible_to
from inferencemgmt.views import console_page

PAGE_SIZE = 50


@console_page()
def task_list(request: HttpRequest, identity: Identity) -> HttpResponse:
    operations = operations_visible_to(identity)
    filters = {key: request.GET.get(key, "").strip() for key in ("state", "kind", "target", "user")}
    if any(CONTROL_CHARACTERS.search(value) for value in filters.values()):
        raise BadRequest("Invalid parameter", "Task filters cannot contain control characters.", code="filter_invalid")
    if filters["state"] in Operation.State.values:
        operations = operations.filter(state=filters["state"])
    if filters["kind"]:
        operations = operations.filter(kind=filters["kind"])
    if filters["target"]:
        operations = operations.filter(target__icontains=filters["target"])
    if filters["user"] and identity.is_admin:
        operations = operations.filter(requested_by__icontains=filters["user"])
    kinds = operations_visible_to(identity).order_by("kind").values_list("kind", flat=True).distinct()
    # Keyset pages (newest first), as GET /tasks: no COUNT and no OFFSET, so a page costs the
    # same with 10 tasks or 100,000; "Older" carries the signed position of the last row shown.
    page = paging.page_request(
        request.GET, paging.scope_of("console-tasks", identity.username, **filters), default=PAGE_SIZE
    )
    rows, following = operation_page(operations, page)
    return render(
        request,
        "operations/list.html",
        {
            "identity": identity,
            "operations": rows,
            "following": following,
            "first_page": page.position is None,
            "filters": filters,
            "states": Operation.State.values,
            "kinds": list(kinds),
        },
    )


def _context(identity: Identity, operation_id: uuid.UUID) -> dict[str, object]:
    return {"identity": identity, "operation": operation_get(identity, str(operation_id))}


@console_page()
def task_detail(request: HttpRequest, identity: Identity, operation_id: uuid.UUID) -> HttpResponse:
    return render(request, "operations/detail.html", _context(identity, operation_id))


@console_page()
def task_progress(request: HttpRequest, identity: Identity, operation_id: uuid.UUID) -> HttpResponse:
    response = render(request, "operations/_progress.html", _context(identity, operation_id))
    response["Cache-Control"] = "no-store"
    return response
