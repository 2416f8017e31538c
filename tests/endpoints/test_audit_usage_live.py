"""The audit trail and the usage ledger on the live platform (kwok nodes): each endpoint action by a
member leaves exactly one record with the right fields, a refused one is recorded as failed, members
read only their tenants' records, a 202 tenant deletion is settled to its task's final state by the
worker; and sampling while an endpoint scales 1 -> 3 -> 0 gives the replica-hours that happened,
within one sample (the test renders the endpoint's Deployment itself: see ``_play_controller``)."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings
from kubernetes import client
from rest_framework.test import APIClient

from audit.models import AuditRecord
from inferencemgmt.resources import ENDPOINT_LABEL
from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, VERSION
from tests.servings.conftest import ControllerProcess, wait_for
from usage import tasks as usage_tasks

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
#: A broker database of this module's own: engineers share the devstack's Redis, and a worker of
#: another checkout listening on the endpoint tests' database would take this module's tasks.
AUDIT_REDIS_DB = 4


@pytest.fixture(scope="module", autouse=True)
def _own_broker_database() -> Any:
    """Autouse, so it runs before the module's ``platform`` fixture reads the number."""
    from tests.endpoints import conftest

    previous = conftest.ENDPOINTS_REDIS_DB
    conftest.ENDPOINTS_REDIS_DB = AUDIT_REDIS_DB
    yield
    conftest.ENDPOINTS_REDIS_DB = previous


@pytest.fixture(scope="module")
def live(platform: Platform, controller: ControllerProcess) -> str:
    """A team-a tenant whose endpoints the test controller renders (kwok runs their pods)."""
    return platform.tenant(maxEndpoints=10)


def _endpoint(name: str, replicas: int) -> dict[str, Any]:
    return {
        "endpointName": name,
        "modelName": "resnet",
        "subjectName": "client",
        "replicas": replicas,
        "resources": {"requests.cpu": "200m"},
    }


def _rows(tenant: str) -> list[tuple[Any, ...]]:
    return list(
        AuditRecord.objects.filter(tenant=tenant)
        .order_by("id")
        .values_list("username", "action", "target", "status_code", "outcome", "error")
    )


def test_each_endpoint_action_leaves_one_record_and_members_see_only_theirs(platform, live):
    base = f"/tenants/{live}/endpoints"
    answers = [
        platform.call("alice", "post", base, _endpoint("audited", 0)),
        platform.call("alice", "patch", f"{base}/audited/replicas", {"replicas": 1}),
        platform.call("bob", "patch", f"{base}/audited/replicas", {"replicas": 2}),  # an outsider: 403
        platform.call("alice", "post", f"{base}/audited/pause"),
        platform.call("alice", "post", f"{base}/audited/resume"),
        platform.call("alice", "patch", f"{base}/audited", {"modelName": "other"}),
        platform.call("alice", "patch", f"{base}/audited/replicas", {"replicas": "many"}),  # 400
        platform.call("alice", "delete", f"{base}/audited"),
        platform.call("alice", "get", f"{base}"),  # a read: no record
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 403, 200, 200, 200, 400, 200, 200]
    alice, bob = "alice@example.com", "bob@example.com"
    # The module's tenant was made (by the fixture, in this test) through POST /tenants, which waited
    # for its task: one record, with the task, succeeded.
    made = AuditRecord.objects.get(tenant=live, action="tenant.create")
    assert (made.username, made.target, made.status_code, made.outcome) == ("admin@example.com", live, 200, "SUCCEEDED")
    assert made.operation_id is not None
    assert _rows(live)[1:] == [
        (alice, "endpoint.create", "audited", 200, "SUCCEEDED", ""),
        (alice, "endpoint.scale", "audited", 200, "SUCCEEDED", ""),
        (bob, "endpoint.scale", "audited", 403, "FAILED", "kubernetes_forbidden"),
        (alice, "endpoint.pause", "audited", 200, "SUCCEEDED", ""),
        (alice, "endpoint.resume", "audited", 200, "SUCCEEDED", ""),
        (alice, "endpoint.update", "audited", 200, "SUCCEEDED", ""),
        (alice, "endpoint.scale", "audited", 400, "FAILED", "validation_failed"),
        (alice, "endpoint.delete", "audited", 200, "SUCCEEDED", ""),
    ]
    records = AuditRecord.objects.filter(tenant=live).exclude(action="tenant.create").order_by("id")
    assert [record.request_id for record in records] == [answer["X-Request-ID"] for answer in answers[:8]]
    assert records[0].groups == ["team-a"]
    assert records[2].groups == ["team-b"]
    assert {record.client_address for record in records} == {"127.0.0.1"}

    # alice (team-a) reads them; bob (team-b) sees none of them and may not ask for them.
    listed = platform.call("alice", "get", f"/audit?tenant={live}&limit=500").json()["data"]["items"]
    assert [item["action"] for item in reversed(listed)] == [row[1] for row in _rows(live)]
    assert len(listed) == 9
    bobs = platform.call("bob", "get", "/audit?limit=500").json()["data"]["items"]
    assert live not in {item["tenant"] for item in bobs}
    assert platform.call("bob", "get", f"/audit?tenant={live}").status_code == 403


