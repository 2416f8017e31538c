"""The key rotation (tenants.rotation) with the store's IAM API and Kubernetes faked (the only two fakes).

Kubernetes here is a namespace, its access secret and the endpoints' Deployments; a test plays the
controller by rendering the namespace's store-key generation onto a Deployment and saying whether its
rollout finished. The real store and cluster are tests/tenants/test_key_rotation.py.
"""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound, UpstreamUnavailable
from inferencemgmt.operations.execution import execute_operation
from inferencemgmt.operations.models import Operation
from servings.controller.rendering import STORE_KEY_ANNOTATION as POD_ANNOTATION
from servings.controller.tenancy import TenantNamespaces
from tenants import manifests, rotation, selectors, tasks
from tenants.tests.test_identity_steps import FakeIam, iam  # noqa: F401 -- the IAM fake and its fixture

pytestmark = [pytest.mark.unit, pytest.mark.django_db]
ADMIN = Identity("admin", ("admin",), is_admin=True)
State = Operation.State


class FakeCore:
    """kube.py's typed namespace and secret functions over the cluster's annotations and secrets."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def read_namespace(self, identity: Identity, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "annotations": dict(self.cluster.annotations)}}

    def patch_namespace(self, identity: Identity, name: str, body: dict[str, Any]) -> dict[str, Any]:
        for key, value in body["metadata"]["annotations"].items():
            if value is None:
                self.cluster.annotations.pop(key, None)
            else:
                self.cluster.annotations[key] = value
        return self.read_namespace(identity, name)

    def create_secret(self, identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        from inferencemgmt.errors import Conflict

        if body["metadata"]["name"] in self.cluster.secrets:
            raise Conflict()
        return self.replace_secret(identity, namespace, body["metadata"]["name"], body)

    def replace_secret(self, identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.cluster.secret_outage:
            raise UpstreamUnavailable("kubernetes", "down for the test")
        self.cluster.secrets[name] = {k: base64.b64decode(v).decode() for k, v in body["data"].items()}
        return body


class FakeCluster:
    """One tenant namespace: annotations, secrets, and Deployments the test 'controller' updates."""

    def __init__(self) -> None:
        self.annotations: dict[str, str] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.secret_outage = False
        self.controller_renders = True
        self.rollout_finishes = True

    def deployment(self, name: str) -> dict[str, Any]:
        """The Deployment as the controller and Kubernetes would have it when the rotation looks."""
        deployment = self.deployments[name]
        generation = self.annotations.get(manifests.STORE_KEY_ANNOTATION, "")
        template = deployment["spec"]["template"]["metadata"]["annotations"]
        if self.controller_renders and template.get(POD_ANNOTATION) != generation:
            template[POD_ANNOTATION] = generation
            deployment["metadata"]["generation"] += 1
        deployment["status"] = {"observedGeneration": deployment["metadata"]["generation"], "replicas": 1}
        if self.rollout_finishes:
            deployment["status"].update(updatedReplicas=1, availableReplicas=1)
        else:
            deployment["status"].update(
                replicas=2,
                updatedReplicas=1,
                availableReplicas=1,
                conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "stuck"}],
            )
        return deployment

    # kube.endpoints / kube.read_deployment, as the caller
    def endpoints(self, identity: Any, namespace: str) -> dict[str, Any]:
        return {"items": [{"metadata": {"name": name}, "spec": {}} for name in self.deployments]}

    def read_deployment(self, identity: Any, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.deployments:
            raise NotFound()
        return self.deployment(name)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, iam: FakeIam, settings: Any) -> FakeCluster:  # noqa: F811
    settings.IMM_STORE_KEY_ROTATION_ROLLOUT_SECONDS = 1.0
    monkeypatch.setattr(rotation, "ROLL_POLL_SECONDS", 0.01)
    fake = FakeCluster()
    core = FakeCore(fake)
    for typed in ("read_namespace", "patch_namespace", "create_secret", "replace_secret"):
        monkeypatch.setattr(kube, typed, getattr(core, typed))
    monkeypatch.setattr(kube, "endpoints", fake.endpoints)
    monkeypatch.setattr(kube, "read_deployment", fake.read_deployment)
    fake.deployments["resnet"] = {
        "metadata": {"name": "resnet", "generation": 1},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": {}}}},
    }
    # A provisioned tenant: its identity with one key, which the secret holds.
    from inferencemgmt import objectstore

    objectstore.tenant_identity_ensure("acme")
    first = objectstore.tenant_key_create("acme")
    fake.secrets[manifests.STORE_SECRET] = {"minio.access_key_id": first.access_key_id}
    return fake


class RetryRequested(Exception):
    pass


class FakeTask:
    name = rotation.KIND

    def retry(self, countdown: float, max_retries: int | None) -> RetryRequested:
        return RetryRequested()


def keys(iam: FakeIam) -> list[str]:  # noqa: F811
    return sorted(iam.users["imm-tenant-acme"]["keys"])


def rotate_once() -> Operation:
    operation = Operation.objects.create(
        kind=rotation.KIND,
        target="acme",
        params={"name": "acme"},
        requested_by="admin",
        requested_identity=ADMIN.as_record(),
    )
    with contextlib.suppress(RetryRequested):
        execute_operation(FakeTask(), str(operation.pk), rotation.rotate)
    operation.refresh_from_db()
    return operation


def error_of(operation: Operation) -> dict[str, Any]:
    assert operation.error is not None, operation.state
    return dict(operation.error)


def result_of(operation: Operation) -> dict[str, Any]:
    assert operation.result is not None, operation.error
    return dict(operation.result)


def test_a_rotation_writes_a_new_key_rolls_the_endpoints_then_revokes_the_old_key(cluster, iam):  # noqa: F811
    (old,) = keys(iam)
    operation = rotate_once()
    assert operation.state == State.SUCCEEDED, operation.error
    (new,) = keys(iam)
    assert new != old
    assert cluster.secrets[manifests.STORE_SECRET]["minio.access_key_id"] == new
    assert (
        cluster.secrets[manifests.STORE_SECRET]["minio.access_secret_key"] == iam.users["imm-tenant-acme"]["keys"][new]
    )
    generation = rotation.key_generation(new)
    assert cluster.annotations[manifests.STORE_KEY_ANNOTATION] == generation
    assert rotation.PREVIOUS_ANNOTATION not in cluster.annotations
    assert new not in str(cluster.annotations)  # the namespace shows a digest, never the key id
    assert cluster.deployments["resnet"]["spec"]["template"]["metadata"]["annotations"][POD_ANNOTATION] == generation
    assert operation.result == {
        "name": "acme",
        "accessKeyId": new,
        "revoked": [old],
        "endpoints": ["resnet"],
        "resumed": False,
    }
    assert [step["name"] for step in operation.steps] == ["current-key", "new-key", "roll", "revoke"]
    assert "secret" not in str(operation.steps).lower()  # notes hold key ids only


def test_a_roll_that_fails_keeps_the_old_key_and_a_second_request_resumes_without_a_third_key(cluster, iam):  # noqa: F811
    (old,) = keys(iam)
    cluster.rollout_finishes = False
    failed = rotate_once()
    assert failed.state == State.FAILED
    assert error_of(failed)["code"] == "store_key_rollout_failed"
    assert error_of(failed)["status"] == 504
    assert "resnet: its rollout stopped: stuck" in error_of(failed)["description"]
    assert "previous key is kept" in error_of(failed)["description"]
    assert old in keys(iam)
    assert len(keys(iam)) == 2
    (new,) = set(keys(iam)) - {old}
    assert cluster.secrets[manifests.STORE_SECRET]["minio.access_key_id"] == new

    cluster.rollout_finishes = True
    made = iam.made
    resumed = rotate_once()
    assert resumed.state == State.SUCCEEDED, resumed.error
    assert iam.made == made  # no key issued: the unfinished rotation was finished
    assert keys(iam) == [new]
    assert result_of(resumed)["resumed"] is True
    assert result_of(resumed)["revoked"] == [old]


def test_an_endpoint_the_controller_never_renders_times_out_and_keeps_the_old_key(cluster, iam):  # noqa: F811
    (old,) = keys(iam)
    cluster.controller_renders = False
    failed = rotate_once()
    assert failed.state == State.FAILED
    assert "resnet: the controller has not rendered the new store key" in error_of(failed)["description"]
    assert old in keys(iam)


def test_a_run_that_lost_its_new_key_revokes_it_and_never_holds_three_keys(cluster, iam, settings):  # noqa: F811
    (old,) = keys(iam)
    settings.IMM_OPERATION_MAX_ATTEMPTS = 5
    cluster.secret_outage = True  # the secret write fails after the key was issued (a retryable outage)
    operation = rotate_once()
    assert operation.state == State.PENDING  # handed back for a retry
    assert len(keys(iam)) == 2
    lost = operation.steps[1]["notes"]["issued"]
    assert lost in keys(iam)

    cluster.secret_outage = False
    Operation.objects.filter(pk=operation.pk).update(state=State.PENDING)
    execute_operation(FakeTask(), str(operation.pk), rotation.rotate)
    operation.refresh_from_db()
    assert operation.state == State.SUCCEEDED, operation.error
    (new,) = keys(iam)
    assert new not in (old, lost)
    assert cluster.secrets[manifests.STORE_SECRET]["minio.access_key_id"] == new
    assert max(iam.key_counts) == 2  # the lost key was revoked before the next was made


def test_a_second_rotation_while_one_runs_fails_instead_of_issuing_another_key(cluster, iam):  # noqa: F811
    Operation.objects.create(
        kind=rotation.KIND, target="acme", params={"name": "acme"}, requested_by="admin", requested_identity={}
    )
    made = iam.made
    second = rotate_once()
    assert second.state == State.FAILED
    assert error_of(second)["code"] == "store_key_rotation_running"
    assert iam.made == made


def test_periodic_rotation_starts_one_operation_per_tenant_whose_key_is_too_old(monkeypatch, settings, iam):  # noqa: F811
    now = datetime(2026, 12, 6, tzinfo=UTC)

    def namespace(name: str, created_days: int, rotated_days: int | None) -> Any:
        annotations = {}
        if rotated_days is not None:
            stamp = (now - timedelta(days=rotated_days)).isoformat()
            annotations[manifests.STORE_KEY_ROTATED_ANNOTATION] = stamp
        created = (now - timedelta(days=created_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata = {"name": name, "annotations": annotations, "creationTimestamp": created}
        return {"metadata": metadata, "status": {"phase": "Active"}}

    listed = [namespace("old", 100, None), namespace("rotated", 100, 5), namespace("young", 3, None)]
    listed.append(namespace("stale", 100, 40))

    def platform_namespaces(*, label_selector: str = "") -> dict[str, Any]:
        assert label_selector == selectors.tenant_label_selector()
        return {"items": listed, "metadata": {}}

    monkeypatch.setattr(kube, "platform_namespaces", platform_namespaces)
    settings.IMM_STORE_KEY_ROTATION_DAYS = 0
    assert tasks.rotations_start_due(now) == []
    settings.IMM_STORE_KEY_ROTATION_DAYS = 30
    started = tasks.rotations_start_due(now)
    assert sorted(op.target for op in started) == ["old", "stale"]
    assert {op.requested_identity["username"] for op in started} == {settings.IMM_STORE_KEY_ROTATION_USER}
    assert all(op.requested_identity["groups"] == [settings.IMM_ADMIN_GROUP] for op in started)
    # The next check starts nothing more while those run.
    assert tasks.rotations_start_due(now) == []


def test_the_controller_learns_a_tenants_store_key_generation_from_the_namespace_watch():
    namespaces = TenantNamespaces(
        selectors.is_tenant_labels, selectors.tenant_label_selector(), selectors.store_key_generation
    )
    labels = {manifests.TENANT_OWNER_LABEL: "platform_admin"}
    assert namespaces.replace([{"metadata": {"name": "acme", "labels": labels}}]) == {"acme"}
    assert namespaces.store_key("acme") == ""
    rotated = {"name": "acme", "labels": labels, "annotations": {manifests.STORE_KEY_ANNOTATION: "abc"}}
    assert namespaces.apply("MODIFIED", {"metadata": rotated}) is True  # its endpoints are requeued
    assert namespaces.store_key("acme") == "abc"
    assert namespaces.apply("MODIFIED", {"metadata": rotated}) is False
    assert namespaces.replace([{"metadata": rotated}]) == set()


def test_the_rendered_pod_template_carries_the_store_key_generation_only_when_there_is_one():
    from servings.catalogue import shipped_templates
    from servings.controller.rendering import SAMPLE_ENDPOINT, Platform, ServingTemplate, render_endpoint

    template = ServingTemplate("triton", shipped_templates()["triton"])
    plain = render_endpoint(SAMPLE_ENDPOINT, template, Platform(domain="imm.local"))
    rotated = render_endpoint(SAMPLE_ENDPOINT, template, Platform(domain="imm.local"), store_key="abc")
    (deployment,) = [obj for obj in plain if obj["kind"] == "Deployment"]
    (rolled,) = [obj for obj in rotated if obj["kind"] == "Deployment"]
    assert POD_ANNOTATION not in deployment["spec"]["template"]["metadata"]["annotations"]
    assert rolled["spec"]["template"]["metadata"]["annotations"][POD_ANNOTATION] == "abc"
