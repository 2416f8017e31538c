"""Tenant management against the live platform, with real tokens and a real worker."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from inferencemgmt.operations.models import Operation
from tenants import manifests
from tests.certificates import ca_certificate_pem
from tests.platform_admin import admin_s3_client, missing_ok, remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


CERT = base64.b64encode(ca_certificate_pem("tenant-client-ca")).decode()


@pytest.fixture
def admin_k8s(devstack_env: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(devstack_env["KUBECONFIG"])


@pytest.fixture
def s3(devstack_env: dict[str, str]) -> Any:
    return admin_s3_client(devstack_env)


@pytest.fixture
def tenant_name(devstack_env: dict[str, str]) -> Iterator[str]:
    """A fresh tenant name; whatever a test leaves behind is removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    for leftover in (name, f"fault-{name}"):
        remove_tenant(devstack_env, leftover)


def body(name: str, scope: Any = "team-a", **quota: Any) -> dict[str, Any]:
    return {"name": name, "cert": CERT, "scope": scope, "quota": quota}


def bucket_exists(s3: Any, name: str) -> bool:
    return any(b["Name"] == name for b in s3.list_buckets()["Buckets"])


def namespace_or_none(admin_k8s: client.ApiClient, name: str) -> Any:
    try:
        return client.CoreV1Api(admin_k8s).read_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return None


def test_tenant_lifecycle(as_user, operations_worker, admin_k8s, s3, tenant_name, devstack_env):
    name = tenant_name
    quota = {"requests.cpu": "2", "limits.memory": "4Gi", "maxEndpoints": 3}
    created = as_user("admin", "post", "/tenants", body(name, **quota))
    assert created.status_code == 200, created.content
    assert created.content == b'{"status": "CREATED", "data": {"name": "%s"}}' % name.encode()

    core, rbac = client.CoreV1Api(admin_k8s), client.RbacAuthorizationV1Api(admin_k8s)
    namespace = core.read_namespace(name)
    assert namespace.metadata.labels["created_by"] == "platform_admin"
    # The API server refuses any pod here that the restricted Pod Security Standards profile forbids.
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.metadata.annotations["maxEndpoints"] == "3"
    assert bucket_exists(s3, name)
    assert core.read_namespaced_secret("ca-cert-secret", name).data == {"ca.crt": CERT}
    store = core.read_namespaced_secret("minio-access-info", name).data
    # Serving pods reach the store at its serving address when one is set (the real node's bridge).
    serving_url = devstack_env.get("S3_SERVING_ENDPOINT_URL") or s3.meta.endpoint_url
    assert base64.b64decode(store["minio.endpoint_url"]).decode() == serving_url
    assert set(store) >= {"minio.access_key_id", "minio.access_secret_key", "minio.endpoint"}
    source = core.read_namespaced_secret("tls-secret", "imm-system")
    copied = core.read_namespaced_secret("tls-secret", name)
    assert (copied.type, copied.data) == (source.type, source.data)
    assert core.read_namespaced_resource_quota(name, name).spec.hard == {
        "requests.cpu": "2",
        "limits.memory": "4Gi",
        "count/inference-endpoints.ai.intel.com": "3",
    }
    binding = rbac.read_namespaced_role_binding(name, name)
    assert [(s.kind, s.name) for s in binding.subjects] == [("Group", "team-a")]
    role = rbac.read_namespaced_role(name, name)
    assert any("inference-endpoints" in r.resources and r.api_groups == ["ai.intel.com"] for r in role.rules)
    assert any("serviceaccounts/token" in r.resources for r in role.rules)  # members manage robots
    for robot_role in ("imm-robot-deployer", "imm-robot-reader"):
        assert rbac.read_namespaced_role(robot_role, name).rules
    assert client.NetworkingV1Api(admin_k8s).read_namespaced_network_policy("tenant-isolation", name)

    # A second create of the same name: 409, nothing changed.
    again = as_user("admin", "post", "/tenants", body(name, **{"requests.cpu": "9"}))
    assert again.status_code == 409
    assert again.json()["title"] == f"Tenant {name} already exists"
    assert core.read_namespaced_resource_quota(name, name).spec.hard["requests.cpu"] == "2"

    # Listing: admins see it; members of the scope group see it (selected by its group label); others do not.
    assert core.read_namespace(name).metadata.labels[manifests.group_label("team-a")] == "member"
    assert name in as_user("admin", "get", "/tenants").json()["data"]["tenants"]
    assert name in as_user("alice", "get", "/tenants/").json()["data"]["tenants"]
    assert name not in as_user("bob", "get", "/tenants").json()["data"]["tenants"]
    assert as_user("dave", "get", "/tenants").json() == {"status": "OK", "data": {"tenants": []}}

    details = as_user("alice", "get", f"/tenants/{name}").json()["data"]
    assert details["scope"] == ["team-a"]
    assert details["quota"]["hard"]["requests.cpu"] == "2"
    assert details["endpoints"] == 0
    assert details["bucket"] == {"name": name, "objects": 0, "bytes": 0}
    assert details["createdBy"] == "admin@example.com"
    assert as_user("bob", "get", f"/tenants/{name}").status_code == 403

    # Update: the quota and the RoleBinding follow.
    patched = as_user("admin", "patch", f"/tenants/{name}", {"quota": {"requests.cpu": "4"}, "scope": ["team-b"]})
    assert patched.status_code == 200, patched.content
    assert patched.json()["status"] == "PATCHED"
    assert core.read_namespaced_resource_quota(name, name).spec.hard == {"requests.cpu": "4"}
    assert [s.name for s in rbac.read_namespaced_role_binding(name, name).subjects] == ["team-b"]
    assert name in as_user("bob", "get", "/tenants").json()["data"]["tenants"]
    # ... and the group labels, in the same namespace write: alice's list no longer has it.
    group_labels = {key for key in core.read_namespace(name).metadata.labels if manifests.is_group_label(key)}
    assert group_labels == {manifests.group_label("team-b")}
    assert name not in as_user("alice", "get", "/tenants").json()["data"]["tenants"]
    assert as_user("alice", "patch", f"/tenants/{name}", {"scope": "team-a"}).status_code == 403

    # Delete (documented body form): namespace and bucket are gone when it answers.
    s3.put_object(Bucket=name, Key="resnet/1/model.pb", Body=b"x" * 18)
    s3.create_multipart_upload(Bucket=name, Key="resnet/2/big.bin")
    deleted = as_user("admin", "delete", "/tenants", {"name": name})
    assert deleted.status_code == 200, deleted.content
    assert deleted.json() == {"status": "DELETED", "data": {"name": name}}
    assert namespace_or_none(admin_k8s, name) is None
    assert not bucket_exists(s3, name)
    gone = as_user("admin", "delete", f"/tenants/{name}")
    assert gone.status_code == 404
    assert gone.json()["description"] == f"Tenant {name} does not exist"