def test_a_202_tenant_deletion_is_settled_to_the_tasks_final_state(platform):
    doomed = platform.tenant(maxEndpoints=1)
    answer = APIClient().delete(
        f"/tenants/{doomed}",
        HTTP_AUTHORIZATION=f"Bearer {platform.token('admin')}",
        HTTP_PREFER="respond-async",
    )
    assert answer.status_code == 202, answer.content
    [record] = AuditRecord.objects.filter(tenant=doomed, action="tenant.delete")
    assert str(record.operation_id) == answer.json()["data"]["task"]["id"]
    assert record.outcome in ("PENDING", "SUCCEEDED")  # the worker may already be done

    def settled() -> bool:
        return AuditRecord.objects.get(pk=record.pk).outcome == "SUCCEEDED"

    wait_for(settled, 240, 1, "the audit record to take the task's final state")
    assert AuditRecord.objects.filter(tenant=doomed, action="tenant.delete").count() == 1


INTERVAL = 2.0
LEDGER_ROLE = "imm-test-usage-ledger"


@pytest.fixture
def ledger_rights(platform: Platform) -> Any:
    """The ledger's rules of this checkout's management-api.yaml, under a role of the test's own.

    Every devstack start (any engineer's test session) applies its own checkout's ClusterRole
    ``imm-management-api`` over ours; a separate role and binding of the same rules stays.
    """
    import yaml

    from devstack.layout import MANAGEMENT_USER, ROOT

    manifest = next(
        doc
        for doc in yaml.safe_load_all((ROOT / "helm/imm/files/rbac/management-api.yaml").read_text())
        if doc and doc["kind"] == "ClusterRole"
    )
    rules = [rule for rule in manifest["rules"] if {"deployments", "resourcequotas"} & set(rule["resources"])]
    assert len(rules) == 2
    rbac = client.RbacAuthorizationV1Api(platform.k8s)
    user = MANAGEMENT_USER  # the devstack's name for the API's own identity
    role = {"metadata": {"name": LEDGER_ROLE}, "rules": rules}
    binding = {
        "metadata": {"name": LEDGER_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": LEDGER_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    for remove in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
        try:
            remove(LEDGER_ROLE)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    try:
        yield
    finally:
        rbac.delete_cluster_role_binding(LEDGER_ROLE)
        rbac.delete_cluster_role(LEDGER_ROLE)


def _replicas(platform: Platform, tenant: str, name: str) -> int:
    found = client.AppsV1Api(platform.k8s).list_namespaced_deployment(tenant, label_selector=f"{ENDPOINT_LABEL}={name}")
    pods = 0
    for item in found.items:
        pods += int(item.status.replicas or 0)
    return pods


def _state(platform: Platform, tenant: str, name: str) -> str:
    """What to print when pods do not come: the CR's status and the Deployment's conditions."""
    cr = platform.cr(tenant, name) or {}
    found = client.AppsV1Api(platform.k8s).list_namespaced_deployment(
        tenant, label_selector=f"ai.intel.com/inference-endpoint={name}"
    )
    conditions = [(c.type, c.reason, c.message) for d in found.items for c in (d.status.conditions or [])]
    return f"CR status {cr.get('status')}, Deployment conditions {conditions}"


def _pods(platform: Platform, tenant: str, name: str, wanted: int) -> None:
    try:
        wait_for(lambda: _replicas(platform, tenant, name) == wanted, 300, 0.5, f"{wanted} pods")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {_state(platform, tenant, name)}") from None


def _play_controller(platform: Platform, tenant: str, name: str, replicas: int) -> None:
    """Give the endpoint the Deployment a controller renders (owned by the CR, the endpoint label, the
    CR's replicas), or set its replicas. The shared devstack holds thousands of other engineers'
    endpoints, and a test controller must get through all of them before it reaches this one; what is
    measured here is the ledger, which reads Deployments whoever made them."""
    apps = client.AppsV1Api(platform.k8s)
    existing = apps.list_namespaced_deployment(tenant, label_selector=f"{ENDPOINT_LABEL}={name}").items
    if existing:
        apps.patch_namespaced_deployment_scale(existing[0].metadata.name, tenant, {"spec": {"replicas": replicas}})
        return
    cr = platform.cr(tenant, name)
    assert cr is not None
    labels = {ENDPOINT_LABEL: name}
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceEndpoint",
        "name": name,
        "uid": cr["metadata"]["uid"],
    }
    container = {
        "name": "serve",
        "image": "imm.local/usage-test",
        "resources": {"requests": {"cpu": "200m"}},
        # Tenant namespaces enforce the restricted Pod Security Standard.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    try:
        apps.create_namespaced_deployment(
            tenant,
            {
                "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
                },
            },
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        # A controller of this run (another module's, still watching every tenant) rendered it
        # between the list and the create: it is the endpoint's Deployment all the same.
        apps.patch_namespaced_deployment_scale(name, tenant, {"spec": {"replicas": replicas}})


def test_scaling_1_3_0_gives_the_replica_hours_that_happened(platform, ledger_rights):
    tenant = platform.tenant(maxEndpoints=2)
    name = "metered"
    stop = threading.Event()
    truth: list[tuple[float, int]] = []  # (monotonic time, pods): a fine-grained record of what happened

    def observe() -> None:
        while not stop.is_set():
            truth.append((time.monotonic(), int(_replicas(platform, tenant, name))))
            stop.wait(0.2)

    sampled: list[int] = []
    failures: list[BaseException] = []

    def sample() -> None:
        try:
            while not stop.is_set():
                sampled.append(usage_tasks.sample())
                stop.wait(INTERVAL)
        except BaseException as exc:  # reported by the test, not lost with the thread
            failures.append(exc)
        finally:
            connections.close_all()  # this thread's own connection

    def scale(replicas: int) -> None:
        path = f"/tenants/{tenant}/endpoints/{name}/replicas"
        assert platform.call("alice", "patch", path, {"replicas": replicas}).status_code == 200
        _play_controller(platform, tenant, name, replicas)
        _pods(platform, tenant, name, replicas)

    with override_settings(IMM_USAGE_SAMPLE_INTERVAL_SECONDS=INTERVAL):
        started = time.time()
        watcher = threading.Thread(target=observe, daemon=True)
        sampler = threading.Thread(target=sample, daemon=True)
        watcher.start()
        sampler.start()
        try:
            created = platform.call("alice", "post", f"/tenants/{tenant}/endpoints", _endpoint(name, 1))
            assert created.status_code == 200, created.content
            _play_controller(platform, tenant, name, 1)
            _pods(platform, tenant, name, 1)
            time.sleep(8)
            scale(3)
            time.sleep(8)
            scale(0)
            time.sleep(2 * INTERVAL)
        finally:
            stop.set()
            watcher.join(10)
            sampler.join(30)
        ended = time.time()
        assert failures == []
        assert len(sampled) > 5
        happened = sum((later[0] - now[0]) * now[1] for now, later in itertools.pairwise(truth)) / 3600
        answer = platform.call(
            "alice",
            "get",
            f"/tenants/{tenant}/usage?from={_iso(started - 1)}&to={_iso(ended + 1)}&step=10",
        )
        assert answer.status_code == 200, answer.content
        usage = answer.json()["data"]
    # Within one sample: at most the peak's pods for one sampling interval (plus the observer's step).
    tolerance = 3 * (INTERVAL + 0.3) / 3600
    assert happened > 3 * 8 / 3600  # the test did scale
    assert usage["totals"]["replicaHours"] == pytest.approx(happened, abs=tolerance)
    # 200m requested per pod: CPU-hours are a fifth of the replica-hours.
    assert usage["totals"]["cpuHours"] == pytest.approx(usage["totals"]["replicaHours"] * 0.2, rel=1e-3)
    assert max(point["replicas"] for point in usage["series"]) > 1


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
