"""The controller's pure parts: status rules, the work queue, leader election against a fake Lease API."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from inferencemgmt import kube
from inferencemgmt.errors import Conflict, NotFound
from servings.controller import status as rules
from servings.controller.leader import LeaderElector
from servings.controller.workqueue import WorkQueue

pytestmark = pytest.mark.unit

CR = {"metadata": {"name": "e", "namespace": "t", "generation": 4}, "spec": {"replicas": 2}}


def deployment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": 7}, "status": {"observedGeneration": 7, **status}}


def conditions(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in result["conditions"]}


def compute(dep: dict[str, Any], cr: dict[str, Any] = CR, pods=(), replicasets=()) -> dict[str, Any]:
    return rules.endpoint_status(cr, dep, pods=pods, replicasets=replicasets, url="e-t.d:443", selector="endpoint=e")


def test_ready_when_all_replicas_are_updated_and_available():
    result = compute(deployment(replicas=2, readyReplicas=2, availableReplicas=2, updatedReplicas=2))
    found = conditions(result)
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("True", "Available")
    assert (found["Progressing"]["status"], found["Degraded"]["status"]) == ("False", "False")
    assert result["state"] == "Ready"
    assert result["observedGeneration"] == 4
    assert (result["replicas"], result["readyReplicas"], result["availableReplicas"]) == (2, 2, 2)
    assert (result["url"], result["selector"]) == ("e-t.d:443", "endpoint=e")


def test_zero_replicas_is_ready_scaled_to_zero():
    cr = {**CR, "spec": {"replicas": 0}}
    found = conditions(compute(deployment(), cr))
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("True", "ScaledToZero")


def test_stale_deployment_generation_is_progressing():
    dep = deployment(replicas=2, readyReplicas=2, availableReplicas=2, updatedReplicas=2, observedGeneration=6)
    result = compute(dep)
    assert result["state"] == "Progressing"
    assert conditions(result)["Progressing"]["status"] == "True"


def test_quota_exceeded_names_the_quota():
    message = 'pods "e-1" is forbidden: exceeded quota: tiny, requested: requests.cpu=1, used: requests.cpu=0'
    dep = deployment(
        replicas=0,
        conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}],
    )
    result = compute(dep)
    degraded = conditions(result)["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "QuotaExceeded")
    assert "ResourceQuota tiny" in degraded["message"]
    assert conditions(result)["Ready"]["reason"] == "QuotaExceeded"
    assert result["state"] == "Degraded"


def test_quota_failure_read_from_the_replicaset_too():
    replicaset = {
        "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "exceeded quota: q1, x"}]}
    }
    degraded = conditions(compute(deployment(replicas=0), replicasets=[replicaset]))["Degraded"]
    assert degraded["reason"] == "QuotaExceeded"
    assert "q1" in degraded["message"]


@pytest.mark.parametrize(
    ("pod_status", "reason"),
    [
        (
            {
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}
                ]
            },
            "Unschedulable",
        ),
        (
            {"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
            "ImagePullFailed",
        ),
        (
            {
                "containerStatuses": [
                    {"name": "c", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]
            },
            "CrashLoop",
        ),
        (
            {
                "containerStatuses": [
                    {
                        "name": "c",
                        "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret not found"}},
                    }
                ]
            },
            "ContainerConfigError",
        ),
    ],
)
def test_pod_problems_explain_non_readiness(pod_status, reason):
    pod = {"metadata": {"name": "e-abc"}, "status": pod_status}
    degraded = conditions(compute(deployment(replicas=2, updatedReplicas=2), pods=[pod]))["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", reason)
    assert "e-abc" in degraded["message"]


# What the kubelet puts into a Triton container's status when its model fails to load (the log tail,
# terminationMessagePolicy FallbackToLogsOnError): the glog error line names the runtime's reason.
TRITON_ERROR = (
    "E1206 13:20:02.1004 1 model_lifecycle.cc:654] "
    "\"failed to load 'broken' version 1: Internal: RuntimeError: weights missing"
    '\\n\\nAt:\\n  /models/broken/1/model.py(3): initialize\\n"'
)
TRITON_TAIL = f"""I1206 13:20:01.100200 1 model_lifecycle.cc:473] loading: broken:1
I1206 13:20:01.500300 1 python_be.cc:2248] TRITONBACKEND_ModelInstanceInitialize: broken_0_0 (CPU device 0)
{TRITON_ERROR}
I1206 13:20:02.100500 1 server.cc:676]
+--------+---------+----------------------------------------------+
| Model  | Version | Status                                       |
+--------+---------+----------------------------------------------+
| broken | 1       | UNAVAILABLE: Internal: RuntimeError: weights |
+--------+---------+----------------------------------------------+
error: creating server: Internal - failed to load all models
"""


def crashed(name: str = "triton", *, state: dict[str, Any], message: str = TRITON_TAIL, **extra: Any) -> dict[str, Any]:
    terminated = {"exitCode": 1, "reason": "Error", "message": message}
    return {
        "name": name,
        "ready": False,
        "restartCount": 3,
        "state": state,
        "lastState": {"terminated": terminated},
        **extra,
    }


def degraded_by(pod_status: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    pod = {"metadata": {"name": "e-abc", **metadata}, "status": pod_status}
    return conditions(compute(deployment(replicas=2, updatedReplicas=2), pods=[pod]))["Degraded"]


def test_crash_loop_names_the_runtime_s_last_error_line():
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}
    degraded = degraded_by({"containerStatuses": [crashed(state=waiting)]})
    assert (degraded["status"], degraded["reason"]) == ("True", "CrashLoop")
    assert degraded["message"] == (
        "pod e-abc, container triton restarted 3 times, exit code 1 (Error): "
        "failed to load 'broken' version 1: Internal: RuntimeError: weights missing"
    )


def test_a_crashing_container_between_back_offs_stays_a_crash_loop():
    """Running again after a failed run, not ready: still CrashLoop, so the status does not flap."""
    running = {"running": {"startedAt": "2026-12-06T13:20:10Z"}}
    degraded = degraded_by({"containerStatuses": [crashed(state=running)]})
    assert (degraded["status"], degraded["reason"]) == ("True", "CrashLoop")
    assert "weights missing" in degraded["message"]
    # Ready after an earlier crash (it recovered): nothing to report.
    recovered = crashed(state=running, ready=True)
    assert degraded_by({"containerStatuses": [recovered]})["status"] == "False"


def test_a_failing_init_container_is_reported_before_the_server_that_waits_for_it():
    exited = "arrange: adder/2/config.pbtxt is missing; each Triton model version holds its config.pbtxt\n"
    init = crashed("arrange-model", state={"terminated": {"exitCode": 1, "reason": "Error", "message": exited}})
    server = {"name": "triton", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    degraded = degraded_by({"initContainerStatuses": [init], "containerStatuses": [server]})
    assert degraded["reason"] == "CrashLoop"
    assert degraded["message"] == (
        "pod e-abc, init container arrange-model restarted 3 times, exit code 1 (Error): "
        "arrange: adder/2/config.pbtxt is missing; each Triton model version holds its config.pbtxt"
    )
    # A finished init container (exit 0) is no reason.
    done = {"name": "arrange-model", "ready": True, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    assert degraded_by({"initContainerStatuses": [done], "containerStatuses": [server]})["status"] == "False"


def test_a_terminating_pod_explains_nothing():
    """Old pods of a rollout stop with SIGTERM's exit code; that is no failure of the endpoint."""
    stopped = {"terminated": {"exitCode": 143, "reason": "Error", "message": "signal 15 received"}}
    degraded = degraded_by({"containerStatuses": [crashed(state=stopped)]}, deletionTimestamp="2026-12-06T13:21:00Z")
    assert (degraded["status"], degraded["reason"]) == ("False", "AsExpected")


