"""One reconcile: read an InferenceEndpoint, make its four children match, write its status.

Level-based, not edge-based: it never asks "what changed?", it renders what should exist from the
CR as it is now and applies it (server-side apply with the field manager ``imm-controller``), so a
missed event, a restart mid-way or a manual edit all converge the same way, without duplicates.
Failures the endpoint's owner or an admin must fix (unknown serving, a template that does not
render, an object the API server refuses) are written to the CR's status; only failures a retry can
fix propagate to the work queue's backoff.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from inferencemgmt import kube
from inferencemgmt.errors import KUBERNETES, BadRequest, Forbidden, ImmError, NotFound, UpstreamUnavailable
from inferencemgmt.resources import ENDPOINT_LABEL, GROUP, PLURAL
from servings.catalogue import TEMPLATE_LABEL
from servings.controller import status as status_rules
from servings.controller.rendering import (
    FIELD_MANAGER,
    Platform,
    RenderError,
    ServingTemplate,
    TemplateForbidden,
    autoscaler_name,
    deployment_selector,
    endpoint_name,
    endpoint_url,
    render_autoscaler,
    render_endpoint,
)
from servings.controller.tenancy import TenantNamespaces

logger = logging.getLogger(__name__)

#: Lines of a crashed container's previous run read to find its reason (one read per restart).
CRASH_LOG_LINES = 200
#: Crash log tails remembered (by pod, container and restart count) before the memo starts over.
CRASH_LOGS_KEPT = 256


class TemplateCache:
    """Serving templates read from their ConfigMaps, cached briefly and dropped when one changes."""

    def __init__(self, api_client: Any, namespace: str, ttl: float = 30.0) -> None:
        self._api_client = api_client
        self.namespace = namespace
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, ServingTemplate | None]] = {}

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> ServingTemplate | None:
        """The serving template ``name``, or None when no labelled ConfigMap of that name exists."""
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(name)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            configmap = kube.call_json(
                self._api_client, "CoreV1Api", "read_namespaced_config_map", name, self.namespace
            )
        except NotFound:
            template = None
        else:
            labels = configmap.get("metadata", {}).get("labels") or {}
            is_template = labels.get(TEMPLATE_LABEL) == "true"
            template = ServingTemplate(name, dict(configmap.get("data") or {})) if is_template else None
        with self._lock:
            self._entries[name] = (now, template)
        return template


def _child(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _digests(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Each rendered child's digest, by kind and name: a change re-sends only the children it touched."""
    return {_child(obj): hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest() for obj in objects}


