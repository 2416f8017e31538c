"""Reads of endpoints, each AS the caller: Kubernetes RBAC decides what a user may see.

List and view start from the InferenceEndpoint CRs (the original listed Deployments, so an endpoint
the controller had not rendered was invisible) and merge in the live Deployment and pod status,
always found by label selector (the original listed every pod in the namespace and crashed on an
unlabelled one). Objects are read as the API server's JSON: see ``endpoints.status``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from endpoints import status
from inferencemgmt import kube, objectstore, paging, prometheus
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import ImmError, NotFound, UpstreamError, UpstreamUnavailable
from inferencemgmt.resources import ENDPOINT_LABEL
from inferencemgmt.views import status_badge
from tenants.selectors import tenant_required

_LABEL_VALUE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# The Deployment's ReplicaSets and pods carry the controller's endpoint label (it sets it on the pod
# template whatever the serving template says), so one selector finds every child of an endpoint.
ENDPOINT_SELECTOR = ENDPOINT_LABEL
# A log tail big enough to debug, small enough to stay one response.
LOG_TAIL_DEFAULT = 100
LOG_TAIL_MAX = 10_000
# Events are read per involved object (events carry no labels); past this many pods the newest
# pods' events are what an operator needs.
EVENT_PODS_MAX = 50
# Counting endpoints walks the list in pages of this many (only the first when the API server says
# how many remain).
COUNT_PAGE_SIZE = 500


def endpoint_not_found(name: str) -> NotFound:
    return NotFound(description=f"Endpoint {name} does not exist", code="endpoint_not_found")


def endpoint_cr(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    """The CR as the caller reads it; 404 ``Endpoint <name> does not exist`` when absent."""
    try:
        return kube.read_endpoint(identity, tenant, name)
    except NotFound:
        raise endpoint_not_found(name) from None


def _label_selector(name: str) -> str:
    return f"{ENDPOINT_SELECTOR}={name}"


def endpoint_list(identity: Identity, tenant: str) -> list[dict[str, Any]]:
    """``[{name, url, status}]``, every page (for callers that need the whole list)."""
    return paging.all_pages(lambda page: endpoint_page(identity, tenant, page), endpoint_page_scope(identity, tenant))


def endpoint_page_scope(identity: Identity, tenant: str) -> str:
    return paging.scope_of("endpoints", identity.username, tenant=tenant)


def endpoint_page(identity: Identity, tenant: str, page: paging.PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``[{name, url, status}]`` and the next page's token: two list calls, whatever the
    number of endpoints in the tenant or on the page.

    The CRs come ``page.limit`` at a time (Kubernetes ``limit``/``continue``, by name); their
    Deployments are then found with one set-based label selector naming exactly the page's endpoints
    (``endpoint in (a,b,...)``), so a page never reads the whole namespace's Deployments and never
    makes a call per endpoint.
    """
    tenant_required(tenant)
    crs = kube.endpoints(identity, tenant, limit=page.limit, continue_token=page.kube_continue)
    items = list(crs.get("items") or [])
    # Only names a label value can hold go into the selector (a CR written around the API could
    # name anything; its status is then "pending", as for an endpoint with no Deployment).
    children = sorted({child for child in map(status.endpoint_name_of, items) if _LABEL_VALUE.fullmatch(child)})
    by_endpoint: dict[str, Any] = {}
    if children:
        deployments = kube.deployments(
            identity, tenant, label_selector=f"{ENDPOINT_SELECTOR} in ({','.join(children)})"
        )
        by_endpoint = {
            str(item["metadata"]["labels"][ENDPOINT_LABEL]): item
            for item in deployments.get("items", [])
            # A Deployment without its owner is a leftover (being collected), not the endpoint's.
            if any(ref.get("kind") == "InferenceEndpoint" for ref in item["metadata"].get("ownerReferences") or [])
        }
    return status.list_entries(items, by_endpoint, tenant), page.kube_token(crs.get("metadata"))


