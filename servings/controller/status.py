"""The InferenceEndpoint ``status`` as a pure function of what the cluster shows.

Why conditions: ``Ready`` / ``Progressing`` / ``Degraded`` with a machine ``reason`` and a human
``message`` answer "why is my endpoint not serving?" without kubectl access to pods and events,
which tenants of the original never had (its status was never even written). The reasons are
stable and documented in the README (Servings).

``lastTransitionTime`` only moves when a condition's status flips, so an unchanged world gives a
byte-identical status and the controller writes nothing (no write, no watch event, no loop).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from servings.controller.rendering import desired_replicas

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

# Reasons (published; the README (Servings)).
SERVING_NOT_FOUND = "ServingNotFound"
RENDER_FAILED = "RenderFailed"
TEMPLATE_FORBIDDEN = "TemplateForbidden"
NOT_A_TENANT_NAMESPACE = "NotATenantNamespace"
APPLY_FAILED = "ApplyFailed"
QUOTA_EXCEEDED = "QuotaExceeded"
REPLICA_FAILURE = "ReplicaFailure"
UNSCHEDULABLE = "Unschedulable"
IMAGE_PULL_FAILED = "ImagePullFailed"
CRASH_LOOP = "CrashLoop"
CONTAINER_CONFIG_ERROR = "ContainerConfigError"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"

_QUOTA = re.compile(r"exceeded quota: ([^,\s]+)")
_IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG = {"CreateContainerConfigError", "CreateContainerError"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    kind: str,
    status: bool,
    reason: str,
    message: str,
    *,
    generation: int,
    previous: Iterable[Mapping[str, Any]] = (),
    now: str | None = None,
) -> dict[str, Any]:
    """One condition; keeps the previous ``lastTransitionTime`` when the status did not flip."""
    value = "True" if status else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    if before is not None and before.get("status") == value and before.get("lastTransitionTime"):
        transition = str(before["lastTransitionTime"])
    else:
        transition = now or now_rfc3339()
    return {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }


def explain_deployment(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """A failure the Deployment (or its ReplicaSet, whose ReplicaFailure it copies) reports."""
    for cond in deployment.get("status", {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            message = str(cond.get("message") or cond.get("reason") or "")
            quota = _QUOTA.search(message)
            if quota:
                return QUOTA_EXCEEDED, f"ResourceQuota {quota.group(1)} is exhausted: {message}"
            return REPLICA_FAILURE, message
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return PROGRESS_DEADLINE_EXCEEDED, str(cond.get("message") or "")
    return None


def explain_replicasets(replicasets: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The same, read from the ReplicaSets directly (they report it before the Deployment copies it)."""
    for replicaset in replicasets:
        found = explain_deployment(replicaset)
        if found is not None:
            return found
    return None


# glog's error and fatal lines (Triton, TF Serving, OVMS: "E1206 13:20:01.123456 1 file.cc:42] text").
_GLOG_ERROR = re.compile(r"^[EF]\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\s+\S+\s+[^\]]*\]\s*(.+)$")
# "ValueError: ..." too (no word boundary before "Error"); "Traceback" is not the reason, its last line is.
_ERROR_WORDS = re.compile(r"(error|exception)\b|\b(failed|failure|fatal|cannot|denied|refused)\b", re.IGNORECASE)
LAST_ERROR_MAX = 400


def _unquoted(message: str) -> str:
    """Triton quotes its log messages as JSON strings ("failed ...\\n\\nAt:\\n  model.py(3)"): the first line."""
    if len(message) > 1 and message[0] == message[-1] == '"':
        with contextlib.suppress(ValueError):
            message = str(json.loads(message))
    return next((line.strip() for line in message.splitlines() if line.strip()), "")


