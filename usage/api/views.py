"""``GET /tenants/<t>/usage?from=&to=&step=``: the tenant's usage series and totals (members, admins)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.views import TenantView
from usage import selectors
from usage.api.schemas import USAGE_ANSWER


class TenantUsageView(TenantView):
    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Default: a day before `to`."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Default: now."),
            OpenApiParameter(
                "step",
                {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhd]?$"},
                description=f"Seconds per point, or with a unit (5m, 1h); at most {selectors.MAX_BUCKETS} points.",
            ),
        ],
        operation_id="tenant_usage",
        responses={200: USAGE_ANSWER, 400: error_response(400)},
    )
    def get(self, request: Request) -> Response:
        period = selectors.usage_period(request.query_params)
        selectors.usage_tenant_allowed(self.identity, self.tenant)
        return envelope("OK", selectors.usage_series(self.tenant, period))
