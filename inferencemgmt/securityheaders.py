"""Content-Security-Policy for every response, with one relaxed policy for the Swagger UI page.

Django 5.2 sets X-Frame-Options, Referrer-Policy, nosniff and HSTS itself (settings in the
"Security headers" block); it has no CSP, so this middleware adds one. The console loads only its own
scripts and styles, so a strict policy costs nothing and makes an injected ``<script>`` inert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
# drf-spectacular's Swagger UI loads its assets from a CDN and starts them with an inline script.
SWAGGER_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://cdn.jsdelivr.net; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def swagger_policy(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view whose page needs the Swagger UI's CDN assets."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = view(request, *args, **kwargs)
        response[HEADER] = SWAGGER_POLICY
        return response

    return wrapped


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = settings.IMM_CONTENT_SECURITY_POLICY
        return response
