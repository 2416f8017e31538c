"""A fake of the kube.py chokepoint's namespace reads, shared by the apps' unit tests.

The tenant listing (tenants.selectors.tenant_page) reads namespaces as raw JSON through
``kube.call_json``, while other code reads them as SDK-like objects through ``kube.api``/``service_api``.
A test cluster that answers ``list_namespace`` with objects gets the raw-JSON answer from the same items.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferencemgmt import kube


class NamespaceJson:
    """Mix into a fake cluster that has ``list_namespace(label_selector)``: adds the raw-JSON page."""

    def list_namespace(self, label_selector: str) -> Any:
        raise NotImplementedError

    def call_json(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One page holding every namespace ``list_namespace`` gives, as the API server's JSON."""
        assert (api, method) == ("CoreV1Api", "list_namespace")
        items = [
            {
                "metadata": {
                    "name": ns.metadata.name,
                    "labels": ns.metadata.labels,
                    "annotations": ns.metadata.annotations,
                }
            }
            for ns in self.list_namespace(kwargs.get("label_selector", "")).items
        ]
        return {"items": items, "metadata": {}}


def patch_kube(monkeypatch: pytest.MonkeyPatch, fake: NamespaceJson) -> None:
    """Every way the product reaches Kubernetes answers from ``fake`` (users and the platform alike)."""
    monkeypatch.setattr(kube, "service_api", lambda name: fake)
    monkeypatch.setattr(kube, "api", lambda identity, name: fake)
    monkeypatch.setattr(kube, "call_json", fake.call_json)
    monkeypatch.setattr(kube, "service_api_client", lambda: "platform")
    monkeypatch.setattr(kube, "api_client_for", lambda identity: identity.username)
