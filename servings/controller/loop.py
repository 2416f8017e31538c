"""The controller process: leader election, watches that feed a work queue, workers, periodic resync.

Only the leader watches and acts. A candidate does nothing but try for the lease, so two processes
never apply at once. A leader that loses the lease stops at once and returns non-zero: the process
then exits and its supervisor starts it again as a fresh candidate, which is simpler and safer than
winding every thread down in place.

Watches (list, then watch from the list's resourceVersion; list again on 410):
- InferenceEndpoints in all namespaces: the keys to reconcile;
- Deployments and pods carrying the controller's ownership label: their status drives the CR's;
- serving-template ConfigMaps: a changed template re-renders every endpoint that uses it;
- tenant namespaces (by their label): the reconciler acts only in those, and a namespace that becomes
  or stops being a tenant has its endpoints looked at again.
Every ``resync_seconds`` every known endpoint is queued again, which catches anything a watch missed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from inferencemgmt import kube, metrics
from inferencemgmt.errors import ImmError
from inferencemgmt.resources import ENDPOINT_LABEL, GROUP, PLURAL
from servings.catalogue import TEMPLATE_LABEL_SELECTOR
from servings.controller.leader import LeaderElector
from servings.controller.reconciler import Reconciler
from servings.controller.rendering import MANAGED_SELECTOR
from servings.controller.workqueue import WorkQueue

logger = logging.getLogger(__name__)

WATCH_TIMEOUT_SECONDS = 240

Handler = Callable[[str, dict[str, Any]], None]
ListHandler = Callable[[list[dict[str, Any]]], None]
#: How long the leader waits for the first namespace list before starting its workers (they retry anyway).
NAMESPACE_SYNC_SECONDS = 30.0


class Controller:
    def __init__(
        self,
        api_client: Any,
        *,
        reconciler: Reconciler,
        elector: LeaderElector,
        templates_namespace: str,
        workers: int = 2,
        resync_seconds: float = 300.0,
    ) -> None:
        self._api_client = api_client
        self.reconciler = reconciler
        self.elector = elector
        self.templates_namespace = templates_namespace
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.queue = WorkQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._servings: dict[str, str] = {}  # endpoint key -> servingName, to requeue on a template change

    # -- event handlers ---------------------------------------------------------------------------------
    def _on_endpoint(self, kind: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        with self._lock:
            if kind == "DELETED":
                self._servings.pop(key, None)
            else:
                self._servings[key] = str(obj.get("spec", {}).get("servingName") or "")
        if kind != "DELETED":
            self.queue.add(key)

    def _on_child(self, kind: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        name = (metadata.get("labels") or {}).get(ENDPOINT_LABEL)
        if name:
            self.queue.add(f"{metadata.get('namespace')}/{name}")

    def _requeue_namespaces(self, names: set[str]) -> None:
        """A tenant namespace's verdict or store-key generation changed: its endpoints go first (a key
        rotation waits for them to roll)."""
        with self._lock:
            keys = [key for key in self._servings if key.split("/", 1)[0] in names]
        for key in keys:
            self.queue.add(key, urgent=True)

    def _on_namespace(self, kind: str, obj: dict[str, Any]) -> None:
        if self.reconciler.namespaces.apply(kind, obj):
            self._requeue_namespaces({str(obj.get("metadata", {}).get("name"))})

    def _on_namespace_list(self, items: list[dict[str, Any]]) -> None:
        self._requeue_namespaces(self.reconciler.namespaces.replace(items))

    def _on_template(self, kind: str, obj: dict[str, Any]) -> None:
        serving = obj.get("metadata", {}).get("name", "")
        self.reconciler.templates.forget(serving)
        with self._lock:
            users = [key for key, used in self._servings.items() if used == serving]
        for key in users:
            self.queue.add(key)

    # -- threads ----------------------------------------------------------------------------------------
    def _watch_forever(
        self,
        label: str,
        api: str,
        method: str,
        args: tuple[Any, ...],
        handler: Handler,
        on_list: ListHandler | None = None,
        **kwargs: Any,
    ) -> None:
        """List, then watch from the list's version; ``on_list`` (if given) takes a whole list at once,
        so a cache can drop what vanished while it was not watching."""
        version: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    listing = kube.call_json(self._api_client, api, method, *args, **kwargs)
                    version = str(listing["metadata"]["resourceVersion"])
                    if on_list is not None:
                        on_list(list(listing.get("items") or []))
                    else:
                        for item in listing.get("items") or []:
                            handler("ADDED", item)
                for kind, obj in kube.watch_json(
                    self._api_client,
                    api,
                    method,
                    *args,
                    resource_version=version,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    **kwargs,
                ):
                    version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        handler(kind, obj)
                    if self._stop.is_set():
                        return
                failures = 0
            except kube.WatchExpired:
                logger.info("watch %s: resourceVersion expired, listing again", label)
                version = None
            except ImmError as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                logger.warning("watch %s failed (%s); again in %.1fs", label, exc, delay)
                self._stop.wait(delay)
            except Exception:
                # A watch thread that died would leave the controller blind: log, list again, go on.
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                logger.exception("watch %s crashed; listing again in %.1fs", label, delay)
                version = None
                self._stop.wait(delay)

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                if not self.elector.leading.is_set():
                    continue  # never act without the lease, even for a key already taken
                namespace, name = key.split("/", 1)
                started = time.monotonic()
                result = "crashed"
                try:
                    state = self.reconciler.reconcile(namespace, name)
                    result = state if state in metrics.RECONCILE_RESULTS else "other"
                except ImmError:
                    result = "error"
                    raise
                finally:
                    metrics.RECONCILES.labels(result).inc()
                    metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
                self.queue.forget(key)
                logger.info("reconciled %s: %s in %.0f ms", key, state, (time.monotonic() - started) * 1000)
            except ImmError as exc:
                delay = self.queue.retry(key)
                metrics.WORKQUEUE_RETRIES.inc()
                logger.warning("reconcile %s failed: %s; retry in %.1fs", key, exc, delay)
            except Exception:
                # A defect must not kill the worker (and with it the controller): log, back off, go on.
                delay = self.queue.retry(key)
                metrics.WORKQUEUE_RETRIES.inc()
                logger.exception("reconcile %s crashed; retry in %.1fs", key, delay)
            finally:
                self.queue.done(key)
                metrics.WORKQUEUE_DEPTH.set(len(self.queue))

    def observe(self) -> None:
        """Set the gauges that describe this controller now: leader or not, keys waiting."""
        metrics.LEADER.set(1 if self.elector.leading.is_set() else 0)
        metrics.WORKQUEUE_DEPTH.set(len(self.queue))

    def _observe_forever(self) -> None:
        self.observe()
        while not self._stop.wait(1.0):
            self.observe()
        metrics.LEADER.set(0)

    def _resync(self) -> None:
        while not self._stop.wait(self.resync_seconds):
            with self._lock:
                keys = list(self._servings)
            for key in keys:
                self.queue.add(key)
            logger.info("resync: %d endpoints queued", len(keys))

    def _start(self, target: Callable[..., None], *args: Any, **kwargs: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self.queue.shut_down()

    def run(self) -> int:
        """Run until ``stop()`` (returns 0) or until the lease is lost (returns 1)."""
        self._start(self.elector.run, self._stop)
        self._start(self._observe_forever)
        logger.info(
            "controller %s: waiting for the lease %s/%s",
            self.elector.identity,
            self.elector.namespace,
            self.elector.name,
        )
        while not self.elector.leading.wait(1.0):
            if self._stop.is_set():
                return 0
        logger.info("controller %s: leading; starting watches and %d workers", self.elector.identity, self.workers)
        namespaces = self.reconciler.namespaces
        self._start(
            self._watch_forever,
            "tenant namespaces",
            "CoreV1Api",
            "list_namespace",
            (),
            self._on_namespace,
            self._on_namespace_list,
            label_selector=namespaces.label_selector,
        )
        if not namespaces.synced.wait(NAMESPACE_SYNC_SECONDS):
            logger.warning("tenant namespaces not listed after %.0fs; endpoints wait for them", NAMESPACE_SYNC_SECONDS)
        self._start(
            self._watch_forever,
            "endpoints",
            "CustomObjectsApi",
            "list_cluster_custom_object",
            (GROUP, "v1", PLURAL),
            self._on_endpoint,
        )
        for label, api, method in (
            ("deployments", "AppsV1Api", "list_deployment_for_all_namespaces"),
            # An HPA's status (its decisions) is copied into its endpoint's status.autoscaler.
            ("autoscalers", "AutoscalingV2Api", "list_horizontal_pod_autoscaler_for_all_namespaces"),
        ):
            self._start(self._watch_forever, label, api, method, (), self._on_child, label_selector=MANAGED_SELECTOR)
        self._start(
            self._watch_forever,
            "pods",
            "CoreV1Api",
            "list_pod_for_all_namespaces",
            (),
            self._on_child,
            label_selector=MANAGED_SELECTOR,
        )
        self._start(
            self._watch_forever,
            "serving templates",
            "CoreV1Api",
            "list_namespaced_config_map",
            (self.templates_namespace,),
            self._on_template,
            label_selector=TEMPLATE_LABEL_SELECTOR,
        )
        for _ in range(self.workers):
            self._start(self._work)
        self._start(self._resync)
        while not self._stop.wait(0.5):
            if not self.elector.leading.is_set():
                logger.error("controller %s: lease lost; stopping", self.elector.identity)
                self.stop()
                return 1
        self.elector.release()
        return 0
