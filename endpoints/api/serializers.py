"""Request bodies of the endpoint routes, checked (and normalised) before anything is written.

Messages are the original's jsonschema texts (``'endpointName' is a required property``, ``'ab' is
too short``, ``-1 is less than the minimum of 0``, ``'many' is not of type 'integer'``) because
clients and tests match them. Stricter than the original where its laxness broke endpoints later:
names are DNS-1035 and ``<endpoint>-<tenant>`` must be one DNS label, resource values are real
Kubernetes quantities, and the model name is one path segment. Unknown keys are still accepted
(and ignored), as the original accepted them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from endpoints.spec import (
    AUTOSCALING_KEYS,
    DEFAULT_SERVING,
    DEFAULT_VERSION_POLICY,
    DNS_LABEL_MAX,
    MODEL_NAME,
    REPLICAS_MAX,
    RESOURCE_KINDS,
    RESOURCE_NAME,
    SCALE_DOWN_STABILIZATION_DEFAULT,
    SCALE_DOWN_STABILIZATION_MAX,
    SUBJECT_NAME,
    VERSION_POLICY,
    autoscaling_max_replicas,
    host_label_too_long,
    normalize_version_policy,
)
from inferencemgmt.api.validation import (
    DNS_1035_LABEL,
    QUANTITY,
    StrictInteger,
    StrictString,
    quantity,
    required_messages,
)
from inferencemgmt.digits import ascii_int


def validate_resources(value: Any) -> dict[str, str]:
    """Flat ``{"requests.cpu": "1", "limits.nvidia.com/gpu": "1"}``; values become quantity strings."""
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"{value!r} is not of type 'object'")
    resources: dict[str, str] = {}
    for key, raw in value.items():
        kind, dot, name = str(key).partition(".")
        if not dot or kind not in RESOURCE_KINDS or not RESOURCE_NAME.fullmatch(name):
            raise serializers.ValidationError(
                f"{key!r} is not a resource key; use requests.<resource> or limits.<resource> "
                "(for example requests.cpu, limits.memory, requests.nvidia.com/gpu)"
            )
        try:
            resources[key] = quantity(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(f"{key}: {exc.detail[0]}") from None  # type: ignore[index]
    return resources


@extend_schema_field(
    {
        "type": "object",
        "description": "Flat keys requests.<resource> / limits.<resource> (split on the first dot), "
        "for example requests.cpu, limits.memory, requests.nvidia.com/gpu; values are Kubernetes quantities.",
        "additionalProperties": {"anyOf": [{"type": "string", "pattern": QUANTITY}, {"type": "number", "minimum": 0}]},
    }
)
class ResourcesField(serializers.Field[dict[str, str], Any, dict[str, str], Any]):
    def to_internal_value(self, data: Any) -> dict[str, str]:
        return validate_resources(data)

    def to_representation(self, value: dict[str, str]) -> dict[str, str]:
        return value


class VersionPolicyField(StrictString):
    """The original's grammar; the value comes out normalised (``{specific{versions:12 }}``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pattern=VERSION_POLICY, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return normalize_version_policy(super().to_internal_value(data))


