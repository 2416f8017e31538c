"""The devstack's Kubernetes behaves like a real cluster: scheduling, controllers, quota, schema, RBAC."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.devstack.conftest import wait_for

pytestmark = pytest.mark.integration

IE_GROUP, IE_VERSION, IE_PLURAL = "ai.intel.com", "v1", "inference-endpoints"


def endpoint(name: str, **spec: Any) -> dict[str, Any]:
    body = {"endpointName": name, "modelName": "resnet", "subjectName": "client", "servingName": "tf-serving"}
    body.update(spec)
    return {
        "apiVersion": f"{IE_GROUP}/{IE_VERSION}",
        "kind": "InferenceEndpoint",
        "metadata": {"name": name},
        "spec": body,
    }


def test_fake_nodes_are_ready(admin: client.ApiClient) -> None:
    nodes = client.CoreV1Api(admin).list_node(label_selector="type=kwok").items
    assert len(nodes) == 2
    for node in nodes:
        assert node.status.allocatable["cpu"] == "16"
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_deployment_pods_run_and_scale_to_zero(admin: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
    labels = {"app": "probe"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="probe"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="example/serving:1")]),
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=probe").items
        return [p for p in pods if p.status.phase == "Running" and p.spec.node_name]

    assert len(wait_for(lambda: len(running()) == 2 and running(), what="2 running pods")) == 2
    wait_for(
        lambda: apps.read_namespaced_deployment(namespace=namespace, name="probe").status.available_replicas == 2,
        what="availableReplicas 2",
    )
    apps.patch_namespaced_deployment_scale("probe", namespace, {"spec": {"replicas": 0}})
    wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector="app=probe").items, what="pods removed")


def test_namespace_deletion_completes_and_owners_cascade(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    owner = core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]))
    )
    core.delete_namespaced_config_map("owner", name)

    def owned_gone() -> bool:
        try:
            core.read_namespaced_config_map("owned", name)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(owned_gone, what="garbage collection of the owned object")
    core.delete_namespace(name)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(namespace_gone, timeout=90, what="namespace deletion to complete")


def test_quota_counts_inference_endpoints(admin: client.ApiClient, namespace: str) -> None:
    core, custom = client.CoreV1Api(admin), client.CustomObjectsApi(admin)
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="endpoints"),
        spec=client.V1ResourceQuotaSpec(hard={"count/inference-endpoints.ai.intel.com": "1"}),
    )
    core.create_namespaced_resource_quota(namespace, quota)
    # The quota controller must have computed usage before the admission plugin enforces it.
    wait_for(
        lambda: core.read_namespaced_resource_quota("endpoints", namespace).status.used is not None, what="quota usage"
    )
    custom.create_namespaced_custom_object(IE_GROUP, IE_VERSION, namespace, IE_PLURAL, endpoint("first"))
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(IE_GROUP, IE_VERSION, namespace, IE_PLURAL, endpoint("second"))
    assert refused.value.status == 403
    assert "exceeded quota" in refused.value.body


@pytest.mark.parametrize(
    "spec",
    [{"modelVersionPolicy": "{latest{num_versions: 2}}"}, {"replicas": -1}, {"endpointName": "1starts-with-digit"}],
    ids=["bad-policy", "negative-replicas", "not-dns-1035"],
)
def test_schema_refuses_invalid_endpoint(admin: client.ApiClient, namespace: str, spec: dict[str, Any]) -> None:
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(admin).create_namespaced_custom_object(
            IE_GROUP, IE_VERSION, namespace, IE_PLURAL, endpoint("bad", **spec)
        )
    assert refused.value.status == 422


def test_schema_accepts_multi_digit_versions_and_serves_scale(admin: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(admin)
    created = custom.create_namespaced_custom_object(
        IE_GROUP, IE_VERSION, namespace, IE_PLURAL, endpoint("multi", modelVersionPolicy="{specific{versions:12 }}")
    )
    assert created["spec"]["replicas"] == 1  # the schema's default
    custom.patch_namespaced_custom_object_scale(
        IE_GROUP, IE_VERSION, namespace, IE_PLURAL, "multi", {"spec": {"replicas": 3}}
    )
    assert (
        custom.get_namespaced_custom_object(IE_GROUP, IE_VERSION, namespace, IE_PLURAL, "multi")["spec"]["replicas"]
        == 3
    )


def _as_user(devstack_env: dict[str, str], user: str, groups: list[str]) -> client.CoreV1Api:
    api_client = config.new_client_from_config(devstack_env["IMM_KUBECONFIG"])
    api_client.set_default_header("Impersonate-User", user)
    for group in groups:
        # The client sends one header per call; several groups need the header repeated, which the
        # python client cannot do, so tests impersonate one group at a time.
        api_client.set_default_header("Impersonate-Group", group)
    return client.CoreV1Api(api_client)


def test_impersonation_follows_rbac(admin: client.ApiClient, namespace: str, devstack_env: dict[str, str]) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}],
        },
    )
    member = _as_user(devstack_env, "alice@example.com", ["team-a"])
    assert member.list_namespaced_pod(namespace).items == []
    outsider = _as_user(devstack_env, "bob@example.com", ["team-b"])
    with pytest.raises(ApiException) as refused:
        outsider.list_namespaced_pod(namespace)
    assert refused.value.status == 403


def test_management_identity_cannot_read_foreign_secrets(devstack_env: dict[str, str]) -> None:
    own = client.CoreV1Api(config.new_client_from_config(devstack_env["IMM_KUBECONFIG"]))
    with pytest.raises(ApiException) as refused:
        own.list_namespaced_secret("kube-system")
    assert refused.value.status == 403
    with pytest.raises(ApiException) as refused_all:
        own.list_secret_for_all_namespaces()
    assert refused_all.value.status == 403
    # ...while it can read the namespace list it needs to find tenants.
    assert any(ns.metadata.name == "imm-system" for ns in own.list_namespace().items)