def test_crash_without_a_termination_message_names_the_exit():
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    container = crashed(state=waiting, message="")
    container["lastState"]["terminated"]["reason"] = "OOMKilled"
    container["lastState"]["terminated"]["exitCode"] = 137
    degraded = degraded_by({"containerStatuses": [container]})
    assert degraded["message"] == "pod e-abc, container triton restarted 3 times, exit code 137 (OOMKilled)"


def test_the_failed_run_s_log_names_the_reason_the_termination_message_lost():
    """Triton's exit tables fill the kubelet's 2 KiB: the log tail of the previous run still has its reason."""
    asked: list[tuple[str, str, int, bool]] = []

    def log_tail(pod: str, container: str, restarts: int, previous: bool) -> str | None:
        asked.append((pod, container, restarts, previous))
        return TRITON_TAIL

    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    container = crashed(
        state=waiting, message="| exit_timeout | 30 |\nerror: creating server: failed to load all models"
    )
    pod = {"metadata": {"name": "e-abc"}, "status": {"containerStatuses": [container]}}
    with_log = rules.endpoint_status(
        CR, deployment(replicas=2, updatedReplicas=2), pods=[pod], replicasets=(), url="u", selector="s",
        log_tail=log_tail,
    )  # fmt: skip
    assert with_log["message"] == (
        "pod e-abc, container triton restarted 3 times, exit code 1 (Error): "
        "failed to load 'broken' version 1: Internal: RuntimeError: weights missing"
    )
    assert asked == [("e-abc", "triton", 3, True)]  # restarted: the failed run is the previous one
    # Without the log, the termination message's generic line is what there is.
    alone = rules.explain_pods([pod])
    assert alone == (
        "CrashLoop",
        "pod e-abc, container triton restarted 3 times, exit code 1 (Error): "
        "error: creating server: failed to load all models",
    )
    # A ready endpoint never reads a log.
    rules.endpoint_status(
        CR, deployment(replicas=2, readyReplicas=2, availableReplicas=2, updatedReplicas=2), pods=[pod],
        replicasets=(), url="u", selector="s", log_tail=log_tail,
    )  # fmt: skip
    assert len(asked) == 1


