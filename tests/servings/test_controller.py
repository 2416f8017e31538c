# The generated Kubernetes models make every field Optional; these tests read fields they just asserted exist.
# mypy: disable-error-code="union-attr,index,arg-type,type-var,no-any-return,return-value,misc"
"""The controller on the live devstack: kwok runs the pods, the real API server garbage-collects."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from servings.catalogue import serving_template_configmap, shipped_templates
from tests.inference_endpoints import (
    GROUP,
    PLURAL,
    TENANT_NAMESPACE_LABELS,
    VERSION,
    endpoint_body,
    forbidden_template,
    serving_namespace_create,
)
from tests.servings.conftest import wait_for

pytestmark = pytest.mark.integration


def custom(admin: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(admin)


def get_endpoint(admin: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    return custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def create_endpoint(admin: client.ApiClient, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return custom(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, endpoint_body(name, **spec))


def patch_spec(admin: client.ApiClient, ns: str, name: str, **spec: Any) -> None:
    custom(admin).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name, {"spec": spec}, _content_type="application/merge-patch+json"
    )


def condition(cr: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in cr.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def wait_condition(admin, ns, name, kind, status, reason=None, timeout=180.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        cr = get_endpoint(admin, ns, name)
        found = condition(cr, kind)
        generation_seen = cr.get("status", {}).get("observedGeneration") == cr["metadata"]["generation"]
        ok = generation_seen and found.get("status") == status and (reason is None or found.get("reason") == reason)
        return cr if ok else None

    return wait_for(check, timeout, what=f"{ns}/{name} {kind}={status} {reason or ''}")


def test_endpoint_gets_four_children_and_becomes_ready(admin, tenant, controller):
    created = create_endpoint(
        admin, tenant, "resnet", resources={"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    )
    cr = wait_condition(admin, tenant, "resnet", "Ready", "True", "Available")
    assert cr["status"]["url"] == f"resnet-{tenant}.imm.local:443"
    assert (cr["status"]["replicas"], cr["status"]["readyReplicas"], cr["status"]["availableReplicas"]) == (1, 1, 1)
    assert cr["status"]["selector"] == "endpoint=resnet"
    assert cr["status"]["state"] == "Ready"

    core, apps, net = client.CoreV1Api(admin), client.AppsV1Api(admin), client.NetworkingV1Api(admin)
    configmap = core.read_namespaced_config_map("resnet", tenant)
    assert f'base_path:"s3://{tenant}/resnet"' in configmap.data["tf.conf"]  # the original's text form
    assert 'name:"resnet"' in configmap.data["tf.conf"]
    deployment = apps.read_namespaced_deployment("resnet", tenant)
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "tensorflow/serving:2.18.0"
    assert container.resources.requests == {"cpu": "100m"}
    assert container.resources.limits == {"memory": "1Gi"}
    service = core.read_namespaced_service("resnet", tenant)
    assert service.spec.selector == {"endpoint": "resnet"}
    ingress = net.read_namespaced_ingress("resnet", tenant)
    assert ingress.spec.rules[0].host == f"resnet-{tenant}.imm.local"
    assert ingress.metadata.annotations["nginx.ingress.kubernetes.io/auth-tls-secret"] == f"{tenant}/ca-cert-secret"
    assert ingress.metadata.annotations["allowed-values"] == "CN=client"
    for obj in (configmap, deployment, service, ingress):
        (owner,) = obj.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "InferenceEndpoint",
            "resnet",
            created["metadata"]["uid"],
            True,
        )
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "imm-controller"
        assert "imm-controller" in {field.manager for field in obj.metadata.managed_fields}
    pods = core.list_namespaced_pod(tenant, label_selector="endpoint=resnet").items
    assert [p.status.phase for p in pods] == ["Running"]


def test_updates_roll_pods_and_change_children(admin, tenant, controller):
    create_endpoint(admin, tenant, "upd")
    wait_condition(admin, tenant, "upd", "Ready", "True")
    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
    hash_before = apps.read_namespaced_deployment("upd", tenant).spec.template.metadata.annotations[
        "ai.intel.com/config-hash"
    ]

    patch_spec(admin, tenant, "upd", modelName="mobilenet", modelVersionPolicy="{specific{versions:2 versions:10 }}")
    wait_for(
        lambda: "mobilenet" in core.read_namespaced_config_map("upd", tenant).data["tf.conf"],
        30,
        what="the ConfigMap to follow the model",
    )
    tf_conf = core.read_namespaced_config_map("upd", tenant).data["tf.conf"]
    assert "model_version_policy: {specific{versions:2 versions:10 }}" in tf_conf
    template = apps.read_namespaced_deployment("upd", tenant).spec.template
    assert template.metadata.annotations["ai.intel.com/config-hash"] != hash_before  # a rolling restart

    patch_spec(admin, tenant, "upd", subjectName="other.client")
    net = client.NetworkingV1Api(admin)
    wait_for(
        lambda: net.read_namespaced_ingress("upd", tenant).metadata.annotations["allowed-values"] == "CN=other.client",
        30,
        what="the Ingress to follow the subject",
    )

    # Update replaces the resources map: a dropped key disappears from the container.
    patch_spec(admin, tenant, "upd", resources={"requests": {"cpu": "200m", "memory": "64Mi"}})
    wait_for(
        lambda: (
            apps.read_namespaced_deployment("upd", tenant).spec.template.spec.containers[0].resources.requests
            == {"cpu": "200m", "memory": "64Mi"}
        ),
        30,
        what="requests to be applied",
    )
    custom(admin).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        tenant,
        PLURAL,
        "upd",
        [{"op": "replace", "path": "/spec/resources", "value": {"requests": {"cpu": "300m"}}}],
        _content_type="application/json-patch+json",
    )
    wait_for(
        lambda: (
            apps.read_namespaced_deployment("upd", tenant).spec.template.spec.containers[0].resources.requests
            == {"cpu": "300m"}
        ),
        30,
        what="memory request to be removed",
    )
    cr = wait_condition(admin, tenant, "upd", "Ready", "True", timeout=120)
    assert cr["status"]["readyReplicas"] == 1


def test_scale_subresource_drives_replicas_and_zero_means_zero(admin, tenant, controller):
    create_endpoint(admin, tenant, "scaled", replicas=0)
    cr = wait_condition(admin, tenant, "scaled", "Ready", "True", "ScaledToZero")
    assert cr["status"]["replicas"] == 0
    apps = client.AppsV1Api(admin)
    assert apps.read_namespaced_deployment("scaled", tenant).spec.replicas == 0

    custom(admin).patch_namespaced_custom_object_scale(
        GROUP,
        VERSION,
        tenant,
        PLURAL,
        "scaled",
        {"spec": {"replicas": 3}},
        _content_type="application/merge-patch+json",
    )
    cr = wait_condition(admin, tenant, "scaled", "Ready", "True", "Available", timeout=120)
    assert cr["status"]["availableReplicas"] == 3
    scale = custom(admin).get_namespaced_custom_object_scale(GROUP, VERSION, tenant, PLURAL, "scaled")
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "endpoint=scaled"


def test_delete_garbage_collects_children(admin, tenant, controller):
    create_endpoint(admin, tenant, "gone")
    wait_condition(admin, tenant, "gone", "Ready", "True")
    custom(admin).delete_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, "gone")
    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)

    def children_gone() -> bool:
        left = [
            *apps.list_namespaced_deployment(tenant, label_selector="endpoint=gone").items,
            *core.list_namespaced_config_map(tenant, label_selector="endpoint=gone").items,
            *core.list_namespaced_service(tenant, label_selector="endpoint=gone").items,
            *client.NetworkingV1Api(admin).list_namespaced_ingress(tenant, label_selector="endpoint=gone").items,
        ]
        return not left

    wait_for(children_gone, 60, what="garbage collection")
    assert controller.process.poll() is None


def test_small_quota_is_reported_as_degraded_naming_the_quota(admin, tenant, controller):
    client.CoreV1Api(admin).create_namespaced_resource_quota(
        tenant, {"metadata": {"name": "tiny-cpu"}, "spec": {"hard": {"requests.cpu": "100m"}}}
    )
    create_endpoint(admin, tenant, "hungry", resources={"requests": {"cpu": "2"}})
    cr = wait_condition(admin, tenant, "hungry", "Degraded", "True", "QuotaExceeded")
    assert "tiny-cpu" in condition(cr, "Degraded")["message"]
    assert condition(cr, "Ready")["status"] == "False"
    assert cr["status"]["state"] == "Degraded"


def test_unknown_serving_is_a_condition_and_fixing_it_renders_the_new_one(admin, tenant, controller):
    create_endpoint(admin, tenant, "lost", servingName="no-such-serving")
    cr = wait_condition(admin, tenant, "lost", "Degraded", "True", "ServingNotFound")
    assert "no-such-serving" in condition(cr, "Degraded")["message"]
    with pytest.raises(ApiException) as missing:
        client.AppsV1Api(admin).read_namespaced_deployment("lost", tenant)
    assert missing.value.status == 404

    patch_spec(admin, tenant, "lost", servingName="ovms")
    wait_condition(admin, tenant, "lost", "Ready", "True")
    container = client.AppsV1Api(admin).read_namespaced_deployment("lost", tenant).spec.template.spec.containers[0]
    assert container.name == "ovms"


def test_render_failure_is_reported_and_the_loop_goes_on(admin, tenant, controller, templates_namespace):
    name = f"broken-{uuid.uuid4().hex[:6]}"
    data = dict(shipped_templates()["tf-serving"])
    data["deployment.tmpl"] = "{{ no_such_variable }}"
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(templates_namespace, serving_template_configmap(name, data, templates_namespace))
    try:
        create_endpoint(admin, tenant, "bad", servingName=name)
        create_endpoint(admin, tenant, "good")
        cr = wait_condition(admin, tenant, "bad", "Degraded", "True", "RenderFailed")
        assert "no_such_variable" in condition(cr, "Degraded")["message"]
        wait_condition(admin, tenant, "good", "Ready", "True")
        assert controller.process.poll() is None
    finally:
        core.delete_namespaced_config_map(name, templates_namespace)


def test_restart_mid_way_converges_without_duplicates(admin, tenant, start_controller):
    first = start_controller("first")
    first.wait_leading()
    names = [f"restart{i}" for i in range(4)]
    for name in names:
        create_endpoint(admin, tenant, name)
    wait_for(lambda: "reconciled" in first.text(), 30, what="a first reconcile")
    first.stop(signal.SIGKILL)  # no clean release: the successor must wait for the lease to expire

    second = start_controller("second")
    second.wait_leading(timeout=40)
    for name in names:
        wait_condition(admin, tenant, name, "Ready", "True", timeout=120)
    apps = client.AppsV1Api(admin)
    deployments = sorted(d.metadata.name for d in apps.list_namespaced_deployment(tenant).items)
    assert deployments == names
    for name in names:
        replicasets = apps.list_namespaced_replica_set(tenant, label_selector=f"endpoint={name}").items
        assert len(replicasets) == 1, f"{name}: a restart must not roll the pods"


def test_two_controllers_only_the_leader_acts(admin, tenant, start_controller):
    leader = start_controller("leader")
    leader.wait_leading()
    follower = start_controller("follower")
    wait_for(lambda: "waiting for the lease" in follower.text(), 30, what="the follower to start")

    create_endpoint(admin, tenant, "solo")
    wait_condition(admin, tenant, "solo", "Ready", "True")
    # On a shared devstack other controllers (other Leases) may act too: wait for OUR leader's line.
    wait_for(lambda: f"reconciled {tenant}/solo" in leader.text(), 90, what="the leader to reconcile")
    assert "reconciled" not in follower.text()
    assert "leading" not in follower.text()

    leader.stop(signal.SIGKILL)
    follower.wait_leading(timeout=40)
    create_endpoint(admin, tenant, "after")
    wait_condition(admin, tenant, "after", "Ready", "True")
    wait_for(lambda: f"reconciled {tenant}/after" in follower.text(), 90, what="the new leader to reconcile")


def test_deleted_child_is_recreated_and_a_changed_template_is_followed(admin, tenant, controller, templates_namespace):
    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
    name = f"follow-{uuid.uuid4().hex[:6]}"
    data = dict(shipped_templates()["tf-serving"])
    core.create_namespaced_config_map(templates_namespace, serving_template_configmap(name, data, templates_namespace))
    try:
        create_endpoint(admin, tenant, "drift", servingName=name)
        wait_condition(admin, tenant, "drift", "Ready", "True")
        uid = apps.read_namespaced_deployment("drift", tenant).metadata.uid
        apps.delete_namespaced_deployment("drift", tenant)
        wait_for(
            lambda: apps.read_namespaced_deployment("drift", tenant).metadata.uid != uid,
            30,
            what="the deleted Deployment to be recreated",
        )

        # A manual edit of the Deployment's spec is drift: the controller puts its own fields back.
        apps.patch_namespaced_deployment(
            "drift",
            tenant,
            {"spec": {"template": {"spec": {"containers": [{"name": "tf-serving", "image": "evil:1"}]}}}},
        )
        wait_for(
            lambda: (
                apps.read_namespaced_deployment("drift", tenant).spec.template.spec.containers[0].image
                == "tensorflow/serving:2.18.0"
            ),
            30,
            what="the edited image to be restored",
        )

        data["service.tmpl"] = data["service.tmpl"].replace("port: 9000", "port: 9001")
        core.replace_namespaced_config_map(
            name, templates_namespace, serving_template_configmap(name, data, templates_namespace)
        )
        wait_for(
            lambda: core.read_namespaced_service("drift", tenant).spec.ports[0].port == 9001,
            30,
            what="the Service to follow the changed template",
        )
    finally:
        core.delete_namespaced_config_map(name, templates_namespace)


# --- finding 2 of issue 17: the controller renders only restricted pods, only in tenant namespaces ------
def pod_body(name: str, **spec: Any) -> dict[str, Any]:
    """A pod as restricted as the profile asks; ``spec`` adds what a test wants refused."""
    container = {
        "name": "app",
        "image": "tensorflow/serving:1.11.1",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    security = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    return {"metadata": {"name": name}, "spec": {"containers": [container], "securityContext": security, **spec}}


def test_the_api_server_refuses_a_non_compliant_pod_in_a_tenant_namespace(admin, tenant):
    """Pod Security Admission on the tenant namespace: whoever creates the pod (even a cluster admin)."""
    core = client.CoreV1Api(admin)
    labels = core.read_namespace(tenant).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, spec in (
        ("host-net", {"hostNetwork": True}),
        ("host-path", {"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}),
    ):
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(tenant, pod_body(name, **spec))
        assert refused.value.status == 403
        assert "violates PodSecurity" in str(refused.value.body)
    # The same pod without the forbidden field is admitted: the refusal is the profile, not the namespace.
    core.create_namespaced_pod(tenant, pod_body("compliant"))
    core.delete_namespaced_pod("compliant", tenant, grace_period_seconds=0)


def test_a_forbidden_template_written_straight_to_its_configmap_is_refused_by_the_controller(
    admin, tenant, controller, templates_namespace
):
    """Defence in depth: the API refuses such a template at save time, but one stored before that check
    (or edited in the ConfigMap) must still render nothing."""
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    data, field = forbidden_template("hostPID")
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    core.create_namespaced_config_map(templates_namespace, serving_template_configmap(name, data, templates_namespace))
    try:
        create_endpoint(admin, tenant, "hostile", servingName=name)
        cr = wait_condition(admin, tenant, "hostile", "Degraded", "True", "TemplateForbidden")
        assert field in condition(cr, "Degraded")["message"]
        for read in (apps.read_namespaced_deployment, core.read_namespaced_config_map, core.read_namespaced_service):
            with pytest.raises(ApiException) as missing:
                read("hostile", tenant)
            assert missing.value.status == 404
    finally:
        core.delete_namespaced_config_map(name, templates_namespace)


def test_an_endpoint_outside_a_tenant_namespace_gets_nothing_and_its_status_says_why(admin, controller):
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    namespace = f"plain-{uuid.uuid4().hex[:8]}"
    serving_namespace_create(core, namespace, tenant=False)
    try:
        create_endpoint(admin, namespace, "stray")
        cr = wait_condition(admin, namespace, "stray", "Degraded", "True", "NotATenantNamespace")
        assert f"namespace {namespace} is not a tenant namespace" in condition(cr, "Degraded")["message"]
        assert "url" not in cr["status"]
        for read in (apps.read_namespaced_deployment, core.read_namespaced_config_map, core.read_namespaced_service):
            with pytest.raises(ApiException) as missing:
                read("stray", namespace)
            assert missing.value.status == 404

        # The controller learns namespaces from its watch: once this one is made a tenant, the endpoint renders.
        core.patch_namespace(namespace, {"metadata": {"labels": TENANT_NAMESPACE_LABELS}})
        wait_condition(admin, namespace, "stray", "Ready", "True")
    finally:
        core.delete_namespace(namespace)
