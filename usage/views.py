"""Console: the usage charts of one tenant (drawn on the tenant page) and the admins' ranking."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from inferencemgmt.auth.identity import Identity
from inferencemgmt.views import console_page
from usage import selectors
from usage.charts import usage_charts

PERIOD_KEYS = ("from", "to", "step")


def tenant_usage_context(query: QueryDict, tenant: str) -> dict[str, Any]:
    """The tenant page's usage section; the page checked the caller may read the tenant."""
    period = selectors.usage_period({key: query.get(key, "").strip() for key in PERIOD_KEYS})
    usage = selectors.usage_series(tenant, period)
    return {"usage": usage, "usage_charts": usage_charts(usage)}


@console_page(admin_only=True)
def usage_ranking(request: HttpRequest, identity: Identity) -> HttpResponse:
    query = {key: request.GET.get(key, "").strip() for key in PERIOD_KEYS}
    period = selectors.usage_period(query)
    return render(
        request,
        "usage/ranking.html",
        {"identity": identity, "period": period, "filters": query, "ranking": selectors.usage_ranking(period)},
    )
