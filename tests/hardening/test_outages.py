"""Real outages: each upstream of the platform is stopped in turn while requests and tasks run.

Unlike test_faults.py (a closed port in this process's settings), these stop the devstack's own
process: the Kubernetes API server, the object store, Redis, the identity provider. Each test
checks, during the outage, that requests get a 503 naming the part (never a 500) and that running
work waits instead of failing; and after the part returns, that the work finished, nothing was
lost, and nothing is left half-made (tenants complete or absent, no multipart upload parts).

The worker of these tests retries quickly (at most 1 s apart, many attempts) so that resuming is
seen within seconds of the part coming back; production's schedule is slower (README).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.utils import timezone
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from inferencemgmt.auth.identity import Identity
from inferencemgmt.operations.models import Operation
from models_store.models import DirectUpload
from tests.conftest import TEST_QUEUE, WorkerPool, suite_broker_url, use_broker, worker_env
from tests.hardening import outages
from tests.hardening.outages import outage, wait_for
from tests.platform_admin import admin_s3_client, remove_tenant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
State = Operation.State
MIB = 2**20
ADMIN = Identity("admin@example.com", ("imm-admins",))


@pytest.fixture
def workers(devstack_env: dict[str, str], platform_settings: Any, tmp_path: Path) -> Iterator[WorkerPool]:
    """Workers (not started) that retry an unavailable upstream every second and requeue lost work."""
    broker = suite_broker_url(devstack_env)
    previous = use_broker(broker)
    env = worker_env(
        devstack_env,
        broker,
        IMM_OPERATION_MAX_ATTEMPTS="500",
        IMM_OPERATION_RETRY_MAX_SECONDS="1",
        IMM_OPERATION_REQUEUE_AFTER_SECONDS="3",
        IMM_OPERATION_REQUEUE_INTERVAL_SECONDS="1",
        IMM_KUBE_RETRIES="0",
        S3_MAX_ATTEMPTS="1",
    )
    pool = WorkerPool(env, tmp_path)
    yield pool
    pool.stop_all()
    use_broker(previous)
    pool.print_logs()


def start_worker(pool: WorkerPool, tmp_path: Path, name: str = "worker") -> None:
    """One worker with beat (the requeue schedule), its schedule file in the test's directory."""
    pool.start(name, "-B", "-s", str(tmp_path / f"{name}-beat"))


def tenant_body(name: str) -> dict[str, Any]:
    from tests.tenants.test_tenants_api import CERT

    return {"name": name, "cert": CERT, "scope": "team-a", "quota": {}}


def delete_tenants(call: Any, env: dict[str, str], *names: str) -> None:
    """A test's cleanup: through the API, then directly whatever an outage made it leave behind."""
    for name in names:
        call("admin", "DELETE", f"/tenants/{name}", HTTP_PREFER="")
        remove_tenant(env, name)


def started_operation(response: Any) -> str:
    assert response.status_code == 202, response.content
    return str(json.loads(response.content)["data"]["task"]["id"])


def operation(operation_id: str) -> Operation:
    return Operation.objects.get(pk=operation_id)


def retrying(operation_id: str) -> bool:
    """The operation met the outage at least once and is waiting to try again (not failed)."""
    current = operation(operation_id)
    assert not current.is_final, f"the operation ended during the outage: {current.state} {current.error}"
    return current.attempts >= 2


def succeeded(operation_id: str) -> bool:
    current = operation(operation_id)
    assert current.state in (State.PENDING, State.RUNNING, State.SUCCEEDED), (current.state, current.error)
    return current.state == State.SUCCEEDED


def assert_unavailable(response: Any, part: str) -> None:
    """503, Retry-After, the one error shape, naming the part (its code)."""
    body = json.loads(response.content)
    assert response.status_code == 503, response.content
    assert response.get("Retry-After"), "a 503 says when to retry"
    assert body["code"] == f"{part.replace(' ', '_')}_unavailable", body
    assert set(body) <= {"title", "description", "code"}


def assert_complete_tenant(env: dict[str, str], name: str) -> None:
    """Every object the provisioning saga makes is there: nothing half-created."""
    api = config.new_client_from_config(env["KUBECONFIG"])
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    assert core.read_namespace(name).status.phase == "Active"
    secrets = {item.metadata.name for item in core.list_namespaced_secret(name).items}
    assert {"ca-cert-secret", "minio-access-info", "tls-secret"} <= secrets, secrets
    assert core.read_namespaced_resource_quota(name, name)
    assert rbac.read_namespaced_role(name, name)
    assert rbac.read_namespaced_role_binding(name, name)
    assert client.NetworkingV1Api(api).list_namespaced_network_policy(name).items
    admin_s3_client(env).head_bucket(Bucket=name)