def test_a_first_crash_reads_the_terminated_container_s_own_log():
    """Before its first restart the failed run is the container itself: it has no previous run yet."""
    asked: list[tuple[str, str, int, bool]] = []

    def log_tail(pod: str, container: str, restarts: int, previous: bool) -> str | None:
        asked.append((pod, container, restarts, previous))
        return TRITON_TAIL if not previous else None

    terminated = {"exitCode": 1, "reason": "Error", "message": "error: creating server: failed to load all models"}
    container = {"name": "triton", "ready": False, "restartCount": 0, "state": {"terminated": terminated}}
    pod = {"metadata": {"name": "e-abc"}, "status": {"containerStatuses": [container]}}
    status = rules.endpoint_status(
        CR, deployment(replicas=1, updatedReplicas=1), pods=[pod], replicasets=(), url="u", selector="s",
        log_tail=log_tail,
    )  # fmt: skip
    assert asked == [("e-abc", "triton", 0, False)]
    assert status["message"] == (
        "pod e-abc, container triton restarted 0 times, exit code 1 (Error): "
        "failed to load 'broken' version 1: Internal: RuntimeError: weights missing"
    )


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        (TRITON_TAIL, "failed to load 'broken' version 1: Internal: RuntimeError: weights missing"),
        ("starting\nTraceback (most recent call last):\n  File x\nValueError: bad input\n", "ValueError: bad input"),
        ("loading\nno such key\n", "no such key"),
        ("starting\nerror: bind failed\nshutting down\n", "error: bind failed"),
        ("", ""),
        ("E1206 13:20:02.1 1 x.cc:1] " + "y" * 500, "y" * 397 + "..."),
    ],
)
def test_last_error_line(tail, line):
    assert rules.last_error_line(tail) == line


def test_transition_time_kept_while_status_holds_so_rewrites_are_no_ops():
    dep = deployment(replicas=2, readyReplicas=2, availableReplicas=2, updatedReplicas=2)
    first = compute(dep)
    again = compute(dep, {**CR, "status": first})
    assert again == first


def test_failure_status_for_unknown_serving():
    result = rules.failure_status(CR, rules.SERVING_NOT_FOUND, "serving template 'x' does not exist", url="u")
    found = conditions(result)
    assert (found["Degraded"]["status"], found["Degraded"]["reason"]) == ("True", "ServingNotFound")
    assert found["Ready"]["status"] == "False"
    assert result["state"] == "Degraded"
    assert result["message"] == "serving template 'x' does not exist"


