"""Unit tests of the pure parts of devstack.chart and its modules: kubeconform's schema layout from a cluster's OpenAPI
document, and the chart's own least-privilege and hardening rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from devstack import chart, chart_e2e, chart_policy, chart_schema
from devstack.proc import StackError
from servings import catalogue

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent.parent

OPENAPI: dict[str, Any] = {
    "definitions": {
        "io.k8s.api.apps.v1.Deployment": {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
            },
            "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
        },
        "io.k8s.api.apps.v1.DeploymentSpec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "maxSurge": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
                "cpu": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
        "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
        "io.k8s.api.core.v1.Unrelated": {"type": "object", "properties": {"x": {"type": "string"}}},
        "io.k8s.api.core.v1.ConfigMap": {
            "type": "object",
            "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}],
        },
    }
}


@pytest.mark.parametrize(
    ("api_version", "kind", "name"),
    [
        ("apps/v1", "Deployment", "deployment-apps-v1.json"),
        ("v1", "ConfigMap", "configmap-v1.json"),
        ("networking.k8s.io/v1", "Ingress", "ingress-networking-v1.json"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterrole-rbac-v1.json"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinition-apiextensions-v1.json"),
    ],
)
def test_schema_filename_follows_kubeconform_layout(api_version: str, kind: str, name: str) -> None:
    assert chart_schema.schema_filename(api_version, kind) == name


def test_standalone_schema_is_self_contained_strict_and_minimal() -> None:
    schemas = chart_schema.standalone_schemas(OPENAPI, [("apps/v1", "Deployment"), ("v1", "ConfigMap")])
    assert set(schemas) == {"deployment-apps-v1.json", "configmap-v1.json"}
    deployment = schemas["deployment-apps-v1.json"]
    assert deployment["$ref"] == "#/definitions/io.k8s.api.apps.v1.Deployment"
    definitions = deployment["definitions"]
    # Only what the kind reaches, so each file stands alone and stays small.
    assert "io.k8s.api.core.v1.Unrelated" not in definitions
    assert definitions["io.k8s.api.apps.v1.Deployment"]["additionalProperties"] is False
    spec = definitions["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["additionalProperties"] is False
    # A map keeps its own additionalProperties.
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    }
    assert {"type": "number"} in definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"]


def test_standalone_schemas_leave_the_input_alone() -> None:
    before = copy.deepcopy(OPENAPI)
    chart_schema.standalone_schemas(OPENAPI, [("apps/v1", "Deployment")])
    assert before == OPENAPI


def test_a_kind_the_cluster_does_not_serve_is_an_error() -> None:
    with pytest.raises(StackError, match="serves no Ingress in extensions/v1beta1"):
        chart_schema.standalone_schemas(OPENAPI, [("extensions/v1beta1", "Ingress")])


def test_cluster_version_comes_from_the_openapi_document() -> None:
    assert chart.cluster_version({"info": {"version": "1.37"}}) == "1.37.0"
    assert chart.cluster_version({"info": {"version": "v1.30.2"}}) == "1.30.2"


def _deployment(**container_overrides: Any) -> dict[str, Any]:
    container = {
        "name": "api",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz"}},
        "livenessProbe": {"httpGet": {"path": "/healthz"}},
    }
    container.update(container_overrides)
    return {
        "kind": "Deployment",
        "metadata": {"name": "imm-api", "labels": {"app.kubernetes.io/component": "api"}},
        "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": True}, "containers": [container]}}},
    }


def test_policy_accepts_a_hardened_deployment() -> None:
    assert chart_policy.policy_problems([_deployment()]) == []


def test_policy_names_each_weakness() -> None:
    weak = _deployment(securityContext={"privileged": True}, resources={}, readinessProbe={})
    problems = "\n".join(chart_policy.policy_problems([weak]))
    for expected in (
        "allowPrivilegeEscalation is not false",
        "root filesystem is writable",
        "privileged",
        "capabilities not dropped",
        "no cpu and memory requests",
        "no cpu and memory limits",
        "readiness probe is not /readyz",
    ):
        assert expected in problems


def test_policy_refuses_wildcards_escalation_and_builtin_admin_roles() -> None:
    objects = [
        {
            "kind": "ClusterRole",
            "metadata": {"name": "x"},
            "rules": [{"apiGroups": ["*"], "resources": ["a"], "verbs": ["get"]}],
        },
        {
            "kind": "Role",
            "metadata": {"name": "y"},
            "rules": [{"apiGroups": [""], "resources": ["roles"], "verbs": ["bind"]}],
        },
        {"kind": "ClusterRoleBinding", "metadata": {"name": "z"}, "roleRef": {"name": "cluster-admin"}},
    ]
    problems = chart_policy.policy_problems(objects)
    assert problems == [
        "ClusterRole/x: wildcard in apiGroups",
        "Role/y: grants ['bind']",
        "ClusterRoleBinding/z: binds the built-in role cluster-admin",
    ]


def test_rbac_probes_cover_what_the_issue_promises() -> None:
    probes = chart_e2e.rbac_probes("imm-x")
    api = {(p.verb, p.resource, p.namespace, p.name): p.expected for p in probes["management-api"]}
    assert api[("impersonate", "users", "", "")] is True
    assert api[("impersonate", "groups", "", "")] is True
    assert api[("list", "secrets", "", "")] is False
    assert api[("bind", "clusterroles", "", "cluster-admin")] is False
    assert api[("escalate", "clusterroles", "", "")] is False
    # docs/endpoint-quota.md: a stale endpoint count may be corrected, no limit changed.
    status = {(p.verb, p.resource, p.subresource): p.expected for p in probes["management-api"]}
    assert status[("update", "resourcequotas", "status")] is True
    assert status[("update", "resourcequotas", "")] is False


def test_serving_templates_have_one_source_inside_the_chart() -> None:
    # Helm cannot read outside the chart, so the files live there; nothing may grow a second copy.
    assert catalogue.TEMPLATES_DIR == ROOT / "helm" / "imm" / "files" / "serving-templates"
    assert not (ROOT / "servings" / "serving_templates").exists()
    assert set(catalogue.shipped_templates()) == {"tf-serving", "ovms", "triton", "mlserver"}


def test_e2e_values_point_at_the_devstack_and_hold_no_secret() -> None:
    devstack = {
        "S3_ENDPOINT_URL": "http://127.0.0.1:18333",
        "OIDC_ISSUER": "https://127.0.0.1:15556/dex",
        "S3_SECRET_ACCESS_KEY": "do-not-leak",
        "OIDC_API_CLIENT_SECRET": "do-not-leak",
    }
    values = chart_e2e.e2e_values(devstack, "team-admins")
    assert values["objectStore"]["endpointUrl"] == "http://127.0.0.1:18333"
    assert values["adminGroup"] == "team-admins"
    assert "do-not-leak" not in repr(values)


def _settings_variables() -> set[str]:
    import re

    source = (ROOT / "inferencemgmt" / "settings.py").read_text()
    return set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", source))


# Read by the processes themselves rather than by settings.py.
NOT_SETTINGS = {"GUNICORN_CMD_ARGS", "POD_NAME", "DJANGO_SETTINGS_MODULE"}


def test_every_variable_the_chart_sets_is_read_by_the_product() -> None:
    """The original chart set STATIC_CLIENT_ID, which its code never read; a typo here would be silent too."""
    import re

    names: set[str] = set()
    for template in (ROOT / "helm" / "imm" / "templates").glob("*"):
        names |= set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)$", template.read_text(), re.M))
    assert len(names) > 20
    assert names - NOT_SETTINGS - _settings_variables() == set()


def test_every_variable_compose_sets_for_the_product_is_read_by_it() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    names: set[str] = set()
    for service in ("api", "worker", "beat", "controller", "migrate"):
        names |= set(compose["services"][service]["environment"])
    assert names - NOT_SETTINGS - _settings_variables() == set()


# --- values.schema.json ---------------------------------------------------------------------------

VALUES_SCHEMA = ROOT / "helm" / "imm" / "values.schema.json"


def _values() -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load((ROOT / "helm" / "imm" / "values.yaml").read_text())
    return loaded


def _schema_errors(values: dict[str, Any]) -> list[str]:
    import json

    import jsonschema  # type: ignore[import-untyped]  # drf-spectacular's dependency; no stubs

    validator = jsonschema.Draft7Validator(json.loads(VALUES_SCHEMA.read_text()))
    return sorted(error.message for error in validator.iter_errors(values))


def _key_paths(values: Any, schema: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """(keys of values.yaml, properties of the schema), recursively where the schema is closed."""
    if not isinstance(values, dict) or "properties" not in schema:
        return set(), set()
    keys = {f"{prefix}{key}" for key in values}
    props = {f"{prefix}{key}" for key in schema["properties"]}
    for key, sub in schema["properties"].items():
        more_keys, more_props = _key_paths(values.get(key), sub, f"{prefix}{key}.")
        keys |= more_keys
        props |= more_props
    return keys, props


def test_the_values_schema_describes_exactly_the_shipped_values() -> None:
    import json

    schema = json.loads(VALUES_SCHEMA.read_text())
    keys, props = _key_paths(_values(), schema)
    assert len(keys) > 100
    assert keys - props == set()
    # The schema may name more than values.yaml sets only inside Kubernetes' own structures
    # (optional fields of a security context or of resources), never a setting of the chart.
    optional = props - keys
    assert all(
        path.split(".")[0] in {"securityContext", "podSecurityContext"} or ".resources." in path for path in optional
    ), sorted(optional)
    # Closed everywhere a typo could hide: every object with named properties refuses others.

    def open_objects(node: Any, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        found = [path] if "properties" in node and node.get("additionalProperties") is not False else []
        for key, sub in node.get("properties", {}).items():
            found += open_objects(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            found += open_objects(node["items"], f"{path}[]")
        return found

    assert open_objects(schema, "") == []


def test_the_shipped_and_ci_values_pass_the_schema() -> None:
    import yaml

    values = _values()
    assert _schema_errors(values) == []
    ci = yaml.safe_load((ROOT / "helm" / "imm" / "ci" / "test-values.yaml").read_text())
    merged = copy.deepcopy(values)
    for key, value in ci.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    assert _schema_errors(merged) == []
    assert _schema_errors(chart_e2e.e2e_values({"S3_ENDPOINT_URL": "http://x", "OIDC_ISSUER": "https://y"}, "g")) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api": {"replica": 3}}, "'replica' was unexpected"),
        ({"imageRegistery": "mirror.example"}, "'imageRegistery' was unexpected"),
        ({"securityContext": {"readOnlyRootFilesytem": True}}, "'readOnlyRootFilesytem' was unexpected"),
        ({"image": {"pullPolicy": "Sometimes"}}, "'Sometimes' is not one of"),
        ({"servingImages": {"triton": 3}}, "3 is not of type 'string'"),
        ({"global": {"imageRegistry": "mirror.example/"}}, "does not match"),
    ],
)
def test_the_values_schema_refuses_a_typo(change: dict[str, Any], message: str) -> None:
    values = _values()
    for key, value in change.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    errors = _schema_errors(values)
    assert any(message in error for error in errors), errors


def test_real_node_values_place_every_product_pod_on_the_node_and_pass_the_schema() -> None:
    from devstack import chart_node, realnode

    devstack = {
        "S3_ENDPOINT_URL": "http://127.0.0.1:18333",
        "IMM_DEVSTACK_S3_CLUSTER_URL": "http://10.87.0.1:18333",
        "OIDC_ISSUER": "https://127.0.0.1:15556/dex",
        "OIDC_API_CLIENT_SECRET": "do-not-leak",
        "SERVING_IMAGES": json.dumps(
            {"triton": "imm.local/devstack/triton:c5186a15", "mlserver": "imm.local/devstack/mlserver:e8"}
        ),
    }
    values = chart_node.node_values(devstack, "e2e-1", "https://10.87.0.1:4444/dex", "imm-database")
    assert _schema_errors(values) == []
    assert "do-not-leak" not in repr(values)
    assert (values["global"]["imageRegistry"], values["image"]["repository"], values["image"]["tag"]) == (
        "imm.local", "imm", "e2e-1",
    )  # fmt: skip
    assert values["image"]["pullPolicy"] == "IfNotPresent"
    for component in ("api", "worker", "beat", "controller", "migrations"):
        assert values[component]["nodeSelector"] == {realnode.PLACEMENT_KEY: "true"}, component
        assert values[component]["tolerations"] == [
            {"key": realnode.PLACEMENT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ], component
    assert values["api"]["replicas"] == 2
    # The devstack's serving builds, without the registry the chart puts back in front: the
    # release's controller renders the triton endpoint on the image the node has.
    assert values["servingImages"] == {"triton": "devstack/triton:c5186a15", "mlserver": "devstack/mlserver:e8"}
    assert values["objectStore"]["endpointUrl"] == "http://10.87.0.1:18333"
    assert values["oidc"]["issuer"] == "https://10.87.0.1:4444/dex"
    # Nothing about the pods' hardening is relaxed for the node.
    assert "securityContext" not in values
    assert "podSecurityContext" not in values


@pytest.mark.parametrize(
    "serving_images", ["", '{"mlserver": "imm.local/devstack/mlserver:e8"}', '{"triton": "nvidia/tritonserver:24.10"}']
)
def test_real_node_values_need_the_devstacks_triton_build(serving_images: str) -> None:
    from devstack import chart_node
    from devstack.proc import StackError

    with pytest.raises(StackError, match=r"names no triton build under imm\.local/"):
        chart_node.serving_images({"SERVING_IMAGES": serving_images})


def test_pod_side_urls_keep_credentials_and_change_only_the_address() -> None:
    from devstack import chart_node

    moved = chart_node._with_host("postgres://imm:s3cr%40t@127.0.0.1:15432/imm", "10.87.0.1", 4321, "/imm_e2e_1")
    assert moved == "postgres://imm:s3cr%40t@10.87.0.1:4321/imm_e2e_1"
    assert chart_node._with_host("redis://127.0.0.1:16379/0", "10.87.0.1", 5, "/7") == "redis://10.87.0.1:5/7"
