"""How every API view validates a body: one place, so the views cannot drift apart in how they read it.

The caller and the tenant are named once too, by the base views (``inferencemgmt.api.views``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, **context: Any) -> dict[str, Any]:
    """The serializer's validated data; a failure raises DRF's ValidationError (400 in our shape)."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