# --- work queue --------------------------------------------------------------------------------------
def test_queue_dedupes_and_never_hands_one_key_to_two_workers():
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # changed while being processed: must come back after done(), not now
    assert queue.get(timeout=0) == "b"
    assert queue.get(timeout=0) is None
    queue.done("a")
    assert queue.get(timeout=0) == "a"


def test_an_urgent_key_goes_first_even_when_it_was_queued_behind_others():
    queue = WorkQueue()
    for key in ("a", "b", "c"):
        queue.add(key)
    queue.add("c", urgent=True)  # moved to the front, not queued twice
    queue.add("d", urgent=True)
    assert len(queue) == 4
    assert queue.get(timeout=0) == "d"
    queue.add("d", urgent=True)  # changed while processed: first again once done
    queue.add("e")
    queue.done("d")
    assert [queue.get(timeout=0) for _ in range(5)] == ["d", "c", "a", "b", "e"]


def test_queue_retry_backs_off_exponentially_and_forget_resets():
    queue = WorkQueue(base_delay=0.01, max_delay=0.04)
    assert [queue.retry("k") for _ in range(4)] == [0.01, 0.02, 0.04, 0.04]
    queue.forget("k")
    assert queue.retry("k") == 0.01
    assert queue.get(timeout=1.0) == "k"


def test_queue_shutdown_wakes_waiting_workers():
    queue = WorkQueue()
    results: list[str | None] = []
    worker = threading.Thread(target=lambda: results.append(queue.get()))
    worker.start()
    queue.shut_down()
    worker.join(timeout=2)
    assert results == [None]


