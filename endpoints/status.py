"""What the API says about a live endpoint: pure functions of the CR and the objects the cluster shows.

Objects are the API server's JSON (camelCase dicts), as kube.py's typed functions return them: the
generated client's model classes cost more to build than the list itself on a 1,000-endpoint tenant.
Kubernetes leaves zero counters out of a Deployment's status (``omitempty``), so "present" in the
original's table (docs/compatibility.md) means "non-zero" here.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from endpoints.spec import AUTOSCALING_KEYS, PAUSED_REPLICAS_ANNOTATION, endpoint_url
from inferencemgmt.resources import PROTOCOL_ANNOTATIONS

AVAILABLE = "available"
UNAVAILABLE = "unavailable"
NOT_FULLY_AVAILABLE = "not fully available"
SCALED_TO_ZERO = "scaled to 0"
# New: the CR exists but its Deployment does not (yet), or has not reported on its pods yet. The
# original listed Deployments, so such an endpoint was invisible, or "scaled to 0" when brand new.
PENDING = "pending"

_COUNTED_PHASES = {"Running": "running pods", "Pending": "pending pods", "Failed": "failed pods"}


def deployment_status(deployment: Mapping[str, Any] | None) -> str:
    """The documented status word of one endpoint, from its Deployment (None when there is none)."""
    if deployment is None:
        return PENDING
    status = deployment.get("status") or {}
    unavailable = bool(status.get("unavailableReplicas"))
    available = bool(status.get("availableReplicas"))
    if unavailable and available:
        return NOT_FULLY_AVAILABLE
    if unavailable:
        return UNAVAILABLE
    if available:
        return AVAILABLE
    if (deployment.get("spec") or {}).get("replicas") == 0:
        return SCALED_TO_ZERO
    return PENDING


def endpoint_name_of(cr: Mapping[str, Any]) -> str:
    """The name children carry (``spec.endpointName``, kept equal to the CR's name by the API)."""
    return str((cr.get("spec") or {}).get("endpointName") or cr["metadata"]["name"])


def list_entries(
    crs: Iterable[Mapping[str, Any]], deployments: Mapping[str, Mapping[str, Any]], tenant: str
) -> list[dict[str, Any]]:
    """``{name, url, status}`` per CR, sorted by name; ``deployments`` is keyed by endpoint name."""
    entries = []
    for cr in crs:
        name = str(cr["metadata"]["name"])
        entries.append(
            {
                "name": name,
                "url": endpoint_url(name, tenant),
                "status": deployment_status(deployments.get(endpoint_name_of(cr))),
            }
        )
    return sorted(entries, key=lambda entry: entry["name"])


def pod_counts(pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Running, pending and failed pods, as the original counted them; pods being deleted are left out
    (they no longer serve, and a scale-down would otherwise still show them as running)."""
    counts = dict.fromkeys(_COUNTED_PHASES.values(), 0)
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        key = _COUNTED_PHASES.get(str((pod.get("status") or {}).get("phase")))
        if key is not None:
            counts[key] += 1
    return counts


def _condition(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def reason_and_message(cr: Mapping[str, Any]) -> tuple[str, str]:
    """Why the endpoint is (not) serving, from the conditions the controller wrote.

    A failure (``Degraded=True``) explains more than ``Ready=False`` ("RollingOut"), so it wins.
    """
    status = cr.get("status") or {}
    conditions = status.get("conditions") or []
    degraded = _condition(conditions, "Degraded")
    if degraded is not None and degraded.get("status") == "True":
        return str(degraded.get("reason") or "Degraded"), str(degraded.get("message") or "")
    ready = _condition(conditions, "Ready")
    if ready is not None:
        return str(ready.get("reason") or ready.get("status")), str(ready.get("message") or "")
    return "Pending", "the controller has not reported on this endpoint yet"


def protocol(service: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """How to call the endpoint from inside the cluster, from its Service; None when it says nothing.

    The facts come from the serving template (its Service's ``ai.intel.com/`` annotations and ports
    named ``http`` and ``grpc``: ``inferencemgmt.resources.PROTOCOL_ANNOTATIONS``), so every serving,
    shipped or an admin's, is described the same way, without a list of known runtimes here.
    """
    if service is None:
        return None
    metadata = service.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    facts = {key: str(annotations[name]) for key, name in PROTOCOL_ANNOTATIONS.items() if annotations.get(name)}
    if "name" not in facts:
        return None
    host = f"{metadata.get('name')}.{metadata.get('namespace')}.svc"
    ports = {str(port.get("name")): port.get("port") for port in (service.get("spec") or {}).get("ports") or []}
    http = f"http://{host}:{ports['http']}{facts.get('httpPath', '')}" if "http" in ports else None
    example = None
    if http is not None and "exampleRequest" in facts:
        body = shlex.quote(facts["exampleRequest"])
        example = f"curl -s -H 'Content-Type: application/json' -d {body} {shlex.quote(http)}"
    return {
        "name": facts["name"],
        "httpUrl": http,
        "grpcAddress": f"{host}:{ports['grpc']}" if "grpc" in ports else None,
        "grpcService": facts.get("grpcService"),
        "exampleRequest": example,
    }


def view(
    cr: Mapping[str, Any],
    deployment: Mapping[str, Any] | None,
    pods: Iterable[Mapping[str, Any]],
    tenant: str,
    service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The documented view keys (in order), then the new ones: status, reason, message, paused,
    conditions, protocol (how to call the endpoint, from its Service), autoscaling."""
    spec = cr.get("spec") or {}
    dep_status = (deployment or {}).get("status") or {}
    reason, message = reason_and_message(cr)
    annotations = (cr.get("metadata") or {}).get("annotations") or {}
    return {
        "endpoint status": pod_counts(pods),
        "endpoint url": endpoint_url(str(cr["metadata"]["name"]), tenant),
        "subject name": spec.get("subjectName"),
        "resources": spec.get("resources") or "Not specified",
        "replicas": {
            "available": dep_status.get("availableReplicas") or None,
            "unavailable": dep_status.get("unavailableReplicas") or None,
        },
        "status": deployment_status(deployment),
        "reason": reason,
        "message": message,
        "paused": PAUSED_REPLICAS_ANNOTATION in annotations,
        "conditions": list((cr.get("status") or {}).get("conditions") or []),
        "protocol": protocol(service),
        "autoscaling": autoscaling_view(cr),
    }


def autoscaling_view(cr: Mapping[str, Any]) -> dict[str, Any] | None:
    """None when the endpoint is scaled by hand; else its bounds, the replicas it has and wants, and
    the autoscaler's last decision, as the controller copied them from the HPA (``status.autoscaler``;
    ``null`` until the HPA has reported)."""
    scaling = (cr.get("spec") or {}).get("autoscaling")
    if not scaling:
        return None
    mirrored = (cr.get("status") or {}).get("autoscaler") or {}
    return {
        **{key: scaling.get(key) for key in AUTOSCALING_KEYS},
        "currentReplicas": mirrored.get("currentReplicas"),
        "desiredReplicas": mirrored.get("desiredReplicas"),
        "currentCPUUtilization": mirrored.get("currentCPUUtilization"),
        "lastScaleTime": mirrored.get("lastScaleTime"),
        "lastDecision": mirrored.get("lastDecision"),
    }


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def event_entries(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Core/v1 Events as ``{time, type, reason, object, message, count}``, oldest first, each once."""
    seen: set[str] = set()
    entries = []
    for event in events:
        uid = str((event.get("metadata") or {}).get("uid") or id(event))
        if uid in seen:
            continue
        seen.add(uid)
        involved = event.get("involvedObject") or {}
        entries.append(
            {
                "time": _event_time(event),
                "type": event.get("type"),
                "reason": event.get("reason"),
                "object": f"{involved.get('kind')}/{involved.get('name')}",
                "message": event.get("message"),
                "count": int(event.get("count") or (event.get("series") or {}).get("count") or 1),
            }
        )
    return sorted(entries, key=lambda entry: (entry["time"], entry["object"]))
