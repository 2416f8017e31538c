"""The InferenceEndpoint spec the API writes, as pure functions of a request (docs/compatibility.md).

Everything here runs before anything is written, so a bad request never leaves a CR behind, and
the texts match what the original clients grep for. Two of the original's defects are fixed on
purpose (docs/compatibility.md, Endpoints): the version-policy normalisation keeps multi-digit versions whole, and
flat resource keys are split on the FIRST dot only (``requests.nvidia.com/gpu`` stays a GPU).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings

from inferencemgmt import resources as endpoint_resource
from inferencemgmt.errors import BadRequest
from inferencemgmt.quantities import quantity_value

# The original's grammar (VERSION_POLICY_REGEX), kept character for character: clients see it in errors.
VERSION_POLICY = r"^\s*{\s*(specific\s*{\s*(versions:\s*\d+\s+)*versions:\s*\d+\s*}|all\s*{\s*}|latest\s*{\s*})\s*}\s*$"
# The subject CN allowed to call the endpoint (hostname-like), as in the original and the CRD.
SUBJECT_NAME = (
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)
# A model is a folder of the tenant's bucket: one path segment, no whitespace or control characters.
MODEL_NAME = r"^[^/\s\x00-\x1f\x7f]+$"
# A container resource name after `requests.` / `limits.`: `cpu`, `memory`, `nvidia.com/gpu`, ...
RESOURCE_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?")
RESOURCE_KINDS = ("requests", "limits")
# The longest host label Kubernetes and DNS accept; the Ingress host is `<endpoint>-<tenant>.<domain>`.
DNS_LABEL_MAX = 63
# int32, as the CRD declares `replicas`.
REPLICAS_MAX = 2**31 - 1

# Resources Kubernetes makes every pod declare when a ResourceQuota limits them: an endpoint without
# them could never start a pod in the tenant (extended resources such as GPUs are only counted when
# requested, so they are not required). A bare `cpu` quota is `requests.cpu`.
_COMPUTE = ("cpu", "memory", "ephemeral-storage")

DEFAULT_SERVING = "tf-serving"
DEFAULT_VERSION_POLICY = endpoint_resource.DEFAULT_VERSION_POLICY
PAUSED_REPLICAS_ANNOTATION = "imm.ai.intel.com/paused-replicas"

# Autoscaling (README "Autoscaling"): the keys of ``spec.autoscaling``, as the API and the CRD name them.
AUTOSCALING_KEYS = ("minReplicas", "maxReplicas", "targetCPUUtilization", "scaleDownStabilizationSeconds")
# The most replicas one endpoint may autoscale to, whatever the quota: a typo (3000 for 30) must not
# become a standing order to fill the tenant. ``ENDPOINT_AUTOSCALING_MAX_REPLICAS`` overrides it.
AUTOSCALING_MAX_REPLICAS = 100
# Kubernetes' own default scale-down window; the longest one accepted is an hour (as the HPA allows).
SCALE_DOWN_STABILIZATION_DEFAULT = 300
SCALE_DOWN_STABILIZATION_MAX = 3600


def normalize_version_policy(policy: str) -> str:
    """Drop all whitespace, then put one space after every NUMBER (the original did so after every digit).

    ``{specific {versions: 12}}`` -> ``{specific{versions:12 }}``; the original produced
    ``versions:1 2 ``, which the CRD refused, so versions >= 10 could not be served.
    """
    compact = re.sub(r"\s+", "", policy)
    return re.sub(r"\d+", lambda digits: f"{digits.group(0)} ", compact)


def host_label_too_long(endpoint: str, tenant: str) -> bool:
    """True when ``<endpoint>-<tenant>`` cannot be one DNS label of the Ingress host."""
    return len(f"{endpoint}-{tenant}") > DNS_LABEL_MAX


def split_resources(flat: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Flat API keys to the CR's nested form, split on the FIRST dot only.

    ``{"requests.cpu": "1", "requests.nvidia.com/gpu": "1"}`` ->
    ``{"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}``; the caller has checked that each key has a dot.
    """
    nested: dict[str, dict[str, str]] = {}
    for key, value in flat.items():
        kind, name = key.split(".", 1)
        nested.setdefault(kind, {})[name] = value
    return nested


def flatten_resources(nested: Mapping[str, Any] | None) -> dict[str, str]:
    """The reverse of :func:`split_resources`, for a CR's ``spec.resources``."""
    flat: dict[str, str] = {}
    for kind, values in (nested or {}).items():
        for name, value in (values or {}).items():
            flat[f"{kind}.{name}"] = str(value)
    return flat


def endpoint_url(endpoint: str, tenant: str) -> str:
    """The documented URL, ``<endpoint>-<tenant>.<PLATFORM_DOMAIN>:<INFERENCE_PORT>`` (the Ingress host)."""
    port = int(getattr(settings, "INFERENCE_PORT", 443))
    return f"{endpoint}-{tenant}.{settings.PLATFORM_DOMAIN}:{port}"


