"""``GET /metrics``: the API's Prometheus metrics, for platform admins and the platform's scraper.

A scraper cannot log in through the identity provider, so it presents a bearer token of its own
(``IMM_METRICS_SCRAPE_TOKEN_FILE``), compared in constant time. Anyone else needs a platform admin's
token: the series name routes and operation kinds, which outsiders have no business counting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from inferencemgmt import metrics
from inferencemgmt.api.exceptions import WWW_AUTHENTICATE
from inferencemgmt.auth.authentication import (
    ConsoleSessionAuthentication,
    OIDCTokenAuthentication,
    token_from_header,
)
from inferencemgmt.auth.identity import Identity


class Scraper:
    """The principal of a request that presented the scrape token (it may read metrics, nothing else)."""

    is_authenticated = True


class ScrapeTokenAuthentication(BaseAuthentication):
    """Accepts exactly the configured scrape token; any other credential is left to the usual classes."""

    def authenticate(self, request: Request) -> tuple[Scraper, None] | None:
        expected = settings.IMM_METRICS_SCRAPE_TOKEN
        header = request.META.get("HTTP_AUTHORIZATION")
        if not expected or header is None:
            return None
        if metrics.scrape_token_matches(token_from_header(header), expected):
            return Scraper(), None
        return None

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class IsScraperOrPlatformAdmin(BasePermission):
    message = "Insufficient permissions"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, Scraper) or (isinstance(user, Identity) and user.is_admin)


@extend_schema(exclude=True)  # Prometheus text format, not part of the JSON API
class MetricsView(APIView):
    # No robot tokens: a robot is never a platform admin.
    authentication_classes = [ScrapeTokenAuthentication, OIDCTokenAuthentication, ConsoleSessionAuthentication]
    permission_classes = [IsScraperOrPlatformAdmin]

    def get(self, request: Request) -> HttpResponse:
        return metrics.exposition()
