"""The endpoint routes (docs/compatibility.md) and the new operator routes (events, logs, pause, resume).

Views validate and answer; every Kubernetes call is made by ``endpoints.services`` /
``endpoints.selectors`` AS the caller, so Kubernetes RBAC decides (a user outside the tenant's
groups gets 403 whether or not the endpoint exists).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from endpoints import selectors, services
from endpoints.api.schemas import (
    ENDPOINT_ANSWER,
    ENDPOINT_CREATED_ANSWER,
    ENDPOINT_DELETED_ANSWER,
    ENDPOINT_EVENTS_ANSWER,
    ENDPOINT_LIST_ANSWER,
    ENDPOINT_LOGS_ANSWER,
    ENDPOINT_PATCHED_ANSWER,
    ENDPOINT_TRAFFIC_ANSWER,
)
from endpoints.api.serializers import (
    EndpointCreateSerializer,
    EndpointNameSerializer,
    EndpointScaleSerializer,
    EndpointUpdateSerializer,
    endpoint_create_arguments,
    validate_tail,
    validate_traffic_query,
)
from endpoints.spec import endpoint_url
from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS
from inferencemgmt.api.requests import validated
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.validation import matches
from inferencemgmt.api.views import TenantView

# Object names Kubernetes accepts for a CR (a DNS-1123 subdomain): endpoints made by the original
# may start with a digit, and must stay reachable for view and delete.
_OBJECT_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _endpoint(name: str) -> str:
    """A name no CR can have names no endpoint; checked before it becomes part of an API server URL."""
    if not matches(_OBJECT_NAME, name) or len(name) > 253:
        raise selectors.endpoint_not_found(name)
    return name


class EndpointCollectionView(TenantView):
    @extend_schema(
        operation_id="tenants_endpoints_list",
        parameters=PAGE_PARAMETERS,
        responses={200: ENDPOINT_LIST_ANSWER, 400: error_response(400)},
        summary="Endpoints of a tenant with their live status, one page",
    )
    def get(self, request: Request) -> Response:
        """``{"endpoints": [{"name", "url", "status"}]}``; status is available, unavailable,
        not fully available, scaled to 0 or pending."""
        scope = selectors.endpoint_page_scope(self.identity, self.tenant)
        page = paging.page_request(request.query_params, scope)
        entries, following = selectors.endpoint_page(self.identity, self.tenant, page)
        return paging.page_answer("OK", {"endpoints": entries}, following)

    @extend_schema(request=EndpointCreateSerializer, responses=ENDPOINT_CREATED_ANSWER, summary="Create an endpoint")
    def post(self, request: Request) -> Response:
        """``CREATED`` with ``{"url", "warning"}``; the warning says when the model is not in the bucket."""
        data = validated(EndpointCreateSerializer, request.data, tenant=self.tenant)
        created = services.endpoint_create(self.identity, self.tenant, **endpoint_create_arguments(data))
        return envelope("CREATED", created)

    @extend_schema(
        operation_id="tenants_endpoints_destroy_by_body",
        request=EndpointNameSerializer,
        responses={200: ENDPOINT_DELETED_ANSWER},
        summary="Delete an endpoint (documented body form)",
    )
    def delete(self, request: Request) -> Response:
        name = _endpoint(validated(EndpointNameSerializer, request.data)["endpointName"])
        return envelope("DELETED", {"url": services.endpoint_delete(self.identity, self.tenant, name)})


class EndpointDetailView(TenantView):
    @extend_schema(
        responses=ENDPOINT_ANSWER, summary="An endpoint: pods, URL, subject, resources, replicas, conditions"
    )
    def get(self, request: Request, name: str) -> Response:
        return envelope("OK", selectors.endpoint_view(self.identity, self.tenant, _endpoint(name)))

    @extend_schema(
        request=EndpointUpdateSerializer,
        responses=ENDPOINT_PATCHED_ANSWER,
        summary="Change model, version policy, resources or subject",
    )
    def patch(self, request: Request, name: str) -> Response:
        """``values`` echoes the body as sent (the original's answer), not the normalised values."""
        name = _endpoint(name)
        changes = validated(EndpointUpdateSerializer, request.data)
        url = services.endpoint_update(self.identity, self.tenant, name, changes)
        return envelope("PATCHED", {"url": url, "values": request.data})

    @extend_schema(request=None, responses={200: ENDPOINT_DELETED_ANSWER}, summary="Delete an endpoint")
    def delete(self, request: Request, name: str) -> Response:
        url = services.endpoint_delete(self.identity, self.tenant, _endpoint(name))
        return envelope("DELETED", {"url": url})


class EndpointReplicasView(TenantView):
    @extend_schema(
        request=EndpointScaleSerializer,
        responses=ENDPOINT_PATCHED_ANSWER,
        summary="Scale an endpoint (the CR's scale subresource)",
    )
    def patch(self, request: Request, name: str) -> Response:
        name = _endpoint(name)
        replicas = validated(EndpointScaleSerializer, request.data)["replicas"]
        url = services.endpoint_scale(self.identity, self.tenant, name, replicas)
        return envelope("PATCHED", {"url": url, "values": request.data})


class EndpointEventsView(TenantView):
    @extend_schema(
        responses=ENDPOINT_EVENTS_ANSWER,
        summary="Events of the endpoint, its Deployment, ReplicaSets and pods, oldest first",
    )
    def get(self, request: Request, name: str) -> Response:
        events = selectors.endpoint_events(self.identity, self.tenant, _endpoint(name))
        return envelope("OK", {"events": events})


class EndpointLogsView(TenantView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "tail",
                {"type": "integer", "minimum": 1, "maximum": selectors.LOG_TAIL_MAX},
                description=f"Lines per container (default {selectors.LOG_TAIL_DEFAULT}).",
            )
        ],
        responses={200: ENDPOINT_LOGS_ANSWER, 400: error_response(400)},
        summary="The last ?tail=N (default 100) log lines of every pod of the endpoint",
    )
    def get(self, request: Request, name: str) -> Response:
        name = _endpoint(name)
        tail = validate_tail(request.query_params.get("tail"), selectors.LOG_TAIL_DEFAULT, selectors.LOG_TAIL_MAX)
        return envelope("OK", {"logs": selectors.endpoint_logs(self.identity, self.tenant, name, tail)})


