"""Which namespaces are tenants, as the controller's own watch of namespaces shows them.

Why: InferenceEndpoints can be created in any namespace by anyone allowed to create them there, and
the controller renders them with its OWN rights. Acting only in tenant namespaces (labelled
``created_by=<PLATFORM_ADMIN_LABEL>`` by provisioning; they also enforce the restricted Pod Security
Standards profile) keeps it from creating Deployments in ``default``, ``kube-system`` or any other
namespace a tenant does not own. The answer comes from a watch (list, then events), so a reconcile
costs no extra request; until the first list has arrived the answer is "not known yet", which the
reconciler turns into a retry rather than a wrong verdict.

The same watch carries each tenant's store-key generation (an annotation the key rotation writes on the
namespace, tenants.rotation): the controller puts it on every pod template of the tenant, so a new key
rolls the tenant's pods, and a changed generation requeues the tenant's endpoints like a changed verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class TenantNamespaces:
    """A thread-safe set of tenant namespace names, fed by namespace watch events."""

    def __init__(
        self,
        is_tenant: Callable[[Mapping[str, str]], bool],
        label_selector: str,
        store_key: Callable[[Mapping[str, str]], str] = lambda annotations: "",
    ) -> None:
        #: Decides from a namespace's labels (tenants.selectors owns the rule).
        self._is_tenant = is_tenant
        #: What the watch asks the API server for: only tenants, fewer events.
        self.label_selector = label_selector
        #: The tenant's store-key generation from a namespace's annotations ("" when never rotated).
        self._store_key = store_key
        self._lock = threading.Lock()
        #: tenant name -> its store-key generation
        self._tenants: dict[str, str] = {}
        self.synced = threading.Event()

    def _entry(self, obj: Mapping[str, Any]) -> tuple[str, str | None]:
        """(name, store-key generation), the generation None when the namespace is not a tenant."""
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name") or "")
        if not name or not self._is_tenant(metadata.get("labels") or {}):
            return name, None
        return name, self._store_key(metadata.get("annotations") or {})

    def replace(self, items: Iterable[Mapping[str, Any]]) -> set[str]:
        """A full list: the map becomes exactly its tenants. Returns the names whose verdict or generation changed."""
        listed = {name: key for name, key in map(self._entry, items) if key is not None}
        with self._lock:
            names = listed.keys() | self._tenants.keys()
            changed = {name for name in names if listed.get(name) != self._tenants.get(name)}
            self._tenants = listed
        self.synced.set()
        return changed

    def apply(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """One watch event; True when the namespace's verdict or store-key generation changed (its
        endpoints need a new look).

        The labels are checked here too: a namespace that loses its label leaves a label-selected
        watch as DELETED, but nothing is lost by not relying on that.
        """
        name, key = self._entry(obj)
        if kind == "DELETED":
            key = None
        with self._lock:
            before = self._tenants.get(name)
            if key is None:
                self._tenants.pop(name, None)
            else:
                self._tenants[name] = key
        return before != key

    def is_tenant(self, namespace: str) -> bool | None:
        """True or False once the first list arrived; None before (the caller should retry)."""
        if not self.synced.is_set():
            return None
        with self._lock:
            return namespace in self._tenants

    def store_key(self, namespace: str) -> str:
        """The tenant's store-key generation ("" when never rotated, or not a tenant)."""
        with self._lock:
            return self._tenants.get(namespace, "")
