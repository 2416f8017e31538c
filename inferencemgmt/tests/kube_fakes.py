"""A fake of the kube.py chokepoint's namespace reads, shared by the apps' unit tests.

The tenant listing (tenants.selectors.tenant_page) reads namespaces as raw JSON through
``kube.call_json``, while other code reads them as SDK-like objects through ``kube.service_api``; calls made as a user
go to kube.py's typed functions, which the fake answers when it has them.
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


#: kube.py's typed functions a robot-routes fake (tenants.tests.test_robot_routes) answers as the caller.
ROBOT_FUNCTIONS = (
    "create_service_account",
    "read_service_account",
    "service_accounts",
    "delete_service_account",
    "create_service_account_token",
    "create_role_binding",
    "delete_role_binding",
)


def patch_kube(monkeypatch: pytest.MonkeyPatch, fake: NamespaceJson) -> None:
    """Every way the product reaches Kubernetes answers from ``fake`` (users and the platform alike)."""
    monkeypatch.setattr(kube, "service_api", lambda name: fake)
    for typed in ROBOT_FUNCTIONS:
        if hasattr(fake, typed):
            monkeypatch.setattr(kube, typed, getattr(fake, typed))
    monkeypatch.setattr(kube, "call_json", fake.call_json)
    monkeypatch.setattr(kube, "service_api_client", lambda: "platform")
    monkeypatch.setattr(kube, "api_client_for", lambda identity: identity.username)
