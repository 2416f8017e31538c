"""Strict request fields with the original API's jsonschema-style messages.

The original validated bodies with jsonschema and answered with its first error message
(`'name' is a required property`, `'ab' is too short`, `'x' does not match '<regex>'`,
`'many' is not of type 'integer'`); clients and tests match those texts, so our fields speak
the same words. They are also stricter than DRF's defaults: a number is not a string, a string
or a boolean is not an integer, and `$` never lets a trailing newline through.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from inferencemgmt.errors import NotFound

# C0 and C1 control characters and DEL: invisible in logs and listings, NUL ends C strings, and
# PostgreSQL refuses NUL in text and JSON (a database error, a 500, for a query filter holding one).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes resource quantity (apimachinery's resource.Quantity), never negative here.
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"


def _json_repr(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def required_messages(name: str) -> dict[str, Any]:
    message = f"'{name}' is a required property"
    return {"required": message, "null": f"None is not of type 'string' ('{name}')"}


def matches(pattern: str, value: str) -> bool:
    """`$` in the documented patterns means end of string (fullmatch, no trailing newline)."""
    return re.fullmatch(pattern.removesuffix("$").removeprefix("^"), value) is not None


class StrictString(serializers.Field[str, str, str, Any]):
    """A JSON string only, with optional pattern and length checks in jsonschema's words.

    The checks run in the order of the original's schemas (``type``, ``pattern``, ``minLength``,
    ``maxLength``), whose first error was the answer: ``"_"`` is ``'_' does not match '<regex>'``,
    not ``is too short``. The documented patterns are linear-time, and the body size is bounded
    before parsing, so matching before the length check costs nothing a client could abuse.
    """

    def __init__(
        self, *, min_length: int | None = None, max_length: int | None = None, pattern: str | None = None, **kwargs: Any
    ) -> None:
        self.min_length, self.max_length, self.pattern = min_length, max_length, pattern
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"{_json_repr(data)} is not of type 'string'")
        if self.pattern is not None and not matches(self.pattern, data):
            raise serializers.ValidationError(f"{data!r} does not match '{self.pattern}'")
        if self.min_length is not None and len(data) < self.min_length:
            raise serializers.ValidationError(f"{data!r} is too short")
        if self.max_length is not None and len(data) > self.max_length:
            raise serializers.ValidationError(f"{data!r} is too long")
        return data

    def to_representation(self, value: str) -> str:
        return value


class StrictInteger(serializers.Field[int, int, int, Any]):
    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, **kwargs: Any) -> None:
        self.minimum, self.maximum = minimum, maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"{_json_repr(data)} is not of type 'integer'")
        if self.minimum is not None and data < self.minimum:
            raise serializers.ValidationError(f"{data} is less than the minimum of {self.minimum}")
        if self.maximum is not None and data > self.maximum:
            raise serializers.ValidationError(f"{data} is greater than the maximum of {self.maximum}")
        return int(data)

    def to_representation(self, value: int) -> int:
        return value


class StrictBoolean(serializers.Field[bool, bool, bool, Any]):
    """``true``/``false`` only (DRF's BooleanField would also take ``"yes"`` or ``1``)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"{data!r} is not of type 'boolean'")
        return data

    def to_representation(self, value: bool) -> bool:
        return value


def tenant_not_found(name: str) -> NotFound:
    """The one answer for a tenant that is not there (docs/api-conventions.md, "Tenants in the path")."""
    return NotFound(description=f"Tenant {name} does not exist", code="tenant_not_found")


def known_tenant_name(name: str) -> str:
    """A path segment that cannot be a tenant name names no tenant (and never reaches an upstream).

    Here rather than in ``tenants`` so the shared API base view (``inferencemgmt.api.views``) can apply
    it to every tenant route without the project package importing a domain app.
    """
    if not matches(DNS_1123_LABEL, name) or len(name) > 63:
        raise tenant_not_found(name)
    return name


def quantity(value: Any) -> str:
    """A Kubernetes quantity given as a string (or a plain non-negative number), as a string."""
    if isinstance(value, bool):
        raise serializers.ValidationError(f"{value} is not of type 'string'")
    text = str(value) if isinstance(value, (int, float)) else value
    if not isinstance(text, str) or not matches(QUANTITY, text):
        raise serializers.ValidationError(f"{_json_repr(value)} does not match '{QUANTITY}'")
    return text