def test_only_admins_create_and_the_check_comes_before_the_body(as_user, devstack_env):
    refused = as_user("alice", "post", "/tenants", {"not": "even valid"})
    assert refused.status_code == 403
    assert refused.json()["description"] == "Insufficient permissions"
    assert as_user("dave", "delete", "/tenants", {"name": "whatever"}).status_code == 403


@pytest.fixture
def deny_rolebindings(admin_k8s: client.ApiClient) -> Iterator[tuple[str, str]]:
    """A real admission policy in the cluster that refuses RoleBindings in `fault-*` namespaces: its
    name, and a `fault-*` namespace in which to see it take effect (``rolebindings_refused``)."""
    api = client.AdmissionregistrationV1Api(admin_k8s)
    name = f"imm-test-deny-rolebindings-{uuid.uuid4().hex[:6]}"
    api.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"],
                         "operations": ["CREATE"], "resources": ["rolebindings"]}
                    ]
                },
                "validations": [
                    {"expression": "!object.metadata.namespace.startsWith('fault-')",
                     "message": "injected fault: RoleBindings are refused here", "reason": "Forbidden"}
                ],
            },
        }
    )  # fmt: skip
    probe = f"fault-probe-{uuid.uuid4().hex[:6]}"
    try:
        client.CoreV1Api(admin_k8s).create_namespace({"metadata": {"name": probe}})
        api.create_validating_admission_policy_binding(
            {"metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}}
        )
        rolebindings_refused(admin_k8s, probe, True)
        yield name, probe
    finally:
        # Whatever failed (the test may have removed the binding itself), no Deny is left behind.
        missing_ok(api.delete_validating_admission_policy_binding, name)
        missing_ok(api.delete_validating_admission_policy, name)
        with contextlib.suppress(ApiException, AssertionError):  # only a courtesy to what runs next
            rolebindings_refused(admin_k8s, probe, False)
        missing_ok(client.CoreV1Api(admin_k8s).delete_namespace, probe)


def rolebindings_refused(admin_k8s: client.ApiClient, namespace: str, refused: bool, timeout: float = 30.0) -> None:
    """Wait until the API server, which loads admission policies asynchronously, refuses (or again
    admits) a RoleBinding in ``namespace``: probed with dry-run creates, which admission sees too."""
    rbac = client.RbacAuthorizationV1Api(admin_k8s)
    body = {
        "metadata": {"name": "probe"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            rbac.create_namespaced_role_binding(namespace, body, dry_run="All")
            seen = False
        except ApiException as exc:
            if exc.status != 403 or "injected fault" not in str(exc.body):
                raise
            seen = True
        if seen == refused:
            return
        assert time.monotonic() < deadline, f"RoleBindings in {namespace} still {'admitted' if refused else 'refused'}"
        time.sleep(0.1)


def test_a_failed_step_undoes_everything_and_the_same_create_then_succeeds(
    as_user, operations_worker, admin_k8s, s3, deny_rolebindings, tenant_name
):
    name = f"fault-{tenant_name}"
    failed = as_user("admin", "post", "/tenants", body(name, maxEndpoints=1))
    assert failed.status_code == 403, failed.content
    error = failed.json()
    assert error["title"] == f"Tenant {name} was not created: step 'role-binding' failed"
    assert "injected fault" in error["description"]
    assert namespace_or_none(admin_k8s, name) is None
    assert not bucket_exists(s3, name)
    operation = Operation.objects.get(target=name)
    assert operation.state == Operation.State.ROLLED_BACK
    undone = [step["name"] for step in operation.steps if step["name"].startswith("undo ")]
    assert undone == [
        "undo role-binding", "undo robot-roles", "undo role", "undo resource-quota", "undo tls-secret",
        "undo object-store-secret", "undo ca-cert-secret", "undo object-store-identity", "undo bucket",
        "undo namespace",
    ]  # fmt: skip

    policy, probe = deny_rolebindings
    client.AdmissionregistrationV1Api(admin_k8s).delete_validating_admission_policy_binding(policy)
    rolebindings_refused(admin_k8s, probe, False)
    retried = as_user("admin", "post", "/tenants", body(name, maxEndpoints=1))
    assert retried.status_code == 200, retried.content
    assert bucket_exists(s3, name)
    client.AdmissionregistrationV1Api(admin_k8s).create_validating_admission_policy_binding(
        {"metadata": {"name": policy}, "spec": {"policyName": policy, "validationActions": ["Deny"]}}
    )
    as_user("admin", "delete", f"/tenants/{name}")


def test_parallel_creates_of_one_name(as_user, operations_worker, admin_k8s, tenant_name):
    statuses: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        from django.db import connection

        try:
            response = as_user("admin", "post", "/tenants", body(tenant_name))
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert sorted(statuses) == [200] + [409] * 9
    assert namespace_or_none(admin_k8s, tenant_name) is not None
    as_user("admin", "delete", f"/tenants/{tenant_name}")


def test_worker_killed_during_provisioning_never_leaves_half_a_tenant(
    as_user, operations_worker, admin_k8s, s3, tenant_name
):
    accepted = as_user("admin", "post", "/tenants", body(tenant_name), HTTP_PREFER="respond-async")
    assert accepted.status_code == 202
    task = accepted.json()["data"]["task"]
    assert task["url"] == f"/tasks/{task['id']}"
    operation = Operation.objects.get(pk=task["id"])
    deadline = time.monotonic() + 60
    while operation.state == Operation.State.PENDING and time.monotonic() < deadline:
        time.sleep(0.01)
        operation.refresh_from_db()
    operations_worker.kill(operations_worker.workers[0])  # as soon as the run has started
    operation.refresh_from_db()
    interrupted = not operation.is_final

    time.sleep(5)  # the broker redelivers an unacknowledged message after its visibility timeout
    operations_worker.start("second")
    deadline = time.monotonic() + 120
    while not operation.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
        operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    if interrupted:
        assert operation.attempts == 2
    core = client.CoreV1Api(admin_k8s)
    assert core.read_namespace(tenant_name).metadata.annotations["imm.ai.intel.com/operation"] == str(operation.pk)
    assert bucket_exists(s3, tenant_name)
    secrets = core.list_namespaced_secret(tenant_name).items
    assert [s.metadata.name for s in secrets] == [
        "ca-cert-secret", "minio-access-info", "tls-secret",
    ]  # fmt: skip
    followed = as_user("admin", "get", task["url"]).json()["data"]
    assert followed["state"] == "SUCCEEDED"
    assert as_user("admin", "delete", f"/tenants/{tenant_name}").status_code == 200


@pytest.mark.parametrize("left", ["namespace", "bucket"])
def test_delete_removes_half_a_tenant(as_user, operations_worker, admin_k8s, s3, tenant_name, left):
    """What a creation that failed without its rollback (the part stayed down) leaves is deletable."""
    core = client.CoreV1Api(admin_k8s)
    if left == "namespace":
        core.create_namespace({"metadata": {"name": tenant_name, "labels": {"created_by": "platform_admin"}}})
    else:
        s3.create_bucket(Bucket=tenant_name)
        s3.put_object(Bucket=tenant_name, Key="resnet/1/model.bin", Body=b"weights")
    deleted = as_user("admin", "delete", f"/tenants/{tenant_name}")
    assert deleted.status_code == 200, deleted.content
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket=tenant_name)
    with pytest.raises(ApiException) as gone:  # deletion waits until the namespace is gone
        core.read_namespace(tenant_name)
    assert gone.value.status == 404
