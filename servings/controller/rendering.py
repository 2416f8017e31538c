"""Rendering an InferenceEndpoint through its serving template: pure functions, no I/O.

Why Jinja2 in a sandbox: templates are data that platform admins edit through the API, so a template
must not reach Python internals (``ImmutableSandboxedEnvironment``), and a misspelt variable must
fail loudly instead of rendering an empty string (``StrictUndefined``). Values reach YAML only
through the ``q`` / ``json`` filters, which emit JSON literals (valid YAML flow scalars), so a
value such as ``+1``, ``"`` or ``a: b`` can neither break nor inject structure. The original used
Go's ``html/template`` and HTML-escaped values (``+`` became ``&#43;``); there is no HTML here, so
autoescaping is off.

The controller, not the template, owns the invariants every object must keep: its name and
namespace, the ownership labels, the owner reference to the CR, and the pod-template annotation
holding a hash of the rendered config (so a model or policy change rolls the pods), and the one holding
the tenant's store-key generation (so a rotated key rolls the pods, tenants.rotation). Templates can
therefore not forget them, and an admin-supplied template cannot write outside the tenant.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inferencemgmt.nesting import nested_deeper_than
from inferencemgmt.resources import API_VERSION, DEFAULT_VERSION_POLICY, ENDPOINT_LABEL, GROUP, KIND
from servings.catalogue import PARTS, data_key
from servings.podsecurity import Violation, describe, object_violations

FIELD_MANAGER = "imm-controller"

CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
STORE_KEY_ANNOTATION = f"{GROUP}/store-key"
OWNERSHIP_LABELS = {
    "app.kubernetes.io/managed-by": FIELD_MANAGER,
    "app.kubernetes.io/part-of": "inference-model-manager",
}
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=" + FIELD_MANAGER
DEFAULT_REPLICAS = 1


class RenderError(Exception):
    """A template that cannot produce valid objects for this endpoint; reported on the CR."""


class TemplateForbidden(RenderError):
    """The template renders a pod the Pod Security Standards "restricted" profile forbids.

    Raised instead of returning anything, so no part of the endpoint is applied; ``violations``
    name each field (``spec.template.spec.hostNetwork``) for the CR's status and the API's 400.
    """

    def __init__(self, part: str, violations: list[Violation]) -> None:
        self.part = part
        self.violations = violations
        super().__init__(f"{data_key(part)}: forbidden by the restricted pod security profile: {describe(violations)}")


@dataclass(frozen=True)
class Platform:
    """Platform-wide values every template may use (the original's "global template values")."""

    domain: str
    s3_use_https: bool = False
    s3_verify_ssl: bool = False
    inference_port: int = 443
    # SERVING_IMAGE_REGISTRY and SERVING_IMAGES: see serving_image().
    image_registry: str = ""
    serving_images: Mapping[str, str] = field(default_factory=dict)

    def serving_image(self, serving: str, default: str) -> str:
        """The image a serving's pods run: the platform's override for this serving when it has one,
        else the template's default (a repository path with its tag) behind the registry prefix.

        Templates name no registry: where images come from is the platform's decision (a mirror for
        an air-gapped cluster, the devstack's local builds), made once for every serving.
        """
        override = self.serving_images.get(serving)
        if override:
            return override
        return f"{self.image_registry.rstrip('/')}/{default}" if self.image_registry else default


@dataclass(frozen=True)
class ServingTemplate:
    """One serving: its name and the template text of each part, keyed as in the ConfigMap."""

    name: str
    data: Mapping[str, str]

    def source(self, part: str) -> str:
        try:
            return self.data[data_key(part)]
        except KeyError:
            raise RenderError(f"serving template {self.name!r} has no {data_key(part)!r}") from None


def _quote(value: Any) -> str:
    """A JSON string literal: safe as a YAML scalar and as a protobuf-text string."""
    return json.dumps(str(value), ensure_ascii=False)


def _json(value: Any) -> str:
    """Any value as compact JSON, which YAML reads as a flow collection or scalar."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


@pass_context
def _image(context: Context, default: Any) -> str:
    """``{{ "seldonio/mlserver:1.7.1" | image | q }}``: the platform's choice of image for this serving."""
    platform: Platform = context["_platform"]
    return platform.serving_image(str(context["_serving"]), str(default))


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=False
    )
    env.filters["q"] = _quote
    env.filters["json"] = _json
    env.filters["image"] = _image
    return env


