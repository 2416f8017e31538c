"""Leader election on a coordination.k8s.io/v1 Lease, so that two controller processes never act at once.

The rules follow client-go's leaderelection, for the same reasons:

- A candidate never compares its clock with the ``renewTime`` another process wrote (clocks
  differ between machines). It remembers when it last SAW the lease record change, and takes the
  lease only after the record stayed unchanged for a whole ``leaseDurationSeconds``.
- Every write carries the ``resourceVersion`` it read, so two candidates racing for an expired lease
  cannot both win: the API server rejects the second write (409).
- A leader that could not renew for ``renew_deadline`` seconds (shorter than the lease) stops
  acting before anyone else may start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from inferencemgmt import kube
from inferencemgmt.errors import Conflict, ImmError, NotFound

logger = logging.getLogger(__name__)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_seconds:
            raise ValueError("need retry_period < renew_deadline < lease_seconds")
        self._api_client = api_client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._last_renew = float("-inf")
        self.leading = threading.Event()

    # -- one attempt ----------------------------------------------------------------------------------
    def _lease_body(self, current: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time()
        spec = (current or {}).get("spec", {})
        transitions = int(spec.get("leaseTransitions") or 0)
        taking_over = spec.get("holderIdentity") != self.identity
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": now if taking_over else spec.get("acquireTime", now),
                "renewTime": now,
                "leaseTransitions": transitions + 1 if taking_over and current is not None else transitions,
            },
        }
        if current is not None:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return body

    def try_acquire_or_renew(self) -> bool:
        """One round: True if this process holds the lease afterwards."""
        now = self._clock()
        try:
            current: dict[str, Any] | None = kube.call_json(
                self._api_client, "CoordinationV1Api", "read_namespaced_lease", self.name, self.namespace
            )
        except NotFound:
            current = None
        if current is None:
            try:
                kube.call_json(
                    self._api_client,
                    "CoordinationV1Api",
                    "create_namespaced_lease",
                    self.namespace,
                    self._lease_body(None),
                )
            except Conflict:
                return False
            self._last_renew = now
            return True
        spec = current.get("spec", {})
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed = record
            self._observed_at = now
        duration = int(spec.get("leaseDurationSeconds") or self.lease_seconds)
        if holder and holder != self.identity and now - self._observed_at < duration:
            return False
        try:
            kube.call_json(
                self._api_client,
                "CoordinationV1Api",
                "replace_namespaced_lease",
                self.name,
                self.namespace,
                self._lease_body(current),
            )
        except Conflict:
            return False
        self._last_renew = now
        return True

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Keep trying (as a candidate) or renewing (as the leader) until ``stop`` is set."""
        while not stop.is_set():
            try:
                held = self.try_acquire_or_renew()
            except ImmError as exc:
                logger.warning("leader election: %s", exc)
                held = False
            except Exception:
                # This thread must outlive any defect: if it died, a leader would never notice it lost the lease.
                logger.exception("leader election: unexpected failure")
                held = False
            if held and not self.leading.is_set():
                logger.info("leader election: %s now leads (lease %s/%s)", self.identity, self.namespace, self.name)
                self.leading.set()
            elif not held and self.leading.is_set() and self._clock() - self._last_renew > self.renew_deadline:
                logger.error("leader election: %s lost the lease %s/%s", self.identity, self.namespace, self.name)
                self.leading.clear()
            stop.wait(self.retry_period)

    def release(self) -> None:
        """On a clean shutdown, hand the lease back so that a successor need not wait for it to expire."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            current = kube.call_json(
                self._api_client, "CoordinationV1Api", "read_namespaced_lease", self.name, self.namespace
            )
            if current.get("spec", {}).get("holderIdentity") != self.identity:
                return
            body = self._lease_body(current)
            body["spec"].update({"holderIdentity": "", "leaseDurationSeconds": 1})
            kube.call_json(
                self._api_client, "CoordinationV1Api", "replace_namespaced_lease", self.name, self.namespace, body
            )
        except ImmError as exc:
            logger.warning("leader election: could not release the lease: %s", exc)
