"""Request ids in every log line, and a last line of defence against secrets in logs.

Redaction happens once per record, when it is made (a log record factory installed by
``configure_logging``, Django's ``LOGGING_CONFIG``), so it holds for every logger and handler of
every process, including those configured by runserver, gunicorn and Celery themselves.

The id comes from a sane ``X-Request-ID`` header (so a proxy's id follows the request through) or is
made fresh, is echoed in the response, and travels in a context variable so that log lines written by
any layer (services, kube.py, objectstore.py) carry it without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


# --- redaction ---------------------------------------------------------------------------------------
# A JWT is three base64url segments, the first two starting with '{"' encoded ("eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Query parameters that carry credentials: the OIDC callback's authorization ``code`` and ``state``,
# tokens, secrets, passwords, presigned-URL signatures. Access logs (runserver's, gunicorn's) print
# the request line with its query string.
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:token|secret|password|passwd|signature|credential)[\w.-]*"
    r"|code|state|session_state|nonce|api_?key|sig)=)[^&;#\s\"']*"
)
# The password of a URL's user information (``https://user:password@host/``).
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
#: A log message (and a traceback) is cut to this many characters: a hostile name quoted in an
#: exception must not turn one log line into megabytes.
LOG_MESSAGE_MAX = 16 * 1024
LOG_TRACEBACK_MAX = 32 * 1024


def redact(text: str) -> str:
    """``text`` with tokens, bearer credentials, secret query parameters and URL passwords masked."""
    text = _JWT.sub("[redacted-jwt]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _SECRET_PARAMETER.sub(r"\1[redacted]", text)
    return _URL_PASSWORD.sub(r"\1[redacted]@", text)


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


#: Called with each record and its message before redaction. Empty in production: the security
#: suite registers one to prove that secrets are not logged in the first place (redaction is the
#: last line of defence, not the first).
before_redaction: list[Callable[[logging.LogRecord, str], None]] = []


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in the record's message and traceback, and bound both, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a broken logging call: the handler reports it, as usual
        return
    traceback = ""
    if record.exc_info and not record.exc_text:
        traceback = logging.Formatter().formatException(record.exc_info)
    for observe in before_redaction:
        observe(record, f"{message}\n{traceback}" if traceback else message)
    clean = _bounded(redact(message), LOG_MESSAGE_MAX)
    if clean != message:
        record.msg, record.args = clean, None
    if traceback:
        record.exc_text = _bounded(redact(traceback), LOG_TRACEBACK_MAX)


class RedactSecretsFilter(logging.Filter):
    """The same redaction as a handler filter (settings.LOGGING's console handler).

    The record factory below already redacts every record of the process; this filter keeps
    handlers configured by hand (and records made before the factory was installed) covered too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingFactory:
    """Wraps the process's log record factory: every record, of every logger, reaches every handler
    (ours, runserver's ``django.server``, gunicorn's access log, Celery's, the controller's) redacted."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        redact_record(record)
        return record


def install_redaction() -> None:
    """Make every log record of this process pass ``redact_record`` when it is created (idempotent)."""
    if not isinstance(logging.getLogRecordFactory(), _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(logging.getLogRecordFactory()))


def configure_logging(config: dict[str, Any]) -> None:
    """Django's ``LOGGING_CONFIG``: every Django process (runserver, gunicorn's workers, the Celery
    worker and beat, ``manage.py run_controller``) calls it from ``django.setup()``."""
    install_redaction()
    logging.config.dictConfig(config)
