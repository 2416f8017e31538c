"""Rendering of the shipped templates: exact fields where clients and pods depend on them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from inferencemgmt.resources import ENDPOINT_LABEL
from servings.catalogue import PARTS, data_key, serving_template_configmaps, shipped_templates
from servings.controller.rendering import (
    CONFIG_HASH_ANNOTATION,
    Platform,
    RenderError,
    ServingTemplate,
    deployment_selector,
    endpoint_url,
    parse_version_policy,
    render_endpoint,
)

pytestmark = pytest.mark.unit

PLATFORM = Platform(domain="imm.local")
CR: dict[str, Any] = {
    "apiVersion": "ai.intel.com/v1",
    "kind": "InferenceEndpoint",
    "metadata": {"name": "resnet", "namespace": "team-a", "uid": "1234-uid", "generation": 3},
    "spec": {
        "endpointName": "resnet",
        "modelName": "resnet50",
        "modelVersionPolicy": "{specific{versions:1 versions:12 }}",
        "subjectName": "client.example.com",
        "servingName": "tf-serving",
        "replicas": 2,
        "resources": {"requests": {"cpu": "+1", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}},
    },
}


def template(name: str) -> ServingTemplate:
    return ServingTemplate(name, shipped_templates()[name])


def render(cr: dict[str, Any] = CR, serving: str = "tf-serving") -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in render_endpoint(cr, template(serving), PLATFORM)}


def with_spec(**changes: Any) -> dict[str, Any]:
    cr = copy.deepcopy(CR)
    cr["spec"].update(changes)
    return cr


def test_four_objects_in_apply_order_with_owner_reference_and_labels():
    objects = render_endpoint(CR, template("tf-serving"), PLATFORM)
    assert [o["kind"] for o in objects] == ["ConfigMap", "Service", "Deployment", "Ingress"]
    for obj in objects:
        assert obj["metadata"]["name"] == "resnet"
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "ai.intel.com/v1",
                "kind": "InferenceEndpoint",
                "name": "resnet",
                "uid": "1234-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = obj["metadata"]["labels"]
        assert labels["id"] == labels["endpoint"] == labels[ENDPOINT_LABEL] == "resnet"
        assert labels["app.kubernetes.io/managed-by"] == "imm-controller"


def test_tf_conf_byte_for_byte_with_multi_digit_versions():
    assert render()["ConfigMap"]["data"] == {
        "tf.conf": (
            "model_config_list: {\n"
            "  config:{\n"
            '    name:"resnet50",\n'
            '    base_path:"s3://team-a/resnet50",\n'
            '    model_platform:"tensorflow",\n'
            "    model_version_policy: {specific{versions:1 versions:12 }}\n"
            "  }\n"
            "}\n"
        )
    }


def test_tf_conf_reads_as_the_original_tests_read_it():
    """The original endpoint test (docs/compatibility.md) patches modelName to "new-name" and
    looks for `name:"new-name"` and `s3://<tenant>/new-name` in the ConfigMap's text."""
    tf_conf = render(with_spec(modelName="new-name", modelVersionPolicy="{specific{versions:2 }}"))["ConfigMap"]
    text = tf_conf["data"]["tf.conf"]
    assert 'name:"new-name"' in text
    assert 'base_path:"s3://team-a/new-name"' in text
    assert 'model_platform:"tensorflow"' in text
    assert "model_version_policy: {specific{versions:2 }}" in text


def test_ovms_json_honours_the_version_policy():
    config = json.loads(render(serving="ovms")["ConfigMap"]["data"]["ovms.json"])
    assert config == {
        "model_config_list": [
            {
                "config": {
                    "name": "resnet50",
                    "base_path": "s3://team-a/resnet50",
                    "model_version_policy": {"specific": {"versions": [1, 12]}},
                }
            }
        ]
    }
    latest = json.loads(render(with_spec(modelVersionPolicy="{latest{}}"), "ovms")["ConfigMap"]["data"]["ovms.json"])
    assert latest["model_config_list"][0]["config"]["model_version_policy"] == {"latest": {"num_versions": 1}}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("{latest{}}", {"kind": "latest", "versions": []}),
        ("{ all { } }", {"kind": "all", "versions": []}),
        ("{specific{versions:3 versions:10 versions:123 }}", {"kind": "specific", "versions": [3, 10, 123]}),
    ],
)
def test_version_policy_parsing(policy, expected):
    assert parse_version_policy(policy) == expected