# --- leader election ---------------------------------------------------------------------------------
class FakeLeases:
    """An in-memory Lease API with the API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def __call__(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method == "read_namespaced_lease":
            if self.lease is None:
                raise NotFound()
            return self.lease
        body = args[-1]
        if method == "create_namespaced_lease" and self.lease is not None:
            raise Conflict()
        if method == "replace_namespaced_lease" and body["metadata"].get("resourceVersion") != str(self.version):
            raise Conflict()
        self.version += 1
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return self.lease


@pytest.fixture
def leases(monkeypatch):
    fake = FakeLeases()
    monkeypatch.setattr(kube, "call_json", fake)
    return fake


def elector(name: str, clock: list[float]) -> LeaderElector:
    return LeaderElector(
        None,
        namespace="ns",
        name="lease",
        identity=name,
        lease_seconds=10,
        renew_deadline=6,
        retry_period=1,
        clock=lambda: clock[0],
    )


def test_only_one_candidate_leads_until_the_lease_expires(leases):
    clock = [100.0]
    first, second = elector("one", clock), elector("two", clock)
    assert first.try_acquire_or_renew() is True
    assert second.try_acquire_or_renew() is False
    clock[0] += 5
    assert first.try_acquire_or_renew() is True  # renewed: the record changed
    assert second.try_acquire_or_renew() is False
    clock[0] += 9  # the leader renewed 9 s ago, but "two" saw that renewal only now
    assert second.try_acquire_or_renew() is False
    clock[0] += 11  # unchanged for longer than the lease: the leader is gone
    assert second.try_acquire_or_renew() is True
    assert leases.lease["spec"]["holderIdentity"] == "two"
    assert leases.lease["spec"]["leaseTransitions"] == 1


def test_released_lease_is_taken_at_once(leases):
    clock = [0.0]
    first, second = elector("one", clock), elector("two", clock)
    assert first.try_acquire_or_renew()
    first.leading.set()
    first.release()
    assert leases.lease["spec"]["holderIdentity"] == ""
    assert second.try_acquire_or_renew() is True


def test_lease_taken_by_another_meanwhile_is_respected(leases):
    clock = [0.0]
    first = elector("one", clock)
    assert first.try_acquire_or_renew()
    stale = dict(leases.lease)
    leases.version += 1  # somebody else wrote in between
    leases.lease = {**stale, "metadata": {**stale["metadata"], "resourceVersion": str(leases.version)}}
    leases.lease["spec"] = {**stale["spec"], "holderIdentity": "other", "renewTime": "later"}
    assert first.try_acquire_or_renew() is False


def test_election_thread_survives_a_defect_and_gives_up_leadership(monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyError("spec")

    monkeypatch.setattr(kube, "call_json", broken)
    candidate = LeaderElector(
        None, namespace="ns", name="lease", identity="me", lease_seconds=3, renew_deadline=0.2, retry_period=0.05
    )
    candidate.leading.set()  # it led before the defect
    stop = threading.Event()
    thread = threading.Thread(target=candidate.run, args=(stop,))
    thread.start()
    try:
        stop.wait(0.5)
        assert thread.is_alive()
        assert not candidate.leading.is_set()
    finally:
        stop.set()
        thread.join(timeout=2)


# --- event routing -----------------------------------------------------------------------------------
def test_events_become_endpoint_keys_and_a_template_change_requeues_its_users():
    from types import SimpleNamespace
    from typing import cast

    from inferencemgmt.resources import ENDPOINT_LABEL
    from servings.controller.loop import Controller
    from servings.controller.tenancy import TenantNamespaces

    forgotten: list[str] = []
    namespaces = TenantNamespaces(
        lambda labels: labels.get("created_by") == "platform_admin", "created_by=platform_admin"
    )
    reconciler = SimpleNamespace(templates=SimpleNamespace(forget=forgotten.append), namespaces=namespaces)
    ctl = Controller(
        None, reconciler=cast(Any, reconciler), elector=cast(Any, None), templates_namespace="imm-servings"
    )

    def drain() -> list[str]:
        keys = []
        while (key := ctl.queue.get(timeout=0)) is not None:
            keys.append(key)
            ctl.queue.done(key)
        return keys

    ctl._on_endpoint("ADDED", {"metadata": {"namespace": "t", "name": "a"}, "spec": {"servingName": "s1"}})
    ctl._on_endpoint("ADDED", {"metadata": {"namespace": "t", "name": "b"}, "spec": {"servingName": "s2"}})
    assert drain() == ["t/a", "t/b"]

    ctl._on_template("MODIFIED", {"metadata": {"name": "s1"}})
    assert forgotten == ["s1"]
    assert drain() == ["t/a"]

    ctl._on_child("MODIFIED", {"metadata": {"namespace": "t", "labels": {ENDPOINT_LABEL: "b"}}})
    ctl._on_child("MODIFIED", {"metadata": {"namespace": "t", "labels": {}}})
    assert drain() == ["t/b"]

    ctl._on_endpoint("DELETED", {"metadata": {"namespace": "t", "name": "a"}, "spec": {"servingName": "s1"}})
    ctl._on_template("MODIFIED", {"metadata": {"name": "s1"}})
    assert drain() == []

    # A namespace that becomes (or stops being) a tenant has its endpoints looked at again; others do not.
    tenant = {"metadata": {"name": "t", "labels": {"created_by": "platform_admin"}}}
    ctl._on_namespace_list([{"metadata": {"name": "u", "labels": {}}}])
    assert namespaces.is_tenant("t") is False
    assert drain() == []
    ctl._on_namespace("ADDED", tenant)
    assert namespaces.is_tenant("t") is True
    assert drain() == ["t/b"]
    ctl._on_namespace("MODIFIED", tenant)
    assert drain() == []
    ctl._on_namespace("MODIFIED", {"metadata": {"name": "t", "labels": {"created_by": "someone"}}})
    assert namespaces.is_tenant("t") is False
    assert drain() == ["t/b"]
    ctl._on_namespace("ADDED", tenant)
    drain()
    ctl._on_namespace_list([])  # a relist after the watch expired: what vanished meanwhile is dropped
    assert namespaces.is_tenant("t") is False
    assert drain() == ["t/b"]

    # A new store-key generation on a tenant (a key rotation) puts its endpoints before the others.
    rotating = TenantNamespaces(
        lambda labels: labels.get("created_by") == "platform_admin",
        "created_by=platform_admin",
        lambda annotations: annotations.get("imm.ai.intel.com/store-key", ""),
    )
    ctl.reconciler.namespaces = rotating
    ctl._on_namespace_list([tenant])
    drain()
    ctl._on_endpoint("ADDED", {"metadata": {"namespace": "other", "name": "x"}, "spec": {"servingName": "s1"}})
    rotated = {"metadata": {**tenant["metadata"], "annotations": {"imm.ai.intel.com/store-key": "abc"}}}
    ctl._on_namespace("MODIFIED", rotated)
    assert drain() == ["t/b", "other/x"]