def assert_no_tenant(env: dict[str, str], name: str) -> None:
    core = client.CoreV1Api(config.new_client_from_config(env["KUBECONFIG"]))
    with pytest.raises(ApiException) as missing:
        core.read_namespace(name)
    assert missing.value.status == 404
    s3 = admin_s3_client(env)
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket=name)


def test_object_store_outage_parks_provisioning_and_uploads_and_loses_nothing(
    call, workers, devstack_env, platform_settings, tmp_path
):
    platform_settings.S3_MAX_ATTEMPTS = 1
    start_worker(workers, tmp_path)
    ready, parked = f"os{uuid.uuid4().hex[:8]}", f"op{uuid.uuid4().hex[:8]}"
    try:
        assert call("admin", "POST", "/tenants", tenant_body(ready), HTTP_PREFER="").status_code == 200
        # A two-part upload with its first part in the store.
        started = call(
            "alice",
            "POST",
            f"/tenants/{ready}/uploads",
            {"modelName": "resnet", "modelVersion": 1, "path": "model.bin", "size": 6 * MIB, "partSize": 5 * MIB},
        )
        assert started.status_code in (200, 201), started.content
        plan = json.loads(started.content)["data"]
        first = b"\x01" * (5 * MIB)
        assert requests.put(plan["missing"][0]["url"], data=first, timeout=60).status_code == 200
        upload_id = plan["uploadId"]

        with outage(outages.OBJECT_STORE) as end:
            task = started_operation(call("admin", "POST", "/tenants", tenant_body(parked)))
            wait_for(lambda: retrying(task), 60, "tenant creation to meet the outage")
            steps = {step["name"]: step.get("state") for step in operation(task).steps}
            assert steps.get("namespace") == "done", steps  # Kubernetes steps done, kept for the retry

            assert_unavailable(call("alice", "GET", f"/tenants/{ready}/models"), "object store")
            assert_unavailable(call("alice", "GET", f"/tenants/{ready}/uploads/{upload_id}"), "object store")
            assert_unavailable(call("alice", "DELETE", f"/tenants/{ready}/uploads/{upload_id}"), "object store")
            assert DirectUpload.objects.get(pk=upload_id).state == DirectUpload.State.OPEN  # still abortable
            not_ready = call(None, "GET", "/readyz")
            assert not_ready.status_code == 503
            assert "object store" in json.loads(not_ready.content)["description"]
            end()

        wait_for(lambda: succeeded(task), 90, "tenant creation to finish once the store is back")
        assert_complete_tenant(devstack_env, parked)
        assert call("admin", "GET", f"/tenants/{parked}").status_code == 200

        # The upload kept its part through the outage; aborting it now leaves nothing behind.
        resumed = json.loads(call("alice", "GET", f"/tenants/{ready}/uploads/{upload_id}").content)["data"]
        assert [part["partNumber"] for part in resumed["uploaded"]] == [1]
        assert resumed["uploaded"][0]["etag"].strip('"') == hashlib.md5(first).hexdigest()  # noqa: S324
        assert call("alice", "DELETE", f"/tenants/{ready}/uploads/{upload_id}").status_code == 200
        assert admin_s3_client(devstack_env).list_multipart_uploads(Bucket=ready).get("Uploads", []) == []
        assert DirectUpload.objects.get(pk=upload_id).state == DirectUpload.State.ABORTED
    finally:
        delete_tenants(call, devstack_env, ready, parked)


def test_kubernetes_outage_parks_tenant_deletion_and_refuses_requests(
    call, workers, devstack_env, platform_settings, tmp_path
):
    platform_settings.IMM_KUBE_RETRIES = 0
    platform_settings.IMM_MODEL_ACCESS_CACHE_SECONDS = 0  # no "may act here" remembered from before
    start_worker(workers, tmp_path, "before")
    doomed, refused = f"kd{uuid.uuid4().hex[:8]}", f"kr{uuid.uuid4().hex[:8]}"
    try:
        assert call("admin", "POST", "/tenants", tenant_body(doomed), HTTP_PREFER="").status_code == 200
        workers.stop_all()  # the deletion is queued now and runs only once the API server is gone
        task = started_operation(call("admin", "DELETE", f"/tenants/{doomed}"))

        with outage(outages.KUBERNETES) as end:
            start_worker(workers, tmp_path, "during")
            wait_for(lambda: retrying(task), 60, "tenant deletion to meet the outage")

            assert_unavailable(call("alice", "GET", "/tenants"), "kubernetes")
            assert_unavailable(call("alice", "GET", f"/tenants/{doomed}"), "kubernetes")
            assert_unavailable(call("alice", "GET", f"/tenants/{doomed}/endpoints"), "kubernetes")
            endpoint = {"endpointName": "outage", "modelName": "resnet", "subjectName": "client"}
            assert_unavailable(call("alice", "POST", f"/tenants/{doomed}/endpoints", endpoint), "kubernetes")
            assert_unavailable(call("alice", "GET", f"/tenants/{doomed}/models"), "kubernetes")
            assert_unavailable(call("admin", "POST", "/tenants", tenant_body(refused), HTTP_PREFER=""), "kubernetes")
            shown = json.loads(call("admin", "GET", f"/tasks/{task}").content)["data"]
            assert shown["state"] in ("PENDING", "RUNNING"), shown  # the task view needs only the database
            end()

        wait_for(lambda: succeeded(task), 120, "tenant deletion to finish once the API server is back")
        assert_no_tenant(devstack_env, doomed)
        assert_no_tenant(devstack_env, refused)  # refused during the outage: never half-created after it
        assert not Operation.objects.filter(target=refused).exists()
    finally:
        delete_tenants(call, devstack_env, doomed, refused)