class Reconciler:
    def __init__(
        self,
        api_client: Any,
        *,
        platform: Platform,
        templates: TemplateCache,
        namespaces: TenantNamespaces,
        reapply_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_client = api_client
        self.platform = platform
        self.templates = templates
        self.namespaces = namespaces
        self._reapply_seconds = reapply_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (each child's digest as last applied, when all were last applied, the Deployment
        # generation): an unchanged render is not re-sent on every status event or resync, and a
        # change (a scale: the Deployment alone) re-sends only the children whose render changed.
        self._applied: dict[str, tuple[dict[str, str], float, int | None]] = {}
        self.applies = 0
        # (namespace, pod, container, restart count, whether the previous run's log) -> the failed run's
        # log tail: read once per crash.
        self._crash_logs: dict[tuple[str, str, str, int, bool], str | None] = {}

    def _call(self, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return kube.call_json(self._api_client, api, method, *args, **kwargs)

    def _write_status(self, cr: dict[str, Any], status: dict[str, Any]) -> bool:
        if cr.get("status") == status:
            return False
        metadata = cr["metadata"]
        self._call(
            "CustomObjectsApi",
            "patch_namespaced_custom_object_status",
            GROUP,
            "v1",
            metadata["namespace"],
            PLURAL,
            metadata["name"],
            {"status": status},
            _content_type="application/merge-patch+json",
        )
        return True

    def _recorded(self, key: str) -> tuple[dict[str, str], float, int | None] | None:
        """What our last apply of the endpoint sent (each child's digest, when, the Deployment generation
        it produced), if it is still good to trust.

        None means "apply everything now": nothing applied yet (or since a restart), or ``reapply_seconds``
        passed since everything was last sent (which undoes manual edits of the ConfigMap, Service and
        Ingress). A Deployment whose generation moved since our apply was edited by someone else, which
        the caller checks.
        """
        with self._lock:
            last = self._applied.get(key)
        if last is None or self._clock() - last[1] > self._reapply_seconds:
            return None
        return last

    def _remove_autoscaler(self, cr: dict[str, Any]) -> None:
        """Delete the endpoint's HPA if there is one (autoscaling was removed). Only on an apply (a
        changed render, or every ``reapply_seconds``), so an endpoint never autoscaled costs one
        delete an hour, not one per event."""
        try:
            self._call(
                "AutoscalingV2Api",
                "delete_namespaced_horizontal_pod_autoscaler",
                autoscaler_name(cr),
                cr["metadata"]["namespace"],
            )
        except NotFound:
            return
        logger.info("endpoint %s/%s: autoscaling removed, HPA deleted", cr["metadata"]["namespace"], endpoint_name(cr))

    def _autoscaler_status(self, cr: dict[str, Any]) -> dict[str, Any] | None:
        """The HPA's status as the endpoint shows it (status.autoscaler), or None while it has none.

        Tenants read the CR, not the HPA (their Role holds no autoscaling rights), so the
        controller copies what they need: current and desired replicas, the CPU utilization seen,
        when it last scaled, and its conditions (its last decision and why).
        """
        try:
            hpa = self._call(
                "AutoscalingV2Api",
                "read_namespaced_horizontal_pod_autoscaler",
                autoscaler_name(cr),
                cr["metadata"]["namespace"],
            )
        except NotFound:
            return None
        if not (hpa.get("status") or {}).get("conditions"):
            return None  # made, not yet evaluated by the HPA controller: nothing to show
        return status_rules.autoscaler_status(hpa)

    def _log_tail(self, namespace: str) -> status_rules.LogTail:
        """Reads the log tail of a crashed container's failed run (once per restart), None if unavailable.

        The failed run is the container's previous one once the kubelet has restarted it, and the
        container itself while it has just failed for the first time (restart count 0, no previous).

        Why the log and not only the termination message: the kubelet keeps 2 KiB of the tail there,
        and a runtime that prints long tables on its way out (Triton) pushes its reason out of them.
        """

        def read(pod: str, container: str, restarts: int, previous: bool) -> str | None:
            key = (namespace, pod, container, restarts, previous)
            with self._lock:
                if key in self._crash_logs:
                    return self._crash_logs[key]
            try:
                core = kube.api_of(self._api_client, "CoreV1Api")
                text: str | None = str(
                    core.read_namespaced_pod_log(
                        pod, namespace, container=container, previous=previous, tail_lines=CRASH_LOG_LINES
                    )
                )
            except ImmError as exc:  # no log on this node (kwok), the pod is gone, no right: the message will do
                logger.debug("no log of %s/%s %s: %s", namespace, pod, container, exc)
                text = None
            with self._lock:
                if len(self._crash_logs) >= CRASH_LOGS_KEPT:
                    self._crash_logs.clear()
                self._crash_logs[key] = text
            return text

        return read

    def _apply(
        self,
        cr: dict[str, Any],
        objects: list[dict[str, Any]],
        url: str,
        *,
        remove_autoscaler: bool,
    ) -> dict[str, Any] | None:
        """Server-side apply ``objects`` in order (the HPA last), after deleting the endpoint's HPA when
        ``remove_autoscaler``; returns the applied Deployment (None when it was not among them)."""
        deployment: dict[str, Any] | None = None
        if remove_autoscaler:
            self._remove_autoscaler(cr)
        for obj in objects:
            try:
                applied = kube.server_side_apply(self._api_client, obj, FIELD_MANAGER)
            except (BadRequest, Forbidden, NotFound) as exc:
                message = f"{obj['kind']} {obj['metadata']['name']}: {exc.description or exc.title}"
                self._write_status(cr, status_rules.failure_status(cr, status_rules.APPLY_FAILED, message, url=url))
                raise
            self.applies += 1
            if obj["kind"] == "Deployment":
                deployment = applied
        return deployment

    def _converge(
        self, cr: dict[str, Any], key: str, objects: list[dict[str, Any]], url: str, has_autoscaler: bool
    ) -> dict[str, Any]:
        """Send what the last apply did not (everything after a restart or ``reapply_seconds``, after a
        drift of the Deployment, else the children whose render changed) and return the Deployment."""
        digests = _digests(objects)
        recorded = self._recorded(key)
        deployment: dict[str, Any] | None = None
        everything = recorded is None
        changed = objects
        if recorded is not None:
            previous, _, generation = recorded
            changed = [obj for obj in objects if previous.get(_child(obj)) != digests[_child(obj)]]
            if not any(obj["kind"] == "Deployment" for obj in changed):
                rendered = next(obj for obj in objects if obj["kind"] == "Deployment")["metadata"]
                try:
                    deployment = self._call(
                        "AppsV1Api", "read_namespaced_deployment", rendered["name"], rendered["namespace"]
                    )
                except NotFound:
                    deployment = None  # deleted behind our back: apply everything again
                if deployment is None or deployment.get("metadata", {}).get("generation") != generation:
                    deployment, everything, changed = None, True, objects  # drift: undo it, all of it
        had_autoscaler = recorded is not None and any(
            child.startswith("HorizontalPodAutoscaler/") for child in recorded[0]
        )
        # Autoscaling removed: its HPA goes (also checked on every full apply, after a restart).
        remove_autoscaler = not has_autoscaler and (everything or had_autoscaler)
        if changed or remove_autoscaler:
            applied = self._apply(cr, changed, url, remove_autoscaler=remove_autoscaler)
            deployment = applied if applied is not None else deployment
        assert deployment is not None  # every render holds a Deployment: applied or read above
        # A partial apply keeps the time of the last full one: manual edits of the children it did not
        # send are still undone ``reapply_seconds`` after that.
        when = recorded[1] if recorded is not None and not everything else self._clock()
        with self._lock:
            self._applied[key] = (digests, when, deployment.get("metadata", {}).get("generation"))
        return deployment

    def reconcile(self, namespace: str, name: str) -> str:
        """Converge one endpoint; returns its state. Raises ImmError when a retry may help."""
        key = f"{namespace}/{name}"
        try:
            cr = self._call("CustomObjectsApi", "get_namespaced_custom_object", GROUP, "v1", namespace, PLURAL, name)
        except NotFound:
            with self._lock:
                self._applied.pop(key, None)
            return "Deleted"  # the children go with it, through their owner references
        if cr["metadata"].get("deletionTimestamp"):
            return "Deleting"
        url = endpoint_url(cr, self.platform)
        tenant = self.namespaces.is_tenant(namespace)
        if tenant is None:
            # Not a verdict yet: the namespace watch has not listed. Retried with backoff, nothing written.
            raise UpstreamUnavailable(
                KUBERNETES, "the tenant namespaces are not listed yet", code="namespaces_not_synced"
            )
        if not tenant:
            # Only tenant namespaces get objects rendered with the controller's rights (servings/controller/tenancy.py).
            message = (
                f"namespace {namespace} is not a tenant namespace (no label {self.namespaces.label_selector}); "
                "the controller creates nothing here"
            )
            self._write_status(cr, status_rules.failure_status(cr, status_rules.NOT_A_TENANT_NAMESPACE, message))
            return status_rules.DEGRADED
        serving = str(cr.get("spec", {}).get("servingName") or "")
        template = self.templates.get(serving) if serving else None
        if template is None:
            message = f"serving template {serving!r} does not exist in namespace {self.templates.namespace}"
            self._write_status(cr, status_rules.failure_status(cr, status_rules.SERVING_NOT_FOUND, message, url=url))
            return status_rules.DEGRADED
        try:
            objects = render_endpoint(cr, template, self.platform, store_key=self.namespaces.store_key(namespace))
        except TemplateForbidden as exc:
            message = f"serving template {serving!r} is refused: {exc}"
            self._write_status(cr, status_rules.failure_status(cr, status_rules.TEMPLATE_FORBIDDEN, message, url=url))
            return status_rules.DEGRADED
        except RenderError as exc:
            message = f"serving template {serving!r} failed to render: {exc}"
            self._write_status(cr, status_rules.failure_status(cr, status_rules.RENDER_FAILED, message, url=url))
            return status_rules.DEGRADED

        autoscaler = render_autoscaler(cr)
        if autoscaler is not None:
            objects.append(autoscaler)
        rendered_deployment = next(o for o in objects if o["kind"] == "Deployment")
        deployment = self._converge(cr, key, objects, url, autoscaler is not None)

        selector = f"{ENDPOINT_LABEL}={endpoint_name(cr)}"
        pods: list[dict[str, Any]] = []
        replicasets: list[dict[str, Any]] = []
        draft = status_rules.endpoint_status(
            cr, deployment, pods=(), replicasets=(), url=url, selector=deployment_selector(rendered_deployment)
        )
        if draft["state"] != status_rules.READY:
            # Only an endpoint that is not ready costs the extra reads that explain why.
            pods = self._call("CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector)["items"]
            replicasets = self._call("AppsV1Api", "list_namespaced_replica_set", namespace, label_selector=selector)[
                "items"
            ]
        status = status_rules.endpoint_status(
            cr,
            deployment,
            pods=pods,
            replicasets=replicasets,
            url=url,
            selector=deployment_selector(rendered_deployment),
            log_tail=self._log_tail(namespace),
        )
        mirrored = self._autoscaler_status(cr) if autoscaler is not None else None
        if mirrored is not None:
            status["autoscaler"] = mirrored
        elif "autoscaler" in (cr.get("status") or {}):
            status["autoscaler"] = None  # a merge patch keeps what it does not name: remove it by name
        self._write_status(cr, status)
        return str(status["state"])
