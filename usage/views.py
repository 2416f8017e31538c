"""Console: the usage charts of one tenant (drawn on the tenant page) and the admins' ranking."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inferencemgmt.auth.identity import Identity
from inferencemgmt.views import console_page
from usage import selectors
from usage.selectors import PERIOD_KEYS


@console_page(admin_only=True)
def usage_ranking(request: HttpRequest, identity: Identity) -> HttpResponse:
    query = {key: request.GET.get(key, "").strip() for key in PERIOD_KEYS}
    period = selectors.usage_period(query)
    return render(
        request,
        "usage/ranking.html",
        {"identity": identity, "period": period, "filters": query, "ranking": selectors.usage_ranking(period)},
    )