_ENV = _environment()
# libyaml's loader when PyYAML was built with it (a render parses four documents; pure Python is slow).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Deepest nesting a rendered object may have; a Deployment with probes and volumes needs about 10.
MAX_OBJECT_DEPTH = 64


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """Templates compile to Python code; compiling once per distinct text keeps a resync cheap."""
    return _ENV.from_string(source)


_POLICY = re.compile(r"^\s*\{\s*(latest|all|specific)\s*\{(.*)\}\s*\}\s*$", re.DOTALL)
_VERSION = re.compile(r"versions:\s*(\d+)")


def parse_version_policy(policy: str) -> dict[str, Any]:
    """``{specific{versions:1 versions:12 }}`` -> ``{"kind": "specific", "versions": [1, 12]}``.

    Versions are read as whole numbers, so multi-digit versions survive (the original split them).
    """
    match = _POLICY.match(policy)
    if match is None:
        raise RenderError(f"modelVersionPolicy {policy!r} is not latest, all or specific versions")
    kind = match.group(1)
    versions = [int(v) for v in _VERSION.findall(match.group(2))] if kind == "specific" else []
    if kind == "specific" and not versions:
        raise RenderError(f"modelVersionPolicy {policy!r} names no version")
    return {"kind": kind, "versions": versions}


def endpoint_name(cr: Mapping[str, Any]) -> str:
    """Children are named after ``spec.endpointName`` (the original's rule), kept equal to the CR name."""
    return str(cr.get("spec", {}).get("endpointName") or cr["metadata"]["name"])


def endpoint_host(cr: Mapping[str, Any], platform: Platform) -> str:
    return f"{endpoint_name(cr)}-{cr['metadata']['namespace']}.{platform.domain}"


def endpoint_url(cr: Mapping[str, Any], platform: Platform) -> str:
    """The URL the API documents: ``<endpoint>-<tenant>.<PLATFORM_DOMAIN>:<port>``."""
    return f"{endpoint_host(cr, platform)}:{platform.inference_port}"


def desired_replicas(cr: Mapping[str, Any]) -> int:
    """``spec.replicas`` as written; 0 means 0 (the original's ``or 1`` turned it into 1)."""
    replicas = cr.get("spec", {}).get("replicas")
    return DEFAULT_REPLICAS if replicas is None else int(replicas)


def template_context(cr: Mapping[str, Any], platform: Platform, serving: str = "") -> dict[str, Any]:
    """The variables a template sees (documented in the README (Servings)).

    ``serving`` is the template's name (default ``spec.servingName``): the ``image`` filter looks up the
    platform's image for it.
    """
    spec = cr.get("spec", {})
    resources = spec.get("resources") or {}
    policy = spec.get("modelVersionPolicy") or DEFAULT_VERSION_POLICY
    name = endpoint_name(cr)
    tenant = str(cr["metadata"]["namespace"])
    return {
        "endpoint": {"name": name, "namespace": tenant, "uid": cr["metadata"].get("uid", "")},
        "tenant": tenant,
        "spec": {
            "modelName": str(spec.get("modelName", "")),
            "modelVersionPolicy": policy,
            "subjectName": str(spec.get("subjectName", "")),
            "servingName": str(spec.get("servingName", "")),
            "replicas": desired_replicas(cr),
            "resources": {
                "requests": {str(k): str(v) for k, v in (resources.get("requests") or {}).items()},
                "limits": {str(k): str(v) for k, v in (resources.get("limits") or {}).items()},
            },
        },
        "versionPolicy": parse_version_policy(policy),
        "host": endpoint_host(cr, platform),
        "platformDomain": platform.domain,
        "s3UseHttps": "1" if platform.s3_use_https else "0",
        "s3VerifySsl": "1" if platform.s3_verify_ssl else "0",
        # For the `image` filter only (not documented template variables).
        "_platform": platform,
        "_serving": serving or str(spec.get("servingName", "")),
    }