def test_unparseable_version_policy_is_a_render_error():
    with pytest.raises(RenderError, match="modelVersionPolicy"):
        parse_version_policy("{newest{}}")


def test_deployment_as_the_original_with_the_fixes():
    deployment = render()["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"endpoint": "resnet"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "tf-serving"
    # TF Serving 2.x, by repository path (no registry named; the platform setting chooses where from).
    assert container["image"] == "tensorflow/serving:2.18.0"
    assert container["command"] == [
        "tensorflow_model_server",
        "--port=9000",
        "--rest_api_port=8501",
        "--model_config_file=/config/tf.conf",
    ]
    assert container["ports"] == [{"name": "grpc", "containerPort": 9000}, {"name": "http", "containerPort": 8501}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/resnet50", "port": 8501}
    # A value the original HTML-escaped ("+" -> "&#43;") arrives as written.
    assert container["resources"] == {"requests": {"cpu": "+1", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "minio-access-info", "key": "minio.access_key_id"}}
    assert env["S3_ENDPOINT"] == {"secretKeyRef": {"name": "minio-access-info", "key": "minio.endpoint"}}
    assert env["AWS_ENDPOINT_URL"] == {"secretKeyRef": {"name": "minio-access-info", "key": "minio.endpoint_url"}}
    assert env["BUCKET_NAME"] == "team-a"
    assert env["S3_USE_HTTPS"] == "0"


def test_ovms_deployment_image_command_and_endpoint_variable():
    container = render(serving="ovms")["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    # OpenVINO Model Server of today, by repository path; gRPC on 9000 as before, REST (KServe V2) on 8000.
    assert container["image"] == "openvino/model_server:2025.1"
    assert container["command"] == [
        "/ovms/bin/ovms",
        "--config_path",
        "/config/ovms.json",
        "--port",
        "9000",
        "--rest_port",
        "8000",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["S3_ENDPOINT"] == {"secretKeyRef": {"name": "minio-access-info", "key": "minio.endpoint_url"}}
    assert "AWS_ENDPOINT_URL" not in env


def test_zero_replicas_means_zero_and_absent_means_one():
    assert render(with_spec(replicas=0))["Deployment"]["spec"]["replicas"] == 0
    cr = copy.deepcopy(CR)
    del cr["spec"]["replicas"]
    assert render(cr)["Deployment"]["spec"]["replicas"] == 1


def test_config_hash_changes_with_model_or_policy_only():
    def config_hash(cr: dict[str, Any]) -> str:
        return str(render(cr)["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])

    base = config_hash(CR)
    assert len(base) == 16
    assert config_hash(with_spec(modelName="other")) != base
    assert config_hash(with_spec(modelVersionPolicy="{all{}}")) != base
    assert config_hash(with_spec(subjectName="someone.else", replicas=5)) == base


def test_ingress_host_tls_and_client_certificate_annotations():
    ingress = render()["Ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["tls"] == [{"hosts": ["resnet-team-a.imm.local"], "secretName": "tls-secret"}]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "resnet-team-a.imm.local"
    assert rule["http"]["paths"][0]["backend"] == {"service": {"name": "resnet", "port": {"number": 9000}}}
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-secret"] == "team-a/ca-cert-secret"
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "on"
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-verify-depth"] == "1"
    assert annotations["allowed-values"] == "CN=client.example.com"
    assert endpoint_url(CR, PLATFORM) == "resnet-team-a.imm.local:443"


def test_service_selects_the_pods_on_port_9000():
    service = render()["Service"]
    assert service["spec"]["selector"] == {"endpoint": "resnet"}
    assert service["spec"]["ports"] == [
        {"name": "grpc", "port": 9000, "targetPort": 9000},
        {"name": "http", "port": 8501, "targetPort": 8501},
    ]
    annotations = service["metadata"]["annotations"]
    assert annotations["ai.intel.com/protocol"] == "TensorFlow Serving API"
    assert annotations["ai.intel.com/http-path"] == "/v1/models/resnet50:predict"
    ovms = render(serving="ovms")["Service"]
    assert [(port["name"], port["port"]) for port in ovms["spec"]["ports"]] == [("grpc", 9000), ("http", 8000)]
    assert ovms["metadata"]["annotations"]["ai.intel.com/http-path"] == "/v2/models/resnet50/infer"
    assert deployment_selector(render()["Deployment"]) == "endpoint=resnet"


def test_hostile_values_stay_values():
    """Quotes, YAML syntax and newlines in a value can neither break the YAML nor add keys."""
    nasty = 'x", evil: "1\nkind: Secret'
    objects = render(with_spec(subjectName=nasty, modelName='m"odel: {x}'))
    assert objects["Ingress"]["metadata"]["annotations"]["allowed-values"] == "CN=" + nasty
    assert 'name:"m\\"odel: {x}",' in objects["ConfigMap"]["data"]["tf.conf"]
    assert "evil" not in objects["Ingress"]["metadata"]["annotations"]


def test_template_cannot_escape_the_tenant():
    texts = dict(shipped_templates()["tf-serving"])
    texts[data_key("service")] = texts[data_key("service")].replace(
        "namespace: {{ tenant | q }}", "namespace: kube-system"
    )
    assert "kube-system" in texts[data_key("service")]
    objects = render_endpoint(CR, ServingTemplate("evil", texts), PLATFORM)
    assert {o["metadata"]["namespace"] for o in objects} == {"team-a"}


@pytest.mark.parametrize(
    ("part", "text", "message"),
    [
        ("deployment", "{{ nosuchvariable }}", "is undefined"),
        ("service", "{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("ingress", "apiVersion: v1\nkind: Secret\n", "must render one networking.k8s.io/v1 Ingress"),
        ("configMap", "a: [unclosed", "not YAML"),
        # Issue 17, finding 6's class: nesting that overflows the stack later (a 500 on save).
        ("service", "apiVersion: v1\nkind: Service\nx: " + "[" * 990 + "]" * 990, "nests deeper than 64 levels"),
        ("service", "apiVersion: v1\nkind: Service\nx: " + "[" * 65 + "]" * 65, "nests deeper than 64 levels"),
        ("configMap", "a: " + "{b: " * 20000 + "}" * 20000, "not YAML"),  # libyaml's own limit
        ("deployment", "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", "nests too deeply"),  # Jinja's parser
        ("ingress", "{% if 1 %}" * 500 + "{% endif %}" * 500, "nests too deeply"),
    ],
)
def test_broken_templates_raise_render_error(part, text, message):
    texts = dict(shipped_templates()["tf-serving"])
    texts[data_key(part)] = text
    with pytest.raises(RenderError, match=message):
        render_endpoint(CR, ServingTemplate("broken", texts), PLATFORM)


def test_catalogue_configmaps_keep_the_original_data_keys():
    configmaps = {c["metadata"]["name"]: c for c in serving_template_configmaps("imm-servings")}
    assert sorted(configmaps) == ["mlserver", "ovms", "tf-serving", "triton"]
    for configmap in configmaps.values():
        assert configmap["metadata"]["namespace"] == "imm-servings"
        assert configmap["metadata"]["labels"]["ai.intel.com/serving-template"] == "true"
        assert sorted(configmap["data"]) == sorted(data_key(p) for p in PARTS)
        assert sorted(configmap["data"]) == ["configMap.tmpl", "deployment.tmpl", "ingress.tmpl", "service.tmpl"]


@pytest.mark.parametrize("serving", ["tf-serving", "ovms", "triton"])
def test_every_container_leaves_its_log_tail_as_termination_message(serving):
    pod = render(with_spec(servingName=serving), serving)["Deployment"]["spec"]["template"]["spec"]
    containers = [*(pod.get("initContainers") or []), *pod["containers"]]
    assert containers
    assert {c["terminationMessagePolicy"] for c in containers} == {"FallbackToLogsOnError"}


def test_a_template_that_chose_a_termination_message_policy_keeps_it():
    texts = dict(shipped_templates()["tf-serving"])
    deployment = texts[data_key("deployment")]
    marker = "      containers:\n        - name:"
    assert marker in deployment
    texts[data_key("deployment")] = deployment.replace(
        marker, "      containers:\n        - terminationMessagePolicy: File\n          name:"
    )
    objects = {o["kind"]: o for o in render_endpoint(CR, ServingTemplate("own", texts), PLATFORM)}
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["terminationMessagePolicy"] == "File"