def test_redis_outage_refuses_new_work_and_requeues_the_work_it_lost(
    call, workers, devstack_env, platform_settings, tmp_path
):
    queued, refused = f"rq{uuid.uuid4().hex[:8]}", f"rr{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(suite_broker_url(devstack_env))
    try:
        task = started_operation(call("admin", "POST", "/tenants", tenant_body(queued)))  # no worker yet
        assert broker.llen(TEST_QUEUE) >= 1  # the run's own queue (tests/conftest.py)

        with outage(outages.REDIS) as end:
            assert_unavailable(call("admin", "POST", "/tenants", tenant_body(refused), HTTP_PREFER=""), "redis")
            assert call("alice", "GET", "/tenants").status_code == 200  # reads need no broker
            not_ready = call(None, "GET", "/readyz")
            assert not_ready.status_code == 503
            assert "redis" in json.loads(not_ready.content)["description"]
            end()

        assert broker.llen(TEST_QUEUE) == 0, "the restarted broker kept its messages (no outage was simulated)"
        assert operation(task).state == State.PENDING  # the row remembers the work the broker forgot
        start_worker(workers, tmp_path)
        wait_for(lambda: succeeded(task), 90, "the lost tenant creation to be requeued and finish")
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert f"Operation {task} (tenants.provision) was PENDING with no sign of life" in log
        assert_complete_tenant(devstack_env, queued)
        assert_no_tenant(devstack_env, refused)
        refused_operation = Operation.objects.get(target=refused)
        assert refused_operation.state == State.FAILED
        assert (refused_operation.error or {}).get("code") == "redis_unavailable"
    finally:
        delete_tenants(call, devstack_env, queued, refused)


def test_identity_provider_outage_keeps_known_keys_and_refuses_what_needs_the_provider(
    call, devstack_env, platform_settings
):
    assert call("alice", "GET", "/tenants").status_code == 200  # this process now holds the key set
    with outage(outages.IDENTITY_PROVIDER) as end:
        # Tokens are verified locally against the cached keys: signed-in users carry on.
        assert call("alice", "GET", "/tenants").status_code == 200
        # Signing in needs the provider.
        assert_unavailable(call(None, "POST", "/authenticate/token", {"code": "x"}), "identity provider")
        # A process that starts during the outage has no key set and no discovery document yet.
        platform_settings.OIDC_ISSUER = platform_settings.OIDC_ISSUER  # forgets the provider and its keys
        assert_unavailable(call("alice", "GET", "/tenants"), "identity provider")
        assert_unavailable(call(None, "GET", "/authenticate"), "identity provider")
        not_ready = call(None, "GET", "/readyz")
        assert not_ready.status_code == 503
        assert "identity provider" in json.loads(not_ready.content)["description"]
        end()
    assert call("alice", "GET", "/tenants").status_code == 200


def test_work_of_a_dead_worker_whose_message_was_lost_is_requeued_and_resumed(workers, devstack_env, tmp_path):
    """A worker died mid-operation and the broker lost its unacknowledged message (a restart)."""
    stranded = Operation.objects.create(
        kind="operations.canary",
        target="outage",
        state=State.RUNNING,
        owner="dead-worker",
        attempts=1,
        params={"steps": 2, "step_seconds": 0.05},
        steps=[{"name": "step-1", "state": "done", "done": 10, "total": 10}],
        requested_by=ADMIN.username,
        requested_identity=ADMIN.as_record(),
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    start_worker(workers, tmp_path)
    wait_for(lambda: succeeded(str(stranded.pk)), 60, "the stranded operation to be requeued and finish")
    stranded.refresh_from_db()
    assert stranded.attempts == 2
    assert [step["name"] for step in stranded.steps] == ["step-1", "step-2"]  # the done step was kept
