"""A generated Kubernetes API acting as a user through kube.py's own client, for live RBAC probes.

The product calls kube.py's typed functions; the confinement tests probe requests the product never
makes (secrets in kube-system, bindings to outsiders), so they build the generated API on the very
client kube.py would use for that user (same impersonation headers) and keep kube.py's error
translation, so a refusal is the product's ``Forbidden``.
"""

from __future__ import annotations

from typing import Any

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity


class _Translated:
    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with kube.kube_errors():
                return method(*args, **kwargs)

        return call


def api_as(identity: Identity, api_class: type[Any]) -> Any:
    """``api_class`` (``client.CoreV1Api``, ...) on kube.py's client for ``identity``, errors translated."""
    return _Translated(api_class(kube.api_client_for(identity)))
