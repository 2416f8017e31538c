"""Request bodies of the tenant routes, checked before anything is created."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography import x509
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inferencemgmt.api.validation import (
    DNS_1123_LABEL,
    QUANTITY,
    StrictInteger,
    StrictString,
    quantity,
    required_messages,
)
from inferencemgmt.auth.names import group_problem
from inferencemgmt.errors import BadRequest
from tenants.manifests import MAX_ENDPOINTS

CERT_ADVICE = "Please make sure the certificate is a base64-encoded PEM X.509 certificate."
# A ResourceQuota resource name: `requests.cpu`, `limits.memory`, `pods`, `requests.nvidia.com/gpu`, ...
RESOURCE_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?")


def _invalid_cert(reason: str) -> BadRequest:
    return BadRequest(
        "Invalid parameter", f'The "cert" parameter is invalid. {reason} {CERT_ADVICE}', code="tenant_cert_invalid"
    )


def validate_certificate(value: str) -> str:
    """Strict base64 of a PEM X.509 certificate (the first PEM block; a CRL may follow)."""
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_cert("Error certificate Base64 decoding.") from None
    try:
        x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise _invalid_cert("Incorrect certificate format.") from None
    return value


def validate_scope(value: Any) -> list[str]:
    groups = [value] if isinstance(value, str) else value
    if not isinstance(groups, list) or not groups:
        raise serializers.ValidationError("must be a group name or a non-empty list of group names")
    for group in groups:
        if not isinstance(group, str) or not group.strip():
            raise serializers.ValidationError(f"{group!r} is not a non-empty group name")
        # The rules of the groups the platform passes on: a tenant bound to a group no user can be
        # sent as would be unreachable, and a ``system:`` group (in any spelling) opens it to everybody.
        problem = group_problem(group)
        if problem is not None:
            raise serializers.ValidationError(f"{group!r} cannot be a tenant's group: {problem}")
    return list(dict.fromkeys(groups))


def validate_quota(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"{value!r} is not of type 'object'")
    quota: dict[str, Any] = {}
    for key, raw in value.items():
        if key == MAX_ENDPOINTS:
            quota[key] = StrictInteger(minimum=1).to_internal_value(raw)
            continue
        if not RESOURCE_NAME.fullmatch(key):
            raise serializers.ValidationError(f"{key!r} is not a Kubernetes resource name")
        try:
            quota[key] = quantity(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(f"{key}: {exc.detail[0]}") from None  # type: ignore[index]
    return quota


_GROUP = {"type": "string", "minLength": 1}


@extend_schema_field({"anyOf": [_GROUP, {"type": "array", "items": _GROUP, "minItems": 1}]})
class ScopeField(serializers.Field[list[str], Any, list[str], Any]):
    def to_internal_value(self, data: Any) -> list[str]:
        return validate_scope(data)

    def to_representation(self, value: list[str]) -> list[str]:
        return value


@extend_schema_field(
    {
        "type": "object",
        "description": "ResourceQuota resource names with Kubernetes quantities, plus maxEndpoints.",
        "properties": {MAX_ENDPOINTS: {"type": "integer", "minimum": 1}},
        "additionalProperties": {"anyOf": [{"type": "string", "pattern": QUANTITY}, {"type": "number", "minimum": 0}]},
    }
)
class QuotaField(serializers.Field[dict[str, Any], Any, dict[str, Any], Any]):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return validate_quota(data)

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


def tenant_name_field() -> StrictString:
    return StrictString(min_length=3, max_length=63, pattern=DNS_1123_LABEL, error_messages=required_messages("name"))


class TenantCreateSerializer(serializers.Serializer[dict[str, Any]]):
    name = tenant_name_field()
    cert = StrictString(error_messages=required_messages("cert"))
    scope = ScopeField(error_messages=required_messages("scope"))
    quota = QuotaField(error_messages=required_messages("quota"))

    def validate_name(self, value: str) -> str:
        if value.startswith("kube-"):
            raise serializers.ValidationError(f"{value!r}: names starting with 'kube-' are reserved")
        return value

    def validate_cert(self, value: str) -> str:
        return validate_certificate(value)


class TenantNameSerializer(serializers.Serializer[dict[str, Any]]):
    name = tenant_name_field()


class TenantUpdateSerializer(serializers.Serializer[dict[str, Any]]):
    scope = ScopeField(required=False)
    quota = QuotaField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("give 'quota', 'scope' or both")
        return attrs
