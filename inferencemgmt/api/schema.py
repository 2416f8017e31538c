"""How drf-spectacular describes our routes (the ``DEFAULT_SCHEMA_CLASS`` and its hooks).

The views are plain APIViews whose bodies are checked by our strict fields, so the generator needs
three things it cannot guess: the JSON types of those fields, that the documented DELETE routes take
a body, and the one error shape behind every 4xx/5xx (declared here once instead of on every view).
Importing this module registers the field extensions; DRF imports it to build any schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework.permissions import AllowAny

from inferencemgmt.api.openapi import ErrorSerializer

#: What each error status means on our routes (the codes are in docs/api-conventions.md).
ERROR_MEANINGS = {
    "400": "Bad input: malformed JSON (`malformed_json`) or a failed validation naming the first field.",
    "401": "No token, or an invalid or expired one (`auth_token_*`).",
    "403": "Not allowed (`forbidden`), or Kubernetes RBAC or the store refused the caller.",
    "404": "Unknown tenant, endpoint, model, serving, upload or task.",
    "409": "Duplicate, in use, a quantity limit reached, or a concurrent change upstream (title `409 Conflict`).",
    "411": "A part without a Content-Length.",
    "413": "The body is larger than the server accepts (`payload_too_large`).",
    "415": "The body is not JSON (`unsupported_media_type`).",
    "500": "A defect (`internal_error`); nothing internal is in the body.",
    "502": "An upstream (Kubernetes, object store, identity provider) answered something unusable.",
    "503": "An upstream is unreachable or not configured; `Retry-After` says when to try again.",
}


def error_response(status: int | str) -> OpenApiResponse:
    """The error body under ``status``, for views that declare a status of their own (409, 411)."""
    return OpenApiResponse(ErrorSerializer, description=ERROR_MEANINGS[str(status)])


def documented_paths_without_trailing_slash(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Routes are ``^tasks/?$``; document them as the original did, ``/tasks`` (the slash is optional)."""
    return [(path.rstrip("/") or "/", *rest) for path, *rest in endpoints]


class ImmAutoSchema(AutoSchema):
    """AutoSchema plus our two conventions: DELETE bodies and the error statuses every route shares."""

    def _get_request_body(self, direction: Direction = "request") -> Any:
        """drf-spectacular documents bodies for POST/PUT/PATCH only; our documented ``DELETE /tenants``,
        ``DELETE .../endpoints`` and ``DELETE .../models`` take one (``{"name"}``, ...), so a DELETE
        that declares a request serializer gets it documented like a POST would."""
        if self.method != "DELETE":
            return super()._get_request_body(direction)  # type: ignore[no-untyped-call]
        self.method = "POST"
        try:
            return super()._get_request_body(direction)  # type: ignore[no-untyped-call]
        finally:
            self.method = "DELETE"

    def _takes_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE") and self.get_request_serializer() is not None

    def _signed_in(self) -> bool:
        return bool(self.view.get_authenticators()) and not any(
            isinstance(permission, AllowAny) for permission in self.view.get_permissions()
        )

    def shared_error_statuses(self) -> list[str]:
        """The statuses any route of this kind can answer, whatever its own logic."""
        statuses = ["500"]
        if self._signed_in():
            # Verifying the token can reach the identity provider (keys), and every signed-in route
            # acts through Kubernetes or the store: each can be refused or be down.
            statuses += ["401", "403", "502", "503"]
            if self.method != "GET":
                # A duplicate, a limit, an object in use, or a concurrent change upstream.
                statuses.append("409")
        if self._takes_body():
            statuses += ["400", "413", "415"]
        if any(parameter.get("in") == "path" for parameter in self._get_parameters()):
            statuses.append("404")
        return sorted(statuses)

    def _get_response_bodies(self, direction: Direction = "response") -> Any:
        """The view's own answers, then the shared error statuses it did not declare itself.

        A query parameter the view checks is its own 400 (declared on the view): not every
        parameter is checked (``?view=`` falls back to the plain list)."""
        responses = super()._get_response_bodies(direction)
        for status in self.shared_error_statuses():
            if status not in responses:
                responses[status] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    error_response(status), status, direction=direction
                )
        return dict(sorted(responses.items()))


class _StrictStringSchema(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """``StrictString``: a JSON string with its length and pattern (``VersionPolicyField`` too)."""

    target_class = "inferencemgmt.api.validation.StrictString"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = {"type": "string"}
        if field.min_length is not None:
            schema["minLength"] = field.min_length
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if field.pattern is not None:
            schema["pattern"] = field.pattern
        return schema


class _StrictIntegerSchema(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """``StrictInteger``: a JSON integer (never a string or a boolean) with its bounds."""

    target_class = "inferencemgmt.api.validation.StrictInteger"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = {"type": "integer"}
        if field.minimum is not None:
            schema["minimum"] = field.minimum
        if field.maximum is not None:
            schema["maximum"] = field.maximum
        return schema


class _StrictBooleanSchema(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    target_class = "inferencemgmt.api.validation.StrictBoolean"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        return {"type": "boolean"}
