"""A fake of the kube.py chokepoint's namespace reads, shared by the apps' unit tests.

The tenant listing (tenants.selectors.tenant_page) reads namespaces as raw JSON through
``kube.call_json``, other code through ``kube.platform_namespaces``/``platform_read_namespace``; calls
made as a user go to kube.py's typed functions, which the fake answers when it has them.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferencemgmt import kube


class NamespaceJson:
    """Mix into a fake cluster that has ``platform_namespaces(label_selector)``: adds the raw-JSON page."""

    def platform_namespaces(self, *, label_selector: str = "") -> dict[str, Any]:
        raise NotImplementedError

    def call_json(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One page holding every namespace ``platform_namespaces`` gives, as the API server's JSON."""
        assert (api, method) == ("CoreV1Api", "list_namespace")
        return {
            "items": self.platform_namespaces(label_selector=kwargs.get("label_selector", ""))["items"],
            "metadata": {},
        }


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
    monkeypatch.setattr(kube, "call_json", fake.call_json)
    monkeypatch.setattr(kube, "service_api_client", lambda: "platform")
    monkeypatch.setattr(kube, "api_client_for", lambda identity: identity.username)
    for typed in ("platform_namespaces", "platform_read_namespace", *ROBOT_FUNCTIONS):
        if hasattr(fake, typed):
            monkeypatch.setattr(kube, typed, getattr(fake, typed))
