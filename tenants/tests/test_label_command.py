"""``label_tenant_namespaces``: every tenant namespace ends up enforcing the restricted profile and labelled
with exactly its scope groups, once."""

from __future__ import annotations

import copy
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inferencemgmt import kube
from inferencemgmt.errors import Forbidden
from tenants import manifests

pytestmark = pytest.mark.unit


class FakeNamespaces:
    def __init__(self, *namespaces: dict[str, Any]) -> None:
        self.namespaces = {ns["metadata"]["name"]: ns for ns in namespaces}
        self.patches: list[str] = []
        self.selectors: list[str] = []
        self.refuse = False

    def call_json(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method == "list_namespace":
            self.selectors.append(kwargs["label_selector"])
            key, _, value = kwargs["label_selector"].partition("=")
            items = [ns for ns in self.namespaces.values() if ns["metadata"].get("labels", {}).get(key) == value]
            return {"items": copy.deepcopy(items)}
        if method == "patch_namespace":
            if self.refuse:
                raise Forbidden("Forbidden", "namespaces is forbidden: cannot patch", code="kubernetes_forbidden")
            assert kwargs["_content_type"] == "application/merge-patch+json"
            self.patches.append(args[0])
            labels = self.namespaces[args[0]]["metadata"]["labels"]
            for key, value in args[1]["metadata"]["labels"].items():  # a merge patch: null removes
                if value is None:
                    labels.pop(key, None)
                else:
                    labels[key] = value
            return {}
        raise AssertionError(method)


MARKED = {manifests.GROUP_LABELS_MARKER: manifests.GROUP_LABELS_MARKER_VALUE}


def namespace(name: str, scope: list[str] | None = None, /, **labels: str) -> dict[str, Any]:
    annotations = {} if scope is None else {manifests.SCOPE_ANNOTATION: json.dumps(scope)}
    return {"metadata": {"name": name, "labels": dict(labels), "annotations": annotations}}


def group_labels(name: str, fake: FakeNamespaces) -> dict[str, str]:
    labels = fake.namespaces[name]["metadata"]["labels"]
    return {key: value for key, value in labels.items() if manifests.is_group_label(key)}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNamespaces:
    cluster = FakeNamespaces(
        namespace("old-tenant", created_by="platform_admin"),
        namespace("half", created_by="platform_admin", **{"pod-security.kubernetes.io/enforce": "baseline"}),
        namespace(
            "new-tenant",
            created_by="platform_admin",
            **manifests.POD_SECURITY_LABELS,
            **MARKED,
        ),
        namespace("default"),
    )
    monkeypatch.setattr(kube, "own_api_client", lambda *a, **k: object())
    monkeypatch.setattr(kube, "call_json", cluster.call_json)
    return cluster


def run(*args: str) -> str:
    out = StringIO()
    call_command("label_tenant_namespaces", "--kubeconfig", "admin.kubeconfig", *args, stdout=out)
    return out.getvalue()


def test_labels_only_tenants_that_lack_the_labels_and_a_second_run_changes_nothing(fake, settings):
    settings.PLATFORM_ADMIN_LABEL = "platform_admin"
    output = run()
    assert sorted(fake.patches) == ["half", "old-tenant"]
    assert fake.selectors == ["created_by=platform_admin"]
    for name in ("old-tenant", "half", "new-tenant"):
        labels = fake.namespaces[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "pod-security.kubernetes.io/enforce" not in fake.namespaces["default"]["metadata"]["labels"]
    assert "3 tenant namespaces, 2 labelled, 1 already up to date" in output

    assert "3 tenant namespaces, 0 labelled, 3 already up to date" in run()
    assert sorted(fake.patches) == ["half", "old-tenant"]


def test_dry_run_changes_nothing(fake):
    output = run("--dry-run")
    assert fake.patches == []
    assert "would label old-tenant" in output
    assert "2 would be labelled" in output


def test_a_kubeconfig_without_the_right_is_a_clear_error(fake):
    fake.refuse = True
    with pytest.raises(CommandError, match="cannot patch"):
        run()


def test_no_kubeconfig_is_a_clear_error(fake, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with pytest.raises(CommandError, match="no kubeconfig"):
        call_command("label_tenant_namespaces", "--kubeconfig", "")


def test_named_tenants_only_and_a_name_that_is_no_tenant_changes_nothing(fake):
    assert "1 tenant namespaces, 1 labelled" in run("half")
    assert fake.patches == ["half"]
    with pytest.raises(CommandError, match="not a tenant namespace: default"):
        run("old-tenant", "default")
    assert fake.patches == ["half"]


def test_group_labels_follow_each_scope_annotation_stale_ones_go_and_a_second_run_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PLATFORM_ADMIN_LABEL = "platform_admin"
    current = {"created_by": "platform_admin", **manifests.POD_SECURITY_LABELS}
    odd = ["team-a", "CN=Ops Team,OU=Groups", "équipe/ml@example.com"]
    stale = {manifests.group_label("gone"): "member", manifests.group_label("team-a"): "member"}
    cluster = FakeNamespaces(
        namespace("unlabelled", odd, **current),
        namespace("stale", ["team-b"], **current, **stale),
        namespace("no-scope", None, **current, **stale),  # a tenant of the original IMM: no groups at all
        namespace("up-to-date", ["team-a"], **current, **{manifests.group_label("team-a"): "member"}, **MARKED),
    )
    monkeypatch.setattr(kube, "own_api_client", lambda *a, **k: object())
    monkeypatch.setattr(kube, "call_json", cluster.call_json)

    assert "4 tenant namespaces, 3 labelled, 1 already up to date" in run()
    assert sorted(cluster.patches) == ["no-scope", "stale", "unlabelled"]
    assert group_labels("unlabelled", cluster) == {manifests.group_label(group): "member" for group in odd}
    assert group_labels("stale", cluster) == {manifests.group_label("team-b"): "member"}
    assert group_labels("no-scope", cluster) == {}
    assert group_labels("up-to-date", cluster) == {manifests.group_label("team-a"): "member"}
    for name in cluster.namespaces:  # the other labels are untouched; each now says its group labels are written
        assert cluster.namespaces[name]["metadata"]["labels"].items() >= {**current, **MARKED}.items()

    assert "4 tenant namespaces, 0 labelled, 4 already up to date" in run()
    assert len(cluster.patches) == 3


def test_dry_run_names_the_group_labels_it_would_set_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PLATFORM_ADMIN_LABEL = "platform_admin"
    cluster = FakeNamespaces(
        namespace("t1", ["team-a"], created_by="platform_admin", **manifests.POD_SECURITY_LABELS),
    )
    monkeypatch.setattr(kube, "own_api_client", lambda *a, **k: object())
    monkeypatch.setattr(kube, "call_json", cluster.call_json)
    output = run("--dry-run")
    would = {**MARKED, manifests.group_label("team-a"): "member"}
    assert f"would label t1: {would}" in output
    assert cluster.patches == []
    assert group_labels("t1", cluster) == {}
