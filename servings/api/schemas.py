"""The body and answers of ``/servings`` and ``/servings/<name>``, as the OpenAPI schema documents them.

The body has no serializer: ``servings.services.serving_validate`` checks it (and test-renders it), so
the schema is written from the same key list.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from inferencemgmt.api.openapi import envelope_answer, page_envelope_answer, shape
from servings.services import REQUIRED_KEYS

SERVING_TEMPLATE_BODY: dict[str, Any] = {
    "application/json": {
        "type": "object",
        "description": "Exactly the four template texts (Jinja2), each non-empty; test-rendered before saving.",
        "properties": {key: {"type": "string", "minLength": 1} for key in REQUIRED_KEYS},
        "required": list(REQUIRED_KEYS),
        "additionalProperties": False,
    }
}

SERVING_LIST_ANSWER = page_envelope_answer(
    "ServingListAnswer", serializers.ListField(child=serializers.CharField(), help_text="Names, sorted.")
)
SERVING_ANSWER = envelope_answer(
    "ServingAnswer",
    "OK",
    serializers.DictField(
        child=serializers.CharField(allow_blank=True), allow_null=True, help_text="Template texts by data key."
    ),
)


def _named(name: str, status: Any) -> Any:
    return envelope_answer(f"{name}Answer", status, shape(name, {"name": serializers.CharField()}))


SERVING_CREATED_ANSWER = _named("ServingCreated", "CREATED")
SERVING_REPLACED_ANSWER = _named("ServingReplaced", "PATCHED")
SERVING_DELETED_ANSWER = _named("ServingDeleted", "DELETED")
