"""Console pages of the audit trail: the filtered records, a page at a time, and their CSV."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from audit import selectors
from audit.api.views import csv_response
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import ImmError
from inferencemgmt.views import console_page, render_error, session_identity

FILTER_KEYS = ("tenant", "user", "action", "from", "to")


@console_page()
def audit_list(request: HttpRequest, identity: Identity) -> HttpResponse:
    """Bad filters render the console's error page (400), as the API answers 400."""
    query = {key: request.GET.get(key, "").strip() for key in FILTER_KEYS}
    filters = selectors.audit_filters(query)
    page = selectors.audit_page(
        identity, filters, limit=selectors.PAGE_DEFAULT, token=request.GET.get("continue") or None
    )
    kept = {key: value for key, value in query.items() if value}
    return render(
        request,
        "audit/list.html",
        {
            "identity": identity,
            "records": page.records,
            "filters": query,
            "actions": sorted(selectors.KNOWN_ACTIONS),
            "query": urlencode(kept),
            "next_query": urlencode({**kept, "continue": page.continue_token}) if page.continue_token else "",
        },
    )


def audit_export(request: HttpRequest) -> HttpResponseBase:
    """``console_page`` by hand: its pages are rendered responses, this one a stream."""
    identity = session_identity(request)
    if identity is None:
        return redirect_to_login(request.get_full_path())
    try:
        return csv_response(identity, {key: request.GET.get(key, "").strip() for key in FILTER_KEYS})
    except ImmError as error:
        return render_error(request, identity, error)
