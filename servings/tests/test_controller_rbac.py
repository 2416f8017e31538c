"""The controller's ClusterRole: enough to converge endpoints, never enough to do the original's damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

RBAC = Path(__file__).resolve().parents[2] / "helm" / "imm" / "files" / "rbac" / "controller.yaml"


def rules() -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return [rule for doc in documents for rule in doc["rules"]]


def test_no_access_to_crds_or_secrets_and_no_delete():
    """The one delete is of HPAs: removing an endpoint's autoscaling removes the HPA the controller made
    (nothing else it renders is ever deleted by it; owner references take the rest with the endpoint)."""
    for rule in rules():
        assert "apiextensions.k8s.io" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"]
        assert "*" not in rule["verbs"]
        if "delete" in rule["verbs"]:
            assert (rule["apiGroups"], rule["resources"]) == (["autoscaling"], ["horizontalpodautoscalers"])


def test_can_apply_the_four_children_and_write_status():
    granted = {
        (g, r, v) for rule in rules() for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    for group, resource in (
        ("", "configmaps"),
        ("", "services"),
        ("apps", "deployments"),
        ("networking.k8s.io", "ingresses"),
    ):
        assert {(group, resource, "create"), (group, resource, "patch")} <= granted
    assert ("ai.intel.com", "inference-endpoints/status", "patch") in granted
    assert ("coordination.k8s.io", "leases", "update") in granted


def test_can_watch_namespaces_but_never_change_them():
    """The controller acts only in tenant namespaces, which it learns from a watch; it changes none."""
    namespace_verbs = {
        v for rule in rules() if "" in rule["apiGroups"] and "namespaces" in rule["resources"] for v in rule["verbs"]
    }
    assert namespace_verbs == {"get", "list", "watch"}