def endpoint_manifest(
    tenant: str,
    *,
    endpoint_name: str,
    model_name: str,
    subject_name: str,
    serving_name: str,
    model_version_policy: str,
    replicas: int | None = None,
    resources: Mapping[str, str] | None = None,
    autoscaling: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The CR the API creates (docs/compatibility.md): metadata.name and spec.endpointName are equal.

    An autoscaled endpoint starts at ``minReplicas`` unless a count was given (the HPA takes over).
    """
    spec: dict[str, Any] = {
        "endpointName": endpoint_name,
        "modelName": model_name,
        "subjectName": subject_name,
        "servingName": serving_name,
        "modelVersionPolicy": model_version_policy,
    }
    if autoscaling is not None:
        spec["autoscaling"] = dict(autoscaling)
        if replicas is None:
            replicas = int(autoscaling["minReplicas"])
    if replicas is not None:
        spec["replicas"] = replicas
    if resources is not None:
        spec["resources"] = split_resources(resources)
    return {
        "apiVersion": endpoint_resource.API_VERSION,
        "kind": endpoint_resource.KIND,
        "metadata": {"name": endpoint_name, "namespace": tenant},
        "spec": spec,
    }


def required_resources(hard: Mapping[str, str]) -> dict[str, str]:
    """The endpoint resource keys a tenant's quota makes mandatory, with the quota's values.

    Only compute resources count: object counts (``count/...``, our ``maxEndpoints``) and
    extended resources do not oblige a pod to declare anything.
    """
    required: dict[str, str] = {}
    for key, value in hard.items():
        if key in _COMPUTE:
            required.setdefault(f"requests.{key}", str(value))
            continue
        kind, _, name = key.partition(".")
        if kind in RESOURCE_KINDS and name in _COMPUTE:
            required[key] = str(value)
    return required


def _quota_error(message: str) -> BadRequest:
    return BadRequest(
        "Invalid parameter", f'The "resources" parameter is invalid. {message}', code="endpoint_resources_quota"
    )


def check_quota_compliance(tenant: str, hard: Mapping[str, str], resources: Mapping[str, str] | None) -> None:
    """The original's ``validate_quota_compliance`` texts (docs/compatibility.md), on create AND update.

    An absent ``resources`` counts as ``{}``: the original skipped the check then, and the endpoint
    could never start a pod under the tenant's quota. Values are not compared with the quota (the
    ResourceQuota admission does that per pod, and the controller reports it as QuotaExceeded).
    """
    required = required_resources(hard)
    if not required:
        return
    given = resources or {}
    if not given:
        raise _quota_error(
            f"No resources provided. There's resource quota specified in {tenant} tenant: {required} "
            "Please fill resource field with given keys in your request"
        )
    missing = {key: value for key, value in required.items() if key not in given}
    if missing:
        raise _quota_error(f"Missing resources values. You need to provide: {missing}")


def autoscaling_max_replicas() -> int:
    """The highest ``maxReplicas`` accepted (``ENDPOINT_AUTOSCALING_MAX_REPLICAS``, default 100)."""
    return int(getattr(settings, "ENDPOINT_AUTOSCALING_MAX_REPLICAS", AUTOSCALING_MAX_REPLICAS))


def _autoscaling_error(message: str, code: str = "endpoint_autoscaling_invalid") -> BadRequest:
    return BadRequest("Invalid parameter", f'The "autoscaling" parameter is invalid. {message}', code=code)


def _hard_key(key: str) -> str:
    """A quota key in its ``requests.<resource>`` form (a bare ``cpu`` quota is ``requests.cpu``)."""
    return f"requests.{key}" if key in _COMPUTE else key


def check_autoscaling_quota(
    tenant: str, hard: Mapping[str, str], resources: Mapping[str, str] | None, autoscaling: Mapping[str, Any]
) -> None:
    """``maxReplicas`` replicas must fit the tenant's ResourceQuota hard limits, and the HPA must have a
    CPU request to compute utilization from.

    Per replica the endpoint's own ``resources`` count (what the serving template gives its
    container). This compares with the quota's hard limits, not with what other endpoints use now:
    an endpoint that could never reach its maximum even in an empty tenant is refused here, and the
    ResourceQuota admission still refuses any pod beyond the quota at run time (the HPA then stays
    where it is; the endpoint reports QuotaExceeded).
    """
    given = dict(resources or {})
    cpu = quantity_value(given.get("requests.cpu", ""))
    if cpu is None or cpu <= 0:
        raise _autoscaling_error(
            "Autoscaling on CPU utilization needs a CPU request per replica: give resources with requests.cpu",
            code="endpoint_autoscaling_needs_cpu_request",
        )
    maximum = int(autoscaling["maxReplicas"])
    excess = []
    for key, limit in hard.items():
        hard_value = quantity_value(str(limit))
        if hard_value is None:
            continue
        name = _hard_key(str(key))
        if name in ("pods", "count/pods"):
            needed = Decimal(maximum)
            shown = f"{maximum} pods"
        else:
            per_replica = quantity_value(given.get(name, ""))
            if per_replica is None:
                continue
            needed = per_replica * maximum
            shown = f"{maximum} x {given[name]}"
        if needed > hard_value:
            excess.append(f"{name}: {shown} exceeds the quota's {limit}")
    if excess:
        raise _autoscaling_error(
            f"maxReplicas {maximum} does not fit the resource quota of tenant {tenant}: {'; '.join(sorted(excess))}",
            code="endpoint_autoscaling_exceeds_quota",
        )