def last_error_line(text: str) -> str:
    """The line of a failed container's log tail that says why it failed.

    A glog error line (the runtime's own reason, e.g. Triton's "failed to load 'm' version 1: ...")
    wins over a later generic one ("error: creating server: ... failed to load all models"); then
    the last line naming an error; then the last line at all (a script's ``sys.exit(reason)``).
    Cut to ``LAST_ERROR_MAX`` characters: the status is no log store.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = next((_unquoted(m.group(1)) for m in map(_GLOG_ERROR.match, reversed(lines)) if m), None)
    if found is None:
        found = next((line for line in reversed(lines) if _ERROR_WORDS.search(line)), None)
    if found is None:
        found = lines[-1] if lines else ""
    return found if len(found) <= LAST_ERROR_MAX else found[: LAST_ERROR_MAX - 3] + "..."


def _failed_run(container: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool] | None:
    """The container's last run if it ended in failure, and whether that run is the previous one.

    A container that has just failed for the first time is itself the failed run (``state``, not yet
    restarted: its own log holds the reason); after a restart the failed run is ``lastState``, whose
    log the kubelet keeps as the container's previous one.
    """
    for previous, state in ((False, container.get("state") or {}), (True, container.get("lastState") or {})):
        terminated = state.get("terminated") or {}
        if terminated and (terminated.get("exitCode") or 0) != 0:
            return terminated, previous
    return None


#: Reads the log tail of a container's failed run: (pod, container, restart count, whether the failed
#: run is the previous one rather than the current, terminated container) -> text, or None.
LogTail = Callable[[str, str, int, bool], "str | None"]


def _crash(pod: str, container: Mapping[str, Any], init: bool, log_tail: LogTail | None) -> tuple[str, str]:
    """CrashLoop with the restart count and the runtime's own reason (its last error line, or the exit).

    The reason comes from the failed run's log tail when ``log_tail`` can read it, else from the
    termination message (the kubelet's copy of at most 2 KiB of that tail, which a runtime that
    prints long tables on exit, as Triton does, fills with those).
    """
    kind = "init container" if init else "container"
    restarts = int(container.get("restartCount") or 0)
    message = f"pod {pod}, {kind} {container.get('name')} restarted {restarts} times"
    failed = _failed_run(container)
    if failed is not None:
        run, previous = failed
        exit_text = f"exit code {run.get('exitCode')}" + (f" ({run['reason']})" if run.get("reason") else "")
        logged = log_tail(pod, str(container.get("name")), restarts, previous) if log_tail is not None else None
        reason = last_error_line(f"{logged or ''}\n{run.get('message') or ''}")
        message += f", {exit_text}" + (f": {reason}" if reason else "")
    else:
        waiting = (container.get("state") or {}).get("waiting") or {}
        message += f": {waiting.get('message') or waiting.get('reason') or 'not ready'}"
    return CRASH_LOOP, message


def _explain_container(
    pod: str, container: Mapping[str, Any], init: bool, log_tail: LogTail | None
) -> tuple[str, str] | None:
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    detail = waiting.get("message") or reason
    kind = "init container" if init else "container"
    if reason in _IMAGE_PULL:
        return IMAGE_PULL_FAILED, f"pod {pod}, {kind} {container.get('name')}: {detail}"
    if reason in _CONFIG:
        return CONTAINER_CONFIG_ERROR, f"pod {pod}, {kind} {container.get('name')}: {detail}"
    if reason == "CrashLoopBackOff":
        return _crash(pod, container, init, log_tail)
    # Between two back-offs a crashing container runs (or an init container has just failed): still a
    # crash loop, so the status does not flap to RollingOut and back on every restart.
    if not container.get("ready") and _failed_run(container) is not None:
        return _crash(pod, container, init, log_tail)
    return None


def explain_pods(pods: Iterable[Mapping[str, Any]], log_tail: LogTail | None = None) -> tuple[str, str] | None:
    """The first pod-level reason a pod is not ready: unschedulable, image pull, crash loop, config.

    Init containers come first (a pod whose init container fails never starts its server). A crash
    names the runtime's reason: the last error line of the failed run's log (``log_tail``), or of
    the termination message (the controller renders ``FallbackToLogsOnError``).
    """
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue  # going away (a rollout, a scale-down): how its containers stop explains nothing
        status = pod.get("status", {})
        for cond in status.get("conditions") or []:
            scheduled = cond.get("type") == "PodScheduled" and cond.get("status") == "False"
            if scheduled and cond.get("reason") == "Unschedulable":
                return UNSCHEDULABLE, f"pod {name}: {cond.get('message', 'no node fits')}"
        for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
            for container in status.get(key) or []:
                found = _explain_container(name, container, init, log_tail)
                if found is not None:
                    return found
    return None


def _generation(cr: Mapping[str, Any]) -> int:
    return int(cr.get("metadata", {}).get("generation") or 0)


def failure_status(cr: Mapping[str, Any], reason: str, message: str, *, url: str | None = None) -> dict[str, Any]:
    """The status of an endpoint the controller could not turn into objects (nothing was applied)."""
    previous = cr.get("status", {}).get("conditions") or []
    generation = _generation(cr)
    old = cr.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": int(old.get("replicas") or 0),
        "readyReplicas": int(old.get("readyReplicas") or 0),
        "availableReplicas": int(old.get("availableReplicas") or 0),
        "state": DEGRADED,
        "message": message,
        "conditions": [
            condition(READY, False, reason, message, generation=generation, previous=previous),
            condition(PROGRESSING, False, reason, message, generation=generation, previous=previous),
            condition(DEGRADED, True, reason, message, generation=generation, previous=previous),
        ],
    }
    if old.get("selector"):
        status["selector"] = old["selector"]
    if url is not None:
        status["url"] = url
    return status


def endpoint_status(
    cr: Mapping[str, Any],
    deployment: Mapping[str, Any],
    *,
    pods: Iterable[Mapping[str, Any]],
    replicasets: Iterable[Mapping[str, Any]],
    url: str,
    selector: str,
    log_tail: LogTail | None = None,
) -> dict[str, Any]:
    """The status of an endpoint whose objects were applied, from its Deployment, ReplicaSets and pods.

    ``log_tail`` is called only for a crashing container, to name its reason (see ``explain_pods``).
    """
    previous = cr.get("status", {}).get("conditions") or []
    generation = _generation(cr)
    desired = desired_replicas(cr)
    dep_status = deployment.get("status") or {}
    current = int(dep_status.get("observedGeneration") or 0) >= int(
        deployment.get("metadata", {}).get("generation") or 1
    )
    replicas = int(dep_status.get("replicas") or 0)
    ready = int(dep_status.get("readyReplicas") or 0)
    available = int(dep_status.get("availableReplicas") or 0)
    updated = int(dep_status.get("updatedReplicas") or 0)
    rolled_out = current and replicas == desired and updated == desired and available == desired
    counts = f"{available}/{desired} replicas available, {ready} ready, {updated} updated"

    problem = None
    if not rolled_out:
        problem = explain_deployment(deployment) or explain_replicasets(replicasets) or explain_pods(pods, log_tail)

    if rolled_out:
        ready_cond = condition(
            READY,
            True,
            "ScaledToZero" if desired == 0 else "Available",
            "scaled to 0 replicas" if desired == 0 else f"all {desired} replicas available",
            generation=generation,
            previous=previous,
        )
        progressing = condition(PROGRESSING, False, "RolloutComplete", counts, generation=generation, previous=previous)
    else:
        reason = problem[0] if problem else "RollingOut"
        ready_cond = condition(READY, False, reason, counts, generation=generation, previous=previous)
        stuck = problem is not None and problem[0] == PROGRESS_DEADLINE_EXCEEDED
        progressing = condition(
            PROGRESSING,
            not stuck,
            reason if stuck else "RollingOut",
            counts,
            generation=generation,
            previous=previous,
        )
    if problem is not None:
        degraded = condition(DEGRADED, True, problem[0], problem[1], generation=generation, previous=previous)
        state, message = DEGRADED, problem[1]
    else:
        degraded = condition(
            DEGRADED, False, "AsExpected", "no failure observed", generation=generation, previous=previous
        )
        state, message = (READY, ready_cond["message"]) if rolled_out else (PROGRESSING, counts)
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "selector": selector,
        "url": url,
        "state": state,
        "message": message,
        "conditions": [ready_cond, progressing, degraded],
    }


def _cpu_utilization(metrics: Iterable[Mapping[str, Any]]) -> int | None:
    for metric in metrics:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get("current") or {}).get("averageUtilization")
            return None if value is None else int(value)
    return None


def autoscaler_status(hpa: Mapping[str, Any]) -> dict[str, Any]:
    """What an endpoint shows of its HorizontalPodAutoscaler (``status.autoscaler``).

    ``lastDecision`` is the HPA's ``AbleToScale`` condition (it names what the HPA did or would do
    last: ``SucceededRescale``, ``ScaleDownStabilized``, ...), or the first condition that is not
    True (``ScalingActive=False``: it cannot compute a count, e.g. no metrics yet; ``ScalingDisabled``
    while the endpoint is paused). The other fields are the HPA's own.
    """
    status = hpa.get("status") or {}
    conditions = [
        {key: cond[key] for key in ("type", "status", "reason", "message", "lastTransitionTime") if key in cond}
        for cond in status.get("conditions") or []
    ]
    failing = next((c for c in conditions if c.get("type") != "ScalingLimited" and c.get("status") != "True"), None)
    able = next((c for c in conditions if c.get("type") == "AbleToScale"), None)
    decision = failing or able
    mirrored: dict[str, Any] = {
        "currentReplicas": int(status.get("currentReplicas") or 0),
        "desiredReplicas": int(status.get("desiredReplicas") or 0),
        "currentCPUUtilization": _cpu_utilization(status.get("currentMetrics") or []),
        "lastScaleTime": status.get("lastScaleTime"),
        "conditions": conditions,
    }
    if decision is not None:
        mirrored["lastDecision"] = {
            "reason": decision.get("reason"),
            "message": decision.get("message"),
            "time": decision.get("lastTransitionTime"),
        }
    return mirrored
