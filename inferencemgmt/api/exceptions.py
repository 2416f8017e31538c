"""The one error shape, ``{"title", "description"?, "code"}``, for every failure.

DRF errors, our domain errors and Django's own 400/403/404/500 all end here, so no client ever sees
DRF's ``{"detail": ...}``, an HTML error page or a stack trace. Codes are stable and published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from inferencemgmt.errors import (
    BadRequest,
    Forbidden,
    ImmError,
    MalformedJSON,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

#: Sent with every 401 so that DRF keeps the 401 (it turns 401 without a challenge into 403).
WWW_AUTHENTICATE = 'Bearer realm="imm"'


def missing_token_error() -> NotAuthenticated:
    return NotAuthenticated("Auth token required", "Missing auth token", code="auth_token_missing")


def _first_validation_message(detail: Any, path: str = "") -> str:
    """Name the first failing field, as the original's jsonschema messages did."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            return _first_validation_message(value, f"{path}.{name}".strip(".") if name else path)
        return "invalid input"
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, (dict, list)):
            return _first_validation_message(first, path)
        return f"{path}: {first}" if path else str(first)
    return f"{path}: {detail}" if path else str(detail)


def as_domain_error(exc: BaseException) -> ImmError | None:
    """Translate a framework exception into a domain error; None for unexpected ones (defects)."""
    if isinstance(exc, ImmError):
        return exc
    if isinstance(exc, drf.NotAuthenticated):
        return missing_token_error()
    if isinstance(exc, drf.AuthenticationFailed):
        return NotAuthenticated(description="Token not valid.")
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return Forbidden(description="Insufficient permissions")
    if isinstance(exc, (drf.NotFound, Http404)):
        return NotFound(description="The requested resource does not exist")
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(description=str(exc.detail))
    if isinstance(exc, drf.ParseError):
        return MalformedJSON(description=str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType(description=str(exc.detail))
    if isinstance(exc, drf.ValidationError):
        return ValidationFailed(description=_first_validation_message(exc.detail))
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(description="The request body is larger than the server accepts.")
    if isinstance(exc, drf.APIException):
        return BadRequest(str(exc.detail), code=str(exc.default_code), status=exc.status_code)
    return None


def _headers_of(error: ImmError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return headers


def _internal_error() -> ImmError:
    return ImmError()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF ``EXCEPTION_HANDLER``: every exception raised in an API view ends here."""
    error = as_domain_error(exc)
    if error is None:
        logger.exception("Unhandled error in %s", type(context.get("view")).__name__)
        error = _internal_error()
    elif error.status >= 500:
        logger.warning("Upstream failure answered with %s: %s", error.status, error.code)
    return Response(error.as_body(), status=error.status, headers=_headers_of(error))


def error_response(error: ImmError) -> HttpResponse:
    """The same body outside DRF (Django-level handlers, middleware), byte-for-byte."""
    response = HttpResponse(
        json.dumps(error.as_body()),
        status=error.status,
        content_type="application/json; charset=utf-8",
    )
    for name, value in _headers_of(error).items():
        response[name] = value
    return response


class DomainErrorMiddleware:
    """Renders domain errors raised by plain Django views (console, login) in the error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ImmError):
            return error_response(exception)
        return None


# Django's handler400/403/404/500 (wired in urls.py).
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return error_response(PayloadTooLarge(description="The request body is larger than the server accepts."))
    return error_response(BadRequest(description="The request could not be understood."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(Forbidden(description="Insufficient permissions"))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(NotFound(description=f"No route matches {request.path}"))


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(_internal_error())
