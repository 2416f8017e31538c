"""A member's tenant pages: the management API scans the tenant namespaces as raw JSON in chunks and
keeps the caller's (kube faked; the live contract is tests/foundation/test_paging_contract.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferencemgmt import kube, paging
from inferencemgmt.auth.identity import Identity
from tenants import manifests, selectors

pytestmark = pytest.mark.unit

ALICE = Identity("alice@example.com", ("team-a",))


class Namespaces:
    """Tenant namespaces by name; every tenth is team-a's; one team-a tenant is terminating."""

    def __init__(self, count: int) -> None:
        self.items = []
        for index in range(count):
            scope = ["team-a"] if index % 10 == 0 else ["team-z"]
            self.items.append(
                {
                    "metadata": {
                        "name": f"t{index:04d}",
                        "annotations": {manifests.SCOPE_ANNOTATION: json.dumps(scope)},
                    },
                    "status": {"phase": "Terminating" if index == 30 else "Active"},
                }
            )
        self.limits: list[int] = []

    # kube.platform_namespaces, as the management API itself
    def platform_namespaces(
        self, *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        assert label_selector
        assert limit is not None
        start = int(continue_token or 0)
        self.limits.append(limit)
        end = start + limit
        return {
            "items": self.items[start:end],
            "metadata": {"continue": str(end) if end < len(self.items) else ""},
        }


def test_a_members_pages_hold_only_their_tenants_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Namespaces(1000)
    monkeypatch.setattr(kube, "platform_namespaces", cluster.platform_namespaces)
    monkeypatch.setattr(kube, "namespaces", lambda *a, **k: pytest.fail("a member's page listed as the member"))
    scope = selectors.tenant_page_scope(ALICE)
    names: list[str] = []
    page = paging.PageRequest(limit=10, position=None, scope=scope)
    while True:
        found, following = selectors.tenant_page(ALICE, page)
        assert len(found) <= 10
        names.extend(found)
        if following is None:
            break
        page = paging.PageRequest(limit=10, position=paging.parse_continue(following, scope), scope=scope)
    expected = [f"t{index:04d}" for index in range(0, 1000, 10) if index != 30]
    assert names == expected
    assert set(cluster.limits) == {50}  # chunks of five pages, never the whole list at once
