"""The shapes every route's OpenAPI description shares: the success envelope and the one error body.

Views describe only their own ``data``; wrapping it here keeps the documented envelope
(``{"status", "data"}``) and error (``{"title", "description"?, "code"}``;
docs/decisions/0001-api-contract-and-error-shape.md) in one place, so the schema cannot drift from
``responses.envelope`` and ``ImmError.as_body``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from inferencemgmt import paging
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


def page_envelope_answer(name: str, data: serializers.Field[Any, Any, Any, Any]) -> Any:
    """A list's answer: the ``OK`` envelope plus ``continue`` when there is a next page (inferencemgmt.paging)."""
    return inline_serializer(
        name,
        {
            "status": serializers.ChoiceField(choices=["OK"]),
            "data": data,
            "continue": serializers.CharField(
                required=False,
                help_text="Present when there is a next page: send it back as ?continue= (opaque, signed).",
            ),
        },
    )


def page_parameters(default: int = paging.DEFAULT_LIMIT, maximum: int = paging.MAX_LIMIT) -> list[OpenApiParameter]:
    """``limit`` and ``continue``, as every list route takes them."""
    return [
        OpenApiParameter(
            paging.LIMIT_PARAMETER,
            {"type": "integer", "minimum": 1, "maximum": maximum},
            description=f"Items per page (default {default}, at most {maximum}).",
        ),
        OpenApiParameter(
            paging.CONTINUE_PARAMETER,
            str,
            description="The `continue` of the previous page (absent: the first page). An altered token is a 400.",
        ),
    ]


PAGE_PARAMETERS = page_parameters()
