"""Domain errors: the one vocabulary every layer raises and the one exception handler renders.

Each error carries the HTTP status, a stable machine ``code`` (published; never renamed), a
``title`` (kept word-for-word where the original clients grep for it) and whether retrying can help.
Upstream failures name the part that failed so an operator knows where to look.
"""

from __future__ import annotations

from typing import Any, ClassVar

KUBERNETES = "kubernetes"
OBJECT_STORE = "object store"
IDENTITY_PROVIDER = "identity provider"
DATABASE = "database"
REDIS = "redis"
PROMETHEUS = "prometheus"


def _display(part: str) -> str:
    return part[:1].upper() + part[1:]


def _code(part: str) -> str:
    return part.replace(" ", "_")


class ImmError(Exception):
    """Base of every error the API turns into ``{"title", "description"?, "code"}``."""

    default_status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"
    default_title: ClassVar[str] = "Internal server error"
    #: True when the same request may succeed later without any change by the caller.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        title: str | None = None,
        description: str | None = None,
        *,
        code: str | None = None,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        self.status = status or self.default_status
        self.title = title or self.default_title
        self.description = description
        self.code = code or self.default_code
        self.retry_after = retry_after
        super().__init__(self.title if description is None else f"{self.title}: {description}")

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title}
        if self.description is not None:
            body["description"] = self.description
        body["code"] = self.code
        return body


class BadRequest(ImmError):
    default_status = 400
    default_code = "bad_request"
    default_title = "Bad request"


class ValidationFailed(BadRequest):
    """Title kept from the original (clients match ``Failed data validation``)."""

    default_code = "validation_failed"
    default_title = "Failed data validation"


class MalformedJSON(BadRequest):
    default_code = "malformed_json"
    default_title = "Malformed JSON"


class NotAuthenticated(ImmError):
    default_status = 401
    default_code = "auth_token_invalid"
    default_title = "Authentication required"


class Forbidden(ImmError):
    default_status = 403
    default_code = "forbidden"
    default_title = "Forbidden"


class NotFound(ImmError):
    default_status = 404
    default_code = "not_found"
    default_title = "404 Not Found"


class MethodNotAllowed(ImmError):
    default_status = 405
    default_code = "method_not_allowed"
    default_title = "Method not allowed"


class Conflict(ImmError):
    default_status = 409
    default_code = "conflict"
    default_title = "409 Conflict"


class PayloadTooLarge(ImmError):
    default_status = 413
    default_code = "payload_too_large"
    default_title = "Request body too large"


class UnsupportedMediaType(ImmError):
    default_status = 415
    default_code = "unsupported_media_type"
    default_title = "Unsupported media type"


class UpstreamError(ImmError):
    """An upstream answered, but not in a way we can use (502)."""

    default_status = 502
    default_code = "upstream_error"
    default_title = "Upstream error"

    def __init__(
        self, part: str, description: str | None = None, *, code: str | None = None, upstream_status: int | None = None
    ) -> None:
        self.part = part
        #: The HTTP status the upstream answered, when it answered one (callers branch on it, never on text).
        self.upstream_status = upstream_status
        super().__init__(
            f"Error from {_display(part)}",
            description,
            code=code or f"{_code(part)}_error",
        )


class UpstreamUnavailable(ImmError):
    """An upstream is unreachable or overloaded (503); a retry later can help."""

    default_status = 503
    default_code = "upstream_unavailable"
    default_title = "Upstream unavailable"
    retryable = True

    def __init__(
        self,
        part: str,
        description: str | None = None,
        *,
        retry_after: int = 5,
        code: str | None = None,
    ) -> None:
        self.part = part
        super().__init__(
            f"{_display(part)} is unavailable",
            description,
            code=code or f"{_code(part)}_unavailable",
            retry_after=retry_after,
        )