class EndpointPauseView(TenantView):
    @extend_schema(
        request=None,
        responses=ENDPOINT_PATCHED_ANSWER,
        summary="Scale to 0, remembering the replica count on the endpoint",
    )
    def post(self, request: Request, name: str) -> Response:
        name = _endpoint(name)
        replicas = services.endpoint_pause(self.identity, self.tenant, name)
        return envelope("PATCHED", {"url": endpoint_url(name, self.tenant), "values": {"replicas": replicas}})


class EndpointResumeView(TenantView):
    @extend_schema(
        request=None, responses=ENDPOINT_PATCHED_ANSWER, summary="Scale back to the replica count remembered by pause"
    )
    def post(self, request: Request, name: str) -> Response:
        name = _endpoint(name)
        replicas = services.endpoint_resume(self.identity, self.tenant, name)
        return envelope("PATCHED", {"url": endpoint_url(name, self.tenant), "values": {"replicas": replicas}})


class EndpointMetricsView(TenantView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "range",
                {"type": "string", "pattern": "^[0-9]{1,6}[smhd]$"},
                description="How far back, 5m to 7d (default 1h).",
            ),
            OpenApiParameter(
                "step",
                {"type": "string", "pattern": "^[0-9]{1,6}[smhd]$"},
                description="Between points, at least 5s and at most 1000 points (default: about 120 points).",
            ),
        ],
        responses={200: ENDPOINT_TRAFFIC_ANSWER, 400: error_response(400), 503: error_response(503)},
        summary="Request rate, error rate and latency p50/p95 of the endpoint over time, from Prometheus",
    )
    def get(self, request: Request, name: str) -> Response:
        """``{"start", "end", "step", "series": {"requestRate", "errorRate", "latencyP50Ms", "latencyP95Ms"}}``,
        each series ``[[unix seconds, value or null], ...]``; 503 ``metrics_not_configured`` without Prometheus."""
        name = _endpoint(name)
        seconds, step = validate_traffic_query(request.query_params)
        traffic = selectors.endpoint_traffic(self.identity, self.tenant, name, seconds=seconds, step=step)
        return envelope("OK", traffic)
