"""Which namespaces are tenants, as the controller's own watch of namespaces shows them.

Why: InferenceEndpoints can be created in any namespace by anyone allowed to create them there, and
the controller renders them with its OWN rights. Acting only in tenant namespaces (labelled
``created_by=<PLATFORM_ADMIN_LABEL>`` by provisioning; they also enforce the restricted Pod Security
Standards profile) keeps it from creating Deployments in ``default``, ``kube-system`` or any other
namespace a tenant does not own. The answer comes from a watch (list, then events), so a reconcile
costs no extra request; until the first list has arrived the answer is "not known yet", which the
reconciler turns into a retry rather than a wrong verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class TenantNamespaces:
    """A thread-safe set of tenant namespace names, fed by namespace watch events."""

    def __init__(self, is_tenant: Callable[[Mapping[str, str]], bool], label_selector: str) -> None:
        #: Decides from a namespace's labels (tenants.selectors owns the rule).
        self._is_tenant = is_tenant
        #: What the watch asks the API server for: only tenants, fewer events.
        self.label_selector = label_selector
        self._lock = threading.Lock()
        self._tenants: set[str] = set()
        self.synced = threading.Event()

    @staticmethod
    def _name_labels(obj: Mapping[str, Any]) -> tuple[str, Mapping[str, str]]:
        metadata = obj.get("metadata") or {}
        return str(metadata.get("name") or ""), metadata.get("labels") or {}

    def replace(self, items: Iterable[Mapping[str, Any]]) -> set[str]:
        """A full list: the set becomes exactly its tenants. Returns the names whose verdict changed."""
        listed = {name for name, labels in map(self._name_labels, items) if name and self._is_tenant(labels)}
        with self._lock:
            changed = listed ^ self._tenants
            self._tenants = listed
        self.synced.set()
        return changed

    def apply(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """One watch event; True when the namespace's verdict changed (its endpoints need a new look).

        The labels are checked here too: a namespace that loses its label leaves a label-selected
        watch as DELETED, but nothing is lost by not relying on that.
        """
        name, labels = self._name_labels(obj)
        tenant = kind != "DELETED" and self._is_tenant(labels)
        with self._lock:
            before = name in self._tenants
            if tenant:
                self._tenants.add(name)
            else:
                self._tenants.discard(name)
        return before != tenant

    def is_tenant(self, namespace: str) -> bool | None:
        """True or False once the first list arrived; None before (the caller should retry)."""
        if not self.synced.is_set():
            return None
        with self._lock:
            return namespace in self._tenants