class ReplicasField(StrictInteger):
    """An int32 >= 0, as the CRD declares it (the API server would refuse more, with a vaguer text)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=0, maximum=REPLICAS_MAX, **kwargs)


class AutoscalingSerializer(serializers.Serializer[dict[str, Any]]):
    """``autoscaling``: the HorizontalPodAutoscaler the controller renders for the endpoint (README
    "Autoscaling"). Unlike the top level, an unknown key is refused: a misspelt ``maxReplica`` would
    otherwise leave a limit silently unset."""

    minReplicas = StrictInteger(minimum=1, error_messages=required_messages("minReplicas"))  # noqa: N815
    maxReplicas = StrictInteger(minimum=1, error_messages=required_messages("maxReplicas"))  # noqa: N815
    targetCPUUtilization = StrictInteger(  # noqa: N815
        minimum=1, maximum=100, error_messages=required_messages("targetCPUUtilization")
    )
    scaleDownStabilizationSeconds = StrictInteger(  # noqa: N815
        minimum=0, maximum=SCALE_DOWN_STABILIZATION_MAX, required=False
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in AUTOSCALING_KEYS)
            if unknown:
                raise serializers.ValidationError(
                    f"unknown key(s) {', '.join(unknown)}; the keys are {', '.join(AUTOSCALING_KEYS)}"
                )
        return dict(super().to_internal_value(data))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ceiling = autoscaling_max_replicas()
        if attrs["maxReplicas"] > ceiling:
            raise serializers.ValidationError(
                {"maxReplicas": [f"{attrs['maxReplicas']} is greater than the maximum of {ceiling}"]}
            )
        if attrs["minReplicas"] > attrs["maxReplicas"]:
            raise serializers.ValidationError(
                {"minReplicas": [f"{attrs['minReplicas']} is greater than maxReplicas ({attrs['maxReplicas']})"]}
            )
        attrs.setdefault("scaleDownStabilizationSeconds", SCALE_DOWN_STABILIZATION_DEFAULT)
        return attrs


def model_name_field(**kwargs: Any) -> StrictString:
    return StrictString(min_length=3, max_length=253, pattern=MODEL_NAME, **kwargs)


def subject_name_field(**kwargs: Any) -> StrictString:
    return StrictString(max_length=253, pattern=SUBJECT_NAME, **kwargs)


class EndpointCreateSerializer(serializers.Serializer[dict[str, Any]]):
    """``POST /tenants/<t>/endpoints``; the context must hold ``tenant`` (for the host-label length)."""

    endpointName = StrictString(  # noqa: N815 -- the documented JSON key
        min_length=3, max_length=DNS_LABEL_MAX, pattern=DNS_1035_LABEL, error_messages=required_messages("endpointName")
    )
    modelName = model_name_field(error_messages=required_messages("modelName"))  # noqa: N815
    subjectName = subject_name_field(error_messages=required_messages("subjectName"))  # noqa: N815
    modelVersionPolicy = VersionPolicyField(required=False)  # noqa: N815
    replicas = ReplicasField(required=False)
    resources = ResourcesField(required=False)
    servingName = StrictString(min_length=3, max_length=63, required=False)  # noqa: N815
    autoscaling = AutoscalingSerializer(required=False, allow_null=True)

    def validate_endpointName(self, value: str) -> str:  # noqa: N802 -- DRF names it after the field
        tenant = str(self.context["tenant"])
        if host_label_too_long(value, tenant):
            raise serializers.ValidationError(
                f"'{value}-{tenant}' is too long: <endpointName>-<tenant> names the endpoint's host "
                f"and must fit one DNS label ({DNS_LABEL_MAX} characters)"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("servingName", DEFAULT_SERVING)
        attrs.setdefault("modelVersionPolicy", DEFAULT_VERSION_POLICY)
        scaling: dict[str, int] | None = attrs.get("autoscaling")
        replicas: int | None = attrs.get("replicas")
        if scaling is None or replicas is None:
            return attrs
        if not scaling["minReplicas"] <= replicas <= scaling["maxReplicas"]:
            raise serializers.ValidationError(
                {
                    "replicas": [
                        f"{replicas} is outside minReplicas..maxReplicas "
                        f"({scaling['minReplicas']}..{scaling['maxReplicas']}) of autoscaling"
                    ]
                }
            )
        return attrs


def endpoint_create_arguments(data: dict[str, Any]) -> dict[str, Any]:
    """A validated create body as the keyword arguments of ``endpoint_create`` and ``endpoint_manifest``."""
    return {
        "endpoint_name": data["endpointName"],
        "model_name": data["modelName"],
        "subject_name": data["subjectName"],
        "serving_name": data["servingName"],
        "model_version_policy": data["modelVersionPolicy"],
        "replicas": data.get("replicas"),
        "resources": data.get("resources"),
        "autoscaling": data.get("autoscaling"),
    }


UPDATABLE = ("modelName", "modelVersionPolicy", "resources", "subjectName", "autoscaling")


class EndpointUpdateSerializer(serializers.Serializer[dict[str, Any]]):
    """``PATCH /tenants/<t>/endpoints/<e>``: any of the documented keys; others are ignored."""

    modelName = model_name_field(required=False)  # noqa: N815
    modelVersionPolicy = VersionPolicyField(required=False)  # noqa: N815
    resources = ResourcesField(required=False)
    subjectName = subject_name_field(required=False)  # noqa: N815
    # null removes autoscaling (the HPA is deleted; the replica count stays where the HPA left it).
    autoscaling = AutoscalingSerializer(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(f"give at least one of {', '.join(UPDATABLE)}")
        return attrs


class EndpointScaleSerializer(serializers.Serializer[dict[str, Any]]):
    replicas = ReplicasField(error_messages=required_messages("replicas"))


class EndpointNameSerializer(serializers.Serializer[dict[str, Any]]):
    """``DELETE /tenants/<t>/endpoints {"endpointName"}``; an impossible name is then a 404."""

    endpointName = StrictString(min_length=1, error_messages=required_messages("endpointName"))  # noqa: N815


def validate_tail(raw: str | None, default: int, maximum: int) -> int:
    """``?tail=N`` of the logs route: 1..maximum lines."""
    if raw is None or raw == "":
        return default
    lines = ascii_int(raw, max_digits=9)
    if lines is None or not 1 <= lines <= maximum:
        raise serializers.ValidationError({"tail": [f"{raw!r} is not a whole number from 1 to {maximum}"]})
    return lines


#: ``?range=`` of the traffic route: a number and a unit, from five minutes to seven days.
_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TRAFFIC_RANGE_MIN, TRAFFIC_RANGE_MAX = 300, 7 * 86400
TRAFFIC_STEP_MIN = 5
TRAFFIC_POINTS_MAX = 1000
TRAFFIC_POINTS_DEFAULT = 120


def _seconds(raw: str) -> int | None:
    found = _DURATION.fullmatch(raw)
    return None if found is None else int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def validate_traffic_query(params: Mapping[str, str]) -> tuple[int, int]:
    """``?range=1h&step=30s`` as seconds: the range and the step between points, both bounded.

    The default step gives about 120 points; a step may not be shorter than 5 s (a few scrapes) nor
    give more than 1000 points, so one chart never asks Prometheus for an unbounded answer.
    """
    unknown = sorted(set(params) - {"range", "step"})
    if unknown:
        raise serializers.ValidationError({unknown[0]: ["is not a parameter of this route (range, step)"]})
    raw_range = params.get("range") or "1h"
    seconds = _seconds(raw_range)
    if seconds is None or not TRAFFIC_RANGE_MIN <= seconds <= TRAFFIC_RANGE_MAX:
        raise serializers.ValidationError(
            {"range": [f"{raw_range[:40]!r} is not a duration from 5m to 7d (a number and s, m, h or d)"]}
        )
    raw_step = params.get("step")
    if not raw_step:
        return seconds, max(TRAFFIC_STEP_MIN, seconds // TRAFFIC_POINTS_DEFAULT)
    step = _seconds(raw_step)
    if step is None or step < TRAFFIC_STEP_MIN or step > seconds or seconds // step > TRAFFIC_POINTS_MAX:
        raise serializers.ValidationError(
            {
                "step": [
                    f"{raw_step[:40]!r} is not a duration from 5s to the range that gives at most "
                    f"{TRAFFIC_POINTS_MAX} points"
                ]
            }
        )
    return seconds, step
