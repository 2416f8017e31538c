"""Records every audited request (``audit.actions``) once, after its answer is known.

It sits inside the authentication and message middleware, so it sees the identity DRF or the
console session resolved, and a console page's error message before it is stored for the next page.
Requests without an identity (401s, console redirects to sign in) are not recorded: there is no one
to name, and recording them would let anyone fill the table; the access log keeps them.

The project has no request-wide transaction (``ATOMIC_REQUESTS`` is off; each service commits its own
writes and an operation row commits when it is created), so the record is its own insert, made
right after the view answered. An ``ATOMIC_REQUESTS`` deployment would still see the view's writes
committed first (the transaction wraps only the view).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from audit import services
from audit.actions import Action, action_for
from inferencemgmt.auth.identity import Identity
from inferencemgmt.operations.services import operations_collected
from inferencemgmt.requestlog import current_request_id
from inferencemgmt.views import session_identity

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_STATE = "_imm_audit"


def client_address(request: HttpRequest) -> str:
    """The peer's address, or with ``DJANGO_TRUST_PROXY_HEADERS`` the one the trusted proxy saw
    (the last ``X-Forwarded-For`` entry: earlier ones are whatever the client claimed)."""
    candidate = request.META.get("REMOTE_ADDR", "")
    if settings.IMM_TRUST_PROXY_HEADERS:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            candidate = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return ""


def _body_fields(request: HttpRequest, action: Action) -> dict[str, Any]:
    """The JSON body's top-level fields, when the action names one and the body is a small JSON."""
    if not any(source.startswith("body:") for source in (action.tenant or "", *action.target)):
        return {}
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    if not 0 < length <= settings.IMM_MAX_JSON_BODY_BYTES:
        return {}
    try:
        parsed = json.loads(request.body)  # cached by Django: the view parses the same bytes
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}  # the view answers a malformed or too deeply nested body with its 400
    return parsed if isinstance(parsed, dict) else {}


def _value(source: str, kwargs: dict[str, Any], body: dict[str, Any], request: HttpRequest) -> str:
    kind, _, key = source.partition(":")
    value: Any = {"kw": kwargs, "body": body}.get(kind, {}).get(key)
    if kind == "form":
        value = request.POST.get(key) if request.content_type in _FORM_TYPES else None
    return "" if value is None or isinstance(value, dict | list) else str(value)


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _identity(request: HttpRequest) -> Identity | None:
    user = getattr(request, "user", None)
    if isinstance(user, Identity):
        return user  # the API: DRF puts its authenticated identity on the Django request too
    return session_identity(request) if user is not None else None


def _console_error(request: HttpRequest) -> str:
    """The error a console page queued for the next page (its redirect otherwise reads as a success)."""
    storage = getattr(request, "_messages", None)
    for message in getattr(storage, "_queued_messages", ()):
        if message.level >= messages.ERROR:
            return str(message.message)
    return ""


def _error(response: HttpResponse) -> str:
    data = getattr(response, "data", None)
    if response.status_code >= 400 and isinstance(data, dict):
        return str(data.get("code") or data.get("title") or "")
    return ""


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS or not settings.IMM_AUDIT_ENABLED:
            return self.get_response(request)
        started = timezone.now()
        with operations_collected() as operation_ids:
            response = self.get_response(request)
        found = getattr(request, _STATE, None)
        if found is not None:
            self._record(request, response, found, started, tuple(operation_ids))
        return response

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Look the route up once it is resolved, and read a body the view will parse later."""
        if request.method in SAFE_METHODS or not settings.IMM_AUDIT_ENABLED or request.resolver_match is None:
            return
        route = request.resolver_match.url_name or ""
        action = action_for(route, request.method or "", kwargs)
        if action is not None:
            setattr(request, _STATE, (route, action, dict(kwargs), _body_fields(request, action)))

    def _record(
        self,
        request: HttpRequest,
        response: HttpResponse,
        found: tuple[str, Action, dict[str, Any], dict[str, Any]],
        started: Any,
        operation_ids: tuple[Any, ...],
    ) -> None:
        identity = _identity(request)
        if identity is None:
            return
        route, action, kwargs, body = found
        tenant = _value(action.tenant, kwargs, body, request) if action.tenant else ""
        target = "/".join(part for part in (_value(s, kwargs, body, request) for s in action.target) if part)
        error = _error(response) or (_console_error(request) if route.startswith("console-") else "")
        services.audit_record(
            services.AuditEntry(
                time=started,
                username=identity.username,
                groups=identity.groups,
                robot=identity.service_account,
                action=action.name,
                tenant=tenant,
                target=target or tenant,
                method=request.method or "",
                route=route,
                status_code=response.status_code,
                error=error,
                operation_ids=operation_ids,
                request_id=current_request_id(),
                client_address=client_address(request),
            )
        )
