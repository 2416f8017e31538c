"""Request ids in every log line, and a last line of defence against secrets in logs.

The id comes from a sane ``X-Request-ID`` header (so a proxy's id follows the request through) or is
made fresh, is echoed in the response, and travels in a context variable so that log lines written by
any layer (services, kube.py, objectstore.py) carry it without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("imm_request_id", default="-")
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def current_request_id() -> str:
    return _current.get()


@contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Bind an id for the duration of a block (Celery tasks use the operation id)."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _ACCEPTABLE_ID.fullmatch(offered) else uuid.uuid4().hex
        # Not reset on the way out: Django logs 4xx/5xx responses after the middleware chain
        # returned; the id is cleared when the request finishes (below).
        _current.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


@receiver(request_finished)
def _forget_request_id(**kwargs: object) -> None:
    _current.set("-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get()
        return True


# A JWT is three base64url segments, the first two starting with '{"' encoded ("eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


class RedactSecretsFilter(logging.Filter):
    """Masks JWTs and bearer credentials in the final message.

    We never log tokens on purpose; this catches the accidental case (an exception text from a
    library that echoes a header or a URL with a token in it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _BEARER.sub(r"\1[redacted]", _JWT.sub("[redacted-jwt]", message))
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True
