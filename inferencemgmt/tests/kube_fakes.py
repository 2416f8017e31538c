"""A fake of the kube.py chokepoint's namespace reads, shared by the apps' unit tests.

The tenant listing (tenants.selectors.tenant_page) reads namespaces a page at a time through
``kube.namespaces`` (an admin, as themselves) or ``kube.platform_namespaces(limit=...)`` (everyone else,
as the management API); other code reads ``kube.platform_namespaces``/``platform_read_namespace`` whole.
Calls made as a user go to kube.py's typed functions, which the fake answers when it has them.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity


class NamespaceJson:
    """Mix into a fake cluster that has ``platform_namespaces(label_selector)``: adds the paged reads."""

    def platform_namespaces(self, *, label_selector: str = "") -> dict[str, Any]:
        raise NotImplementedError

    def namespace_page(
        self, *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        """One page holding every namespace ``platform_namespaces`` gives, as the API server's JSON."""
        assert continue_token is None  # the one page has no next
        return {"items": self.platform_namespaces(label_selector=label_selector)["items"], "metadata": {}}

    def namespaces(
        self,
        identity: Identity,
        *,
        label_selector: str = "",
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """An admin's own listing: the same namespaces (the fake cluster's RBAC lets an admin list them)."""
        return self.namespace_page(label_selector=label_selector, limit=limit, continue_token=continue_token)


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
    monkeypatch.setattr(kube, "service_api_client", lambda: "platform")
    monkeypatch.setattr(kube, "api_client_for", lambda identity: identity.username)
    for typed in ("platform_read_namespace", *ROBOT_FUNCTIONS):
        if hasattr(fake, typed):
            monkeypatch.setattr(kube, typed, getattr(fake, typed))
    monkeypatch.setattr(kube, "platform_namespaces", fake.namespace_page)
    monkeypatch.setattr(kube, "namespaces", fake.namespaces)