def render_part(template: ServingTemplate, part: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render one part to a Kubernetes object, checking it is the kind that part must be."""
    try:
        text = _compiled(template.source(part)).render(context)
    except TemplateError as exc:
        raise RenderError(f"{data_key(part)}: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        # Jinja parses and renders recursively: ~1,000 nested brackets or blocks overflow the stack.
        raise RenderError(f"{data_key(part)}: the template nests too deeply to compile") from None
    try:
        obj = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader, C or Python)
    except yaml.YAMLError as exc:
        raise RenderError(f"{data_key(part)}: the rendered text is not YAML: {exc}") from None
    except RecursionError:
        raise RenderError(f"{data_key(part)}: nests deeper than {MAX_OBJECT_DEPTH} levels") from None
    if nested_deeper_than(obj, MAX_OBJECT_DEPTH):
        # libyaml reads ~1,000 levels, but hashing, copying and applying the object would then
        # overflow the stack (a 500 when an admin saves such a template).
        raise RenderError(f"{data_key(part)}: nests deeper than {MAX_OBJECT_DEPTH} levels")
    api_version, kind = PARTS[part]
    if not isinstance(obj, dict) or obj.get("apiVersion") != api_version or obj.get("kind") != kind:
        raise RenderError(f"{data_key(part)}: must render one {api_version} {kind}")
    if not isinstance(obj.get("metadata", {}), dict):
        raise RenderError(f"{data_key(part)}: metadata must be a mapping")
    return obj


def owner_reference(cr: Mapping[str, Any]) -> dict[str, Any]:
    """The controller reference that makes Kubernetes garbage-collect the children with the CR."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": cr["metadata"]["name"],
        "uid": cr["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def config_hash(configmap: Mapping[str, Any]) -> str:
    """A short, stable digest of the rendered config; it changes exactly when the pods must reload."""
    payload = json.dumps(
        {"data": configmap.get("data") or {}, "binaryData": configmap.get("binaryData") or {}}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _own(obj: dict[str, Any], cr: Mapping[str, Any], name: str) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = cr["metadata"]["namespace"]
    metadata["labels"] = {**(metadata.get("labels") or {}), **OWNERSHIP_LABELS, ENDPOINT_LABEL: name}
    metadata["ownerReferences"] = [owner_reference(cr)]
    return obj


TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"


def _log_tail_on_error(pod_spec: dict[str, Any]) -> None:
    """Containers that leave no termination message get the tail of their log as one when they fail.

    Why: a runtime that cannot load its model exits with the reason in its last log lines; with this
    policy the kubelet copies them into the container status (at most 80 lines / 2 KiB), where the
    controller reads the reason for the endpoint's ``CrashLoop`` status without reading logs. A
    template that chose a policy keeps it.
    """
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, dict):
                container.setdefault("terminationMessagePolicy", TERMINATION_MESSAGE_POLICY)


def render_endpoint(
    cr: Mapping[str, Any], template: ServingTemplate, platform: Platform, *, store_key: str = ""
) -> list[dict[str, Any]]:
    """The four children of an endpoint, in apply order (ConfigMap, Service, Deployment, Ingress).

    ``store_key`` is the tenant's store-key generation: written on the pod template when set, so the
    pods read the access secret again (which holds a new key) when it changes.

    Raises RenderError for anything the endpoint's owner or the template's admin must fix, and its
    TemplateForbidden for a pod the restricted Pod Security Standards profile forbids.
    """
    context = template_context(cr, platform, template.name)
    name = context["endpoint"]["name"]
    objects = {part: _own(render_part(template, part, context), cr, name) for part in PARTS}
    deployment = objects["deployment"]
    spec = deployment.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
        raise RenderError(f"{data_key('deployment')}: spec.template must be a mapping")
    if not isinstance(spec["template"].get("spec"), dict):
        raise RenderError(f"{data_key('deployment')}: spec.template.spec must be a mapping")
    for part, obj in objects.items():
        violations = object_violations(obj)
        if violations:
            raise TemplateForbidden(part, violations)
    # 0 means 0, whatever the template wrote.
    spec["replicas"] = context["spec"]["replicas"]
    pod_template: dict[str, Any] = spec["template"]
    # The pods need no Kubernetes API: no token is mounted, whatever the template (or a default) says.
    pod_template["spec"]["automountServiceAccountToken"] = False
    _log_tail_on_error(pod_template["spec"])
    pod_metadata = pod_template.setdefault("metadata", {})
    pod_metadata["labels"] = {**(pod_metadata.get("labels") or {}), **OWNERSHIP_LABELS, ENDPOINT_LABEL: name}
    pod_metadata["annotations"] = {
        **(pod_metadata.get("annotations") or {}),
        CONFIG_HASH_ANNOTATION: config_hash(objects["configMap"]),
    }
    if store_key:
        pod_metadata["annotations"][STORE_KEY_ANNOTATION] = store_key
    return [copy.deepcopy(objects[part]) for part in PARTS]


def autoscaler_name(cr: Mapping[str, Any]) -> str:
    """The HPA is named after the endpoint, like the four children."""
    return endpoint_name(cr)


def render_autoscaler(cr: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``autoscaling/v2`` HorizontalPodAutoscaler of an endpoint with ``spec.autoscaling``, else None.

    It targets the InferenceEndpoint's ``scale`` subresource, not the Deployment: the HPA then writes
    ``spec.replicas`` on the CR, the one place the replica count lives, and the controller renders
    the Deployment from it like any other change (a Deployment target would be undone by the next
    reconcile). Not a template part: its shape is the platform's, whatever the serving. Owned by the
    endpoint, so it is garbage-collected with it.
    """
    scaling = (cr.get("spec") or {}).get("autoscaling")
    if not scaling:
        return None
    name = autoscaler_name(cr)
    behavior = {}
    if scaling.get("scaleDownStabilizationSeconds") is not None:
        behavior = {"scaleDown": {"stabilizationWindowSeconds": int(scaling["scaleDownStabilizationSeconds"])}}
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {},
        "spec": {
            "scaleTargetRef": {"apiVersion": API_VERSION, "kind": KIND, "name": cr["metadata"]["name"]},
            "minReplicas": int(scaling["minReplicas"]),
            "maxReplicas": int(scaling["maxReplicas"]),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": int(scaling["targetCPUUtilization"])},
                    },
                }
            ],
        },
    }
    if behavior:
        hpa["spec"]["behavior"] = behavior
    return _own(hpa, cr, name)


def deployment_selector(deployment: Mapping[str, Any]) -> str:
    """The Deployment's selector as a label-selector string (``status.selector`` for the scale subresource)."""
    labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {}) or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


SAMPLE_ENDPOINT: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {"name": "sample", "namespace": "sample-tenant", "uid": "00000000-0000-0000-0000-000000000000"},
    "spec": {
        "endpointName": "sample",
        "modelName": "resnet",
        "modelVersionPolicy": "{specific{versions:1 versions:12 }}",
        "subjectName": "client.example.com",
        "servingName": "sample",
        "replicas": 2,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    },
}


def render_sample(template: ServingTemplate, platform: Platform) -> list[dict[str, Any]]:
    """Render against a sample endpoint: how an admin's template is checked before it is saved."""
    return render_endpoint(SAMPLE_ENDPOINT, template, platform)
