"""Prometheus metrics of every process (API, worker, controller), in one place.

Why one module: the label sets are the contract that keeps the number of series bounded, so they are
declared together and nowhere else. API metrics are labelled by the resolver's route template
(``tenants/<name>``), never by a raw path or a tenant name; upstream calls by the part called (the
three of ``inferencemgmt.errors``); operations by their kind (a Celery task name); reconciles by
their result word. No label ever carries a value a client chose.

gunicorn runs several worker processes: each keeps its own values, and a scrape must see their sum.
prometheus-client's multiprocess mode does that when ``PROMETHEUS_MULTIPROC_DIR`` names a directory
before this module is imported (``gunicorn.conf.py`` makes a fresh one per server start);
``registry()`` then reads every process's files. Without it (the worker's thread pool, the
controller, tests) the values live in this process and the default registry serves them.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from wsgiref.simple_server import WSGIServer

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from inferencemgmt.errors import ImmError

#: Seconds. API requests and upstream calls: most answer in milliseconds, uploads and waits in minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Seconds. Operations and queue waits: tenant provisioning takes seconds to minutes.
OPERATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

API_REQUESTS = Counter(
    "imm_api_requests",
    "API and console requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
API_LATENCY = Histogram(
    "imm_api_request_duration_seconds",
    "Time to answer a request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
API_IN_FLIGHT = Gauge("imm_api_requests_in_flight", "Requests being answered now.", multiprocess_mode="livesum")
UPSTREAM_CALLS = Counter(
    "imm_upstream_calls",
    "Calls to an upstream system, by system and outcome (ok, rejected: a 4xx, error: 5xx or unreachable).",
    ["system", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "imm_upstream_call_duration_seconds", "Time of one upstream call, by system.", ["system"], buckets=LATENCY_BUCKETS
)
OPERATIONS = Counter("imm_operations", "Operations that reached a final state, by kind and state.", ["kind", "state"])
OPERATION_DURATION = Histogram(
    "imm_operation_duration_seconds",
    "From an operation's first start to its final state, by kind.",
    ["kind"],
    buckets=OPERATION_BUCKETS,
)
OPERATION_RETRIES = Counter(
    "imm_operation_retries", "Operation runs handed back for a retry after a transient upstream error.", ["kind"]
)
OPERATION_QUEUE_WAIT = Histogram(
    "imm_operation_queue_wait_seconds",
    "From an operation being queued (or handed back) to a worker claiming it.",
    ["kind"],
    buckets=OPERATION_BUCKETS,
)
RECONCILES = Counter("imm_controller_reconciles", "Reconciles of InferenceEndpoints, by result.", ["result"])
RECONCILE_DURATION = Histogram(
    "imm_controller_reconcile_duration_seconds", "Time of one reconcile.", buckets=LATENCY_BUCKETS
)
WORKQUEUE_DEPTH = Gauge(
    "imm_controller_workqueue_depth", "Keys waiting in the controller's work queue.", multiprocess_mode="livemax"
)
WORKQUEUE_RETRIES = Counter("imm_controller_workqueue_retries", "Keys queued again after a failed reconcile.")
LEADER = Gauge("imm_controller_leader", "1 while this controller holds the leader lease.", multiprocess_mode="livemax")

#: Results a reconcile may be counted under; anything else is "other" (the set stays bounded).
RECONCILE_RESULTS = frozenset({"Ready", "Progressing", "Degraded", "Deleted", "Deleting", "error", "crashed"})


def multiprocess_dir() -> str:
    """The directory of multiprocess mode, or "" (the library reads the same variable at import)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process."""
    if not multiprocess_dir():
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def exposition() -> HttpResponse:
    """The text format of ``registry()`` as an HTTP answer."""
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


# --- API requests ------------------------------------------------------------------------------------
UNMATCHED = "<unmatched>"
_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*(?:\([^()]*\)[^()]*)*\)")


@lru_cache(maxsize=512)
def route_label(route: str) -> str:
    """A resolver route as a readable template: ``^tenants/(?P<name>[^/]+)/?$`` -> ``tenants/<name>``.

    The input is one of the project's own patterns (a bounded set), never the request path.
    """
    label = _GROUP.sub(r"<\1>", route).removeprefix("^").removesuffix("$").removesuffix("/?")
    return label or UNMATCHED


def request_route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED
    return route_label(str(match.route))


#: Methods counted by name; anything else (a client may send any token) is "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every request by route template, method and status; tracks in-flight ones."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        API_IN_FLIGHT.inc()
        try:
            response = self.get_response(request)
        finally:
            API_IN_FLIGHT.dec()
        method = request.method if request.method in _METHODS else "other"
        route = request_route(request)
        API_REQUESTS.labels(route, method, str(response.status_code)).inc()
        API_LATENCY.labels(route, method).observe(time.perf_counter() - started)
        return response


# --- upstream calls ----------------------------------------------------------------------------------
@contextmanager
def upstream_call(system: str) -> Iterator[None]:
    """Time one call to ``system`` and count its outcome by the domain error it ended with, if any."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except GeneratorExit:  # a generator's consumer stopped reading: not a failed call
        raise
    except ImmError as exc:
        outcome = "error" if exc.status >= 500 else "rejected"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        UPSTREAM_CALLS.labels(system, outcome).inc()
        UPSTREAM_LATENCY.labels(system).observe(time.perf_counter() - started)


# --- the worker's and the controller's port ----------------------------------------------------------
_served: list[tuple[WSGIServer, threading.Thread]] = []


def serve(port: int, address: str) -> int:
    """Expose ``registry()`` on ``address:port`` from a background thread; returns the bound port.

    Port 0 asks the system for a free one (tests). Called once per process; a second call reuses it.
    """
    if _served:
        return int(_served[0][0].server_port)
    server, thread = start_http_server(port, addr=address, registry=registry())
    _served.append((server, thread))
    return int(server.server_port)


def scrape_token_matches(offered: str, expected: str) -> bool:
    """Constant-time comparison of a bearer token with the configured scrape token (never empty)."""
    return bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())
