"""Liveness (``/healthz``) and readiness (``/readyz``) for Kubernetes probes and operators.

Liveness says only that the process serves requests: restarting the pod would not fix a broken
upstream. Readiness checks every part a request may need, in parallel with a bound, and names what is
down, because "not ready" without a reason costs an operator a hunt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inferencemgmt import kube, objectstore
from inferencemgmt.api.openapi import ErrorSerializer, envelope_answer, shape
from inferencemgmt.api.responses import envelope
from inferencemgmt.auth.oidc import provider
from inferencemgmt.errors import DATABASE, IDENTITY_PROVIDER, KUBERNETES, OBJECT_STORE, REDIS, ImmError

logger = logging.getLogger(__name__)


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this runs in a helper thread; do not leak its connection


def _redis() -> None:
    timeout = settings.IMM_READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


CHECKS: dict[str, Callable[[], None]] = {
    DATABASE: _database,
    REDIS: _redis,
    KUBERNETES: kube.ping,
    OBJECT_STORE: objectstore.ping,
    IDENTITY_PROVIDER: lambda: provider().check(),
}


def _outcome(check: Callable[[], None]) -> dict[str, Any]:
    try:
        check()
    except ImmError as exc:
        return {"ok": False, "error": exc.description or exc.title}
    except Exception as exc:  # a readiness probe reports failures, it does not raise them
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def readiness() -> dict[str, dict[str, Any]]:
    timeout = settings.IMM_READINESS_TIMEOUT_SECONDS
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    futures = {name: pool.submit(_outcome, check) for name, check in CHECKS.items()}
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=timeout)
        except FuturesTimeout:
            results[name] = {"ok": False, "error": f"no answer within {timeout:g}s"}
    pool.shutdown(wait=False, cancel_futures=True)
    return results


_CHECK = shape("ReadinessCheck", {"ok": serializers.BooleanField(), "error": serializers.CharField(required=False)})
_CHECKS = serializers.DictField(child=_CHECK, help_text="By part: database, redis, kubernetes, object store, ...")


class NotReadySerializer(ErrorSerializer):
    """The 503 of ``/readyz``: the error shape plus which parts are down."""

    checks = _CHECKS


class LivenessView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        description="Liveness: the process answers.",
        responses=envelope_answer("LivenessAnswer", "OK", shape("Liveness", {"alive": serializers.BooleanField()})),
    )
    def get(self, request: Request) -> Response:
        return envelope("OK", {"alive": True})


class ReadinessView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        description="Readiness: database, Redis, Kubernetes, object store, identity provider.",
        responses={
            200: envelope_answer("ReadinessAnswer", "OK", shape("Readiness", {"checks": _CHECKS})),
            503: OpenApiResponse(NotReadySerializer, description="`not_ready`: `checks` names what is down."),
        },
    )
    def get(self, request: Request) -> Response:
        checks = readiness()
        down = [name for name, outcome in checks.items() if not outcome["ok"]]
        if not down:
            return envelope("OK", {"checks": checks})
        logger.warning("Not ready; down: %s", ", ".join(down))
        body = {
            "title": "Not ready",
            "description": f"Unavailable: {', '.join(down)}",
            "code": "not_ready",
            "checks": checks,
        }
        return Response(body, status=503, headers={"Retry-After": "5"})
