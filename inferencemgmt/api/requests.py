"""What every API view does first: name the verified caller and validate the body.

One place, so the tenant, model and endpoint views cannot drift apart in how they read a request.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from inferencemgmt.auth.identity import Identity


def request_identity(request: Request) -> Identity:
    identity = request.user
    assert isinstance(identity, Identity)  # guaranteed by the default IsAuthenticatedIdentity
    return identity


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, **context: Any) -> dict[str, Any]:
    """The serializer's validated data; a failure raises DRF's ValidationError (400 in our shape)."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