def _children(identity: Identity, tenant: str, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    selector = _label_selector(name)
    deployments = kube.deployments(identity, tenant, label_selector=selector)
    pods = kube.pods(identity, tenant, label_selector=selector)
    found = deployments.get("items") or []
    return (found[0] if found else None), list(pods.get("items") or [])


def endpoint_view(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    """The documented view (docs/compatibility.md) plus status, reason, message, paused and conditions."""
    tenant_required(tenant)
    cr = endpoint_cr(identity, tenant, name)
    child = status.endpoint_name_of(cr)
    deployment, pods = _children(identity, tenant, child)
    return status.view(cr, deployment, pods, tenant, _service(identity, tenant, child))


def _service(identity: Identity, tenant: str, name: str) -> dict[str, Any] | None:
    """The endpoint's Service (it says how to call the endpoint), or None before the controller made it."""
    try:
        return kube.read_service(identity, tenant, name)
    except NotFound:
        return None


def endpoint_events(identity: Identity, tenant: str, name: str) -> list[dict[str, Any]]:
    """Events of the endpoint, its children (all named after it), its ReplicaSets and its pods."""
    tenant_required(tenant)
    cr = endpoint_cr(identity, tenant, name)
    child = status.endpoint_name_of(cr)
    selector = _label_selector(child)
    replicasets = kube.replica_sets(identity, tenant, label_selector=selector)
    pods = kube.pods(identity, tenant, label_selector=selector).get("items") or []
    pods.sort(key=lambda pod: str(pod["metadata"].get("creationTimestamp") or ""), reverse=True)
    involved = {("InferenceEndpoint", name)} | {
        (kind, child) for kind in ("Deployment", "Service", "Ingress", "ConfigMap")
    }
    involved |= {("ReplicaSet", str(rs["metadata"]["name"])) for rs in replicasets.get("items") or []}
    involved |= {("Pod", str(pod["metadata"]["name"])) for pod in pods[:EVENT_PODS_MAX]}
    events: list[dict[str, Any]] = []
    for object_name in sorted({object_name for _, object_name in involved}):
        found = kube.events(identity, tenant, field_selector=f"involvedObject.name={object_name}")
        events.extend(
            event
            for event in found.get("items") or []
            if (event.get("involvedObject", {}).get("kind"), object_name) in involved
        )
    return status.event_entries(events)


def _logs_unavailable(name: str, reasons: list[str]) -> ImmError:
    return ImmError(
        "Logs are not available",
        f"The cluster keeps no logs for the pods of endpoint {name} ({'; '.join(reasons)}).",
        code="endpoint_logs_unavailable",
        status=502,
    )


def endpoint_logs(identity: Identity, tenant: str, name: str, tail: int) -> list[dict[str, Any]]:
    """The last ``tail`` lines of every container of every pod of the endpoint.

    A pod whose node serves no logs (kwok's fake nodes, a node that is gone) gets an ``error``
    instead of lines; when no pod has any, the answer is a 502 that says so, never an empty 200.
    """
    tenant_required(tenant)
    cr = endpoint_cr(identity, tenant, name)
    selector = _label_selector(status.endpoint_name_of(cr))
    pods = kube.pods(identity, tenant, label_selector=selector).get("items") or []
    entries: list[dict[str, Any]] = []
    reasons: list[str] = []
    for pod in sorted(pods, key=lambda pod: str(pod["metadata"]["name"])):
        pod_name = str(pod["metadata"]["name"])
        for container in (pod.get("spec") or {}).get("containers") or []:
            entry: dict[str, Any] = {"pod": pod_name, "container": container["name"], "lines": None}
            try:
                text = kube.pod_log(identity, tenant, pod_name, container=container["name"], tail_lines=tail)
                entry["lines"] = text.splitlines()
            except (NotFound, UpstreamError, UpstreamUnavailable) as exc:
                # The pod is listed, so a 404 here is the node's (no log), not the pod's.
                reason = exc.description or exc.title
                entry["error"] = reason
                reasons.append(f"pod {pod_name}: {reason}")
            entries.append(entry)
    if entries and all(entry["lines"] is None for entry in entries):
        raise _logs_unavailable(name, reasons[:3])
    return entries


def resource_quotas(identity: Identity, tenant: str) -> list[dict[str, Any]]:
    """Every ResourceQuota of the tenant's namespace as the API server's JSON, the tenant's own first.

    Read as the caller, so an outsider is refused here, before anything is written.
    """
    quotas = kube.resource_quotas(identity, tenant).get("items") or []
    quotas.sort(key=lambda quota: quota["metadata"]["name"] != tenant)
    return quotas


def quota_hard(identity: Identity, tenant: str) -> dict[str, str]:
    """The tenant's ResourceQuota limits (all quotas of the namespace, the tenant's own first)."""
    hard: dict[str, str] = {}
    for quota in resource_quotas(identity, tenant):
        for key, value in ((quota.get("spec") or {}).get("hard") or {}).items():
            hard.setdefault(str(key), str(value))
    return hard


def endpoint_exists(identity: Identity, tenant: str, name: str) -> bool:
    """Whether the CR is there (as the caller), terminating or not: a create of it would be refused."""
    try:
        endpoint_cr(identity, tenant, name)
    except NotFound:
        return False
    return True


def endpoint_count(identity: Identity, tenant: str) -> int:
    """How many InferenceEndpoints the API server holds in the namespace, terminating ones included,
    as the quota controller counts them.

    Read from storage (no resourceVersion: a quorum read), in pages; the API server's
    ``remainingItemCount`` ends the walk after the first page when it is given.
    """
    count, token = 0, None
    while True:
        page = kube.endpoints(identity, tenant, limit=COUNT_PAGE_SIZE, continue_token=token)
        count += len(page.get("items") or [])
        metadata = page.get("metadata") or {}
        token = metadata.get("continue")
        if not token:
            return count
        remaining = metadata.get("remainingItemCount")
        if isinstance(remaining, int):
            return count + remaining


def model_available(tenant: str, model: str) -> bool:
    """True when ``<model>/<version>/...`` holds at least one non-empty object (docs/compatibility.md).

    Uses the platform's object-store credentials: callers have already proved, as the user, that
    they may act in the tenant (the CR was created as them). A missing bucket holds no model.
    """
    prefix = f"{model}/"
    try:
        with objectstore.s3_errors():
            pages = objectstore.client().get_paginator("list_objects_v2").paginate(Bucket=tenant, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    version, _, path = str(item["Key"])[len(prefix) :].partition("/")
                    if version and path and int(item.get("Size", 0)) > 0:
                        return True
    except NotFound:
        return False
    return False


def model_warning(tenant: str, model: str) -> str:
    """The documented ``warning``: empty when the model is there; never an error (docs/compatibility.md, Endpoints)."""
    try:
        available = model_available(tenant, model)
    except ImmError as exc:
        return f"{model} model availability could not be checked: {exc.title}"
    return "" if available else f"{model} model is not available on the platform"


#: Endpoint rows per page of the tenant page.
ROWS_PAGE_SIZE = 50


def endpoint_rows_page(identity: Identity, tenant: str, params: Any) -> dict[str, Any]:
    """One page of the tenant's endpoints for a console page, with their badge colours and the links to
    page on: the endpoints page, the tenant page's first paint and their polled fragments show the same page."""
    page = paging.page_request(params, endpoint_page_scope(identity, tenant), default=ROWS_PAGE_SIZE)
    entries, following = endpoint_page(identity, tenant, page)
    return {
        "endpoints": [{**entry, "badge": status_badge(entry["status"])} for entry in entries],
        "endpoints_following": following,
        "endpoints_current": params.get(paging.CONTINUE_PARAMETER) or "",
    }


# --- traffic (Prometheus) ----------------------------------------------------------------------------
#: The labels the scrape configuration puts on a serving pod's series: its namespace (the tenant) and
#: the value of the controller's endpoint label (the devstack's and the chart's documented config).
TRAFFIC_NAMESPACE_LABEL = "namespace"
TRAFFIC_ENDPOINT_LABEL = "endpoint"
#: Shortest window ``rate()`` looks back over: several scrapes, so one missed scrape is no gap.
TRAFFIC_RATE_WINDOW_SECONDS = 60


def _traffic_queries(tenant: str, child: str, window: str) -> dict[str, str]:
    """PromQL per series, for Triton's metrics (``nv_inference_*``; latency from its summaries).

    Label values are put in by ``prometheus.selector`` (checked names, escaped): nothing here comes
    from the request but the tenant and endpoint names, which were checked and resolved before.
    """
    labels = {TRAFFIC_NAMESPACE_LABEL: tenant, TRAFFIC_ENDPOINT_LABEL: child}
    success = prometheus.selector("nv_inference_request_success", **labels)
    failure = prometheus.selector("nv_inference_request_failure", **labels)
    queries = {
        "requestRate": f"sum(rate({success}[{window}])) + (sum(rate({failure}[{window}])) or vector(0))",
        "errorRate": f"sum(rate({failure}[{window}])) or (0 * sum(rate({success}[{window}])))",
    }
    for name, quantile in (("latencyP50Ms", "0.5"), ("latencyP95Ms", "0.95")):
        summary = prometheus.selector("nv_inference_request_summary_us", **labels, quantile=quantile)
        queries[name] = f"max({summary}) / 1000"
    return queries


def endpoint_traffic(identity: Identity, tenant: str, name: str, *, seconds: int, step: int) -> dict[str, Any]:
    """Request rate, error rate (per second) and latency p50/p95 (ms) of one endpoint over time.

    The caller must be able to read the endpoint (RBAC, as for the view); Prometheus is then asked
    as the platform, for that tenant's namespace and that endpoint's series only.
    """
    tenant_required(tenant)
    cr = endpoint_cr(identity, tenant, name)
    child = status.endpoint_name_of(cr)
    end = float(int(time.time()) // step * step)
    start = end - seconds
    window = f"{max(TRAFFIC_RATE_WINDOW_SECONDS, 2 * step)}s"
    series: dict[str, list[list[float | None]]] = {}
    for key, query in _traffic_queries(tenant, child, window).items():
        found = prometheus.query_range(query, start=start, end=end, step=step)
        series[key] = [[at, value] for at, value in found[0].points] if found else []
    return {"start": start, "end": end, "step": step, "series": series}
