"""Endpoint request validation, normalisation and the CR spec: the documented texts and the two fixes."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from endpoints.api.serializers import (
    EndpointCreateSerializer,
    EndpointNameSerializer,
    EndpointScaleSerializer,
    EndpointUpdateSerializer,
    endpoint_create_arguments,
    validate_tail,
)
from endpoints.spec import (
    check_quota_compliance,
    endpoint_manifest,
    flatten_resources,
    normalize_version_policy,
    required_resources,
    split_resources,
)
from inferencemgmt.api.exceptions import as_domain_error
from inferencemgmt.errors import BadRequest

pytestmark = pytest.mark.unit


def good(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"endpointName": "predict", "modelName": "resnet", "subjectName": "client"}
    body.update(changes)
    return body


def create(body: Any, tenant: str = "team") -> dict[str, Any]:
    serializer = EndpointCreateSerializer(data=body, context={"tenant": tenant})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def refusal(serializer_class: Any, body: Any, **context: Any) -> str:
    """The description the API answers with (the first failing field, named)."""
    serializer = serializer_class(data=body, context=context)
    with pytest.raises(ValidationError) as caught:
        serializer.is_valid(raise_exception=True)
    error = as_domain_error(caught.value)
    assert error is not None
    assert error.status == 400
    assert error.title == "Failed data validation"
    return str(error.description)


def create_refusal(body: Any, tenant: str = "team") -> str:
    return refusal(EndpointCreateSerializer, body, tenant=tenant)


# --- modelVersionPolicy ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "normalised"),
    [
        ("{specific {versions: 1}}", "{specific{versions:1 }}"),
        ("{ all { } }", "{all{}}"),
        ("{latest{}}", "{latest{}}"),
        ("{specific{versions:1 versions:2}}", "{specific{versions:1 versions:2 }}"),
        # The fix: a number stays whole (the original wrote `versions:1 2 `).
        ("{specific{versions: 12}}", "{specific{versions:12 }}"),
        ("{specific{versions:3 versions:104}}", "{specific{versions:3 versions:104 }}"),
        ("  {\n specific\t{ versions:\n7   versions: 10 } }  ", "{specific{versions:7 versions:10 }}"),
    ],
)
def test_version_policy_normalisation(policy, normalised):
    assert normalize_version_policy(policy) == normalised
    assert create(good(modelVersionPolicy=policy))["modelVersionPolicy"] == normalised


@pytest.mark.parametrize(
    "policy",
    [
        "{latest{num_versions: 2}}",
        "{specific{versions : 1}}",
        "{specific{}}",
        "{specific{versions:1versions:2}}",
        "{newest{}}",
        "latest{}",
        "{latest{}}}",
        "{specific{versions:-1}}",
    ],
)
def test_version_policy_grammar_refusals(policy):
    assert create_refusal(good(modelVersionPolicy=policy)).startswith(
        f"modelVersionPolicy: {policy!r} does not match '^\\s*{{"
    )


def test_version_policy_defaults_to_latest_and_serving_to_tf_serving():
    data = create(good())
    assert data["modelVersionPolicy"] == "{latest{}}"
    assert data["servingName"] == "tf-serving"
    assert "replicas" not in data
    assert "resources" not in data


# --- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"modelName": "resnet", "subjectName": "c"}, "endpointName: 'endpointName' is a required property"),
        (good(modelName=None), "modelName: None is not of type 'string' ('modelName')"),
        ({"endpointName": "predict", "modelName": "resnet"}, "subjectName: 'subjectName' is a required property"),
        (good(endpointName="ab"), "endpointName: 'ab' is too short"),
        (good(endpointName="_"), "endpointName: '_' does not match '^[a-z]([-a-z0-9]*[a-z0-9])?$'"),  # pattern first
        (good(endpointName="1predict"), "endpointName: '1predict' does not match '^[a-z]([-a-z0-9]*[a-z0-9])?$'"),
        (good(endpointName="pre_dict"), "endpointName: 'pre_dict' does not match '^[a-z]([-a-z0-9]*[a-z0-9])?$'"),
        (good(endpointName="predict\n"), "endpointName: 'predict\\n' does not match '^[a-z]([-a-z0-9]*[a-z0-9])?$'"),
        (good(endpointName=5), "endpointName: 5 is not of type 'string'"),
        (good(modelName=0), "modelName: 0 is not of type 'string'"),
        (good(modelName="ab"), "modelName: 'ab' is too short"),
        (good(modelName="res/net"), "modelName: 'res/net' does not match '^[^/\\s\\x00-\\x1f\\x7f]+$'"),
        (good(modelName="res net"), "modelName: 'res net' does not match '^[^/\\s\\x00-\\x1f\\x7f]+$'"),
        (good(subjectName="bad subject"), "subjectName: 'bad subject' does not match '^(([a-zA-Z0-9]|"),
        (good(servingName="tf"), "servingName: 'tf' is too short"),
    ],
)
def test_body_refusals_name_the_field(body, message):
    assert create_refusal(body).startswith(message)


def test_endpoint_and_tenant_must_fit_one_dns_label():
    tenant = "t" * 40
    assert create(good(endpointName="e" * 22), tenant=tenant)["endpointName"] == "e" * 22  # 22 + 1 + 40 = 63
    message = create_refusal(good(endpointName="e" * 23), tenant=tenant)
    assert message.startswith(f"endpointName: '{'e' * 23}-{tenant}' is too long")
    assert "63" in message


def test_unknown_keys_are_accepted_and_dropped():
    data = create(good(colour="blue"))
    assert "colour" not in data


# --- replicas -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        (-1, "replicas: -1 is less than the minimum of 0"),
        ("many", "replicas: 'many' is not of type 'integer'"),
        (True, "replicas: True is not of type 'integer'"),
        (1.5, "replicas: 1.5 is not of type 'integer'"),
        (2**31, f"replicas: {2**31} is greater than the maximum of {2**31 - 1}"),
    ],
)
def test_replicas_refusals(replicas, message):
    assert create_refusal(good(replicas=replicas)) == message
    assert refusal(EndpointScaleSerializer, {"replicas": replicas}) == message


def test_scale_body():
    assert refusal(EndpointScaleSerializer, {}) == "replicas: 'replicas' is a required property"
    serializer = EndpointScaleSerializer(data={"replicas": 0})
    assert serializer.is_valid()
    assert serializer.validated_data == {"replicas": 0}
    assert create(good(replicas=0))["replicas"] == 0


# --- resources ------------------------------------------------------------------------------------
def test_resources_are_flat_keys_split_on_the_first_dot():
    resources = {"requests.cpu": "500m", "limits.memory": "1Gi", "requests.nvidia.com/gpu": 1}
    data = create(good(resources=resources))
    assert data["resources"] == {"requests.cpu": "500m", "limits.memory": "1Gi", "requests.nvidia.com/gpu": "1"}
    assert split_resources(data["resources"]) == {
        "requests": {"cpu": "500m", "nvidia.com/gpu": "1"},
        "limits": {"memory": "1Gi"},
    }
    assert flatten_resources(split_resources(data["resources"])) == data["resources"]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"requests.cpu": "-1"}, "resources: requests.cpu: '-1' does not match"),
        ({"requests.cpu": "1-"}, "resources: requests.cpu: '1-' does not match"),
        ({"limits.memory": "1Ga"}, "resources: limits.memory: '1Ga' does not match"),
        ({"limits.memory": "1.2.3"}, "resources: limits.memory: '1.2.3' does not match"),
        ({"limits.memory": "1iii"}, "resources: limits.memory: '1iii' does not match"),
        ({"limits.memory": True}, "resources: limits.memory: True is not of type 'string'"),
        ({"cpu": "1"}, "resources: 'cpu' is not a resource key; use requests.<resource> or limits.<resource>"),
        ({"request.cpu": "1"}, "resources: 'request.cpu' is not a resource key"),
        ({"requests.": "1"}, "resources: 'requests.' is not a resource key"),
        ({"requests": {"cpu": "1"}}, "resources: 'requests' is not a resource key"),
        ("1 cpu", "resources: '1 cpu' is not of type 'object'"),
    ],
)
def test_resource_refusals(resources, message):
    assert create_refusal(good(resources=resources)).startswith(message)


# --- quota compliance -----------------------------------------------------------------------------
HARD = {
    "requests.cpu": "2",
    "limits.memory": "4Gi",
    "count/inference-endpoints.ai.intel.com": "3",
    "requests.nvidia.com/gpu": "1",
    "pods": "10",
}


def test_only_compute_resources_of_the_quota_are_required():
    assert required_resources(HARD) == {"requests.cpu": "2", "limits.memory": "4Gi"}
    assert required_resources({"cpu": "1", "memory": "1Gi"}) == {"requests.cpu": "1", "requests.memory": "1Gi"}
    assert required_resources({"count/inference-endpoints.ai.intel.com": "1"}) == {}


def test_quota_compliance_texts():
    with pytest.raises(BadRequest) as empty:
        check_quota_compliance("team", HARD, {})
    assert (empty.value.status, empty.value.title) == (400, "Invalid parameter")
    assert empty.value.description == (
        'The "resources" parameter is invalid. No resources provided. There\'s resource quota specified in '
        "team tenant: {'requests.cpu': '2', 'limits.memory': '4Gi'} Please fill resource field with given keys "
        "in your request"
    )
    with pytest.raises(BadRequest) as absent:
        check_quota_compliance("team", HARD, None)
    assert "No resources provided" in str(absent.value.description)
    with pytest.raises(BadRequest) as missing:
        check_quota_compliance("team", HARD, {"requests.cpu": "1"})
    assert missing.value.description == (
        'The "resources" parameter is invalid. Missing resources values. You need to provide: '
        "{'limits.memory': '4Gi'}"
    )
    # Extra keys are allowed, values are not compared; no compute quota means no requirement.
    check_quota_compliance("team", HARD, {"requests.cpu": "9", "limits.memory": "1Mi", "limits.cpu": "1"})
    check_quota_compliance("team", {"count/inference-endpoints.ai.intel.com": "1"}, None)
    check_quota_compliance("team", {}, {})


# --- the CR ---------------------------------------------------------------------------------------
def test_manifest_is_the_documented_cr():
    data = create(good(modelVersionPolicy="{specific {versions: 12}}", replicas=2, resources={"limits.cpu": "1"}))
    body = endpoint_manifest("team", **endpoint_create_arguments(data))
    assert body == {
        "apiVersion": "ai.intel.com/v1",
        "kind": "InferenceEndpoint",
        "metadata": {"name": "predict", "namespace": "team"},
        "spec": {
            "endpointName": "predict",
            "modelName": "resnet",
            "subjectName": "client",
            "servingName": "tf-serving",
            "modelVersionPolicy": "{specific{versions:12 }}",
            "replicas": 2,
            "resources": {"limits": {"cpu": "1"}},
        },
    }
    plain = endpoint_manifest(
        "team",
        endpoint_name="p",
        model_name="m",
        subject_name="s",
        serving_name="ovms",
        model_version_policy="{latest{}}",
    )
    assert "replicas" not in plain["spec"]
    assert "resources" not in plain["spec"]


# --- update, delete, logs -------------------------------------------------------------------------
def test_update_body():
    serializer = EndpointUpdateSerializer(
        data={"modelVersionPolicy": "{specific{versions: 2}}", "resources": {}, "other": 1}
    )
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"modelVersionPolicy": "{specific{versions:2 }}", "resources": {}}
    assert refusal(EndpointUpdateSerializer, {}) == (
        "give at least one of modelName, modelVersionPolicy, resources, subjectName, autoscaling"
    )
    assert refusal(EndpointUpdateSerializer, {"unknown": 1}).startswith("give at least one of")
    assert refusal(EndpointUpdateSerializer, {"modelName": 0}) == "modelName: 0 is not of type 'string'"


def test_delete_body():
    assert refusal(EndpointNameSerializer, {}) == "endpointName: 'endpointName' is a required property"
    assert refusal(EndpointNameSerializer, {"endpointName": 1}) == "endpointName: 1 is not of type 'string'"


def test_log_tail():
    assert validate_tail(None, 100, 10_000) == 100
    assert validate_tail("", 100, 10_000) == 100
    assert validate_tail("25", 100, 10_000) == 25
    for bad in ("0", "-1", "abc", "10001", "1.5", "9" * 20):
        with pytest.raises(ValidationError) as caught:
            validate_tail(bad, 100, 10_000)
        error = as_domain_error(caught.value)
        assert error is not None
        assert error.description == f"tail: {bad!r} is not a whole number from 1 to 10000"
