"""The shapes every route's OpenAPI description shares: the success envelope and the one error body.

Views describe only their own ``data``; wrapping it here keeps the documented envelope
(``{"status", "data"}``, DECISIONS §1) and error (``{"title", "description"?, "code"}``, §2) in one
place, so the schema cannot drift from ``responses.envelope`` and ``ImmError.as_body``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from inferencemgmt.api.responses import EnvelopeStatus


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """``ImmError.as_body()``: what every 4xx and 5xx of the API carries."""

    title = serializers.CharField(help_text="Kept word for word where clients match it (`409 Conflict`, ...).")
    description = serializers.CharField(required=False, help_text="Absent on some errors, as in the original.")
    code = serializers.CharField(help_text="Stable machine code (docs/api-conventions.md); never renamed.")


def envelope_answer(name: str, status: EnvelopeStatus, data: serializers.Field[Any, Any, Any, Any]) -> Any:
    """``{"status": <status>, "data": <data>}`` as the component ``name``."""
    return inline_serializer(name, {"status": serializers.ChoiceField(choices=[status]), "data": data})


def shape(name: str, fields: dict[str, serializers.Field[Any, Any, Any, Any]], **kwargs: Any) -> Any:
    """A named object shape inside an answer (``inline_serializer``, typed for our callers)."""
    return inline_serializer(name, fields, **kwargs)
