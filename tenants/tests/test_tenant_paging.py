"""A member's tenant pages: the API server selects the tenants of the caller's groups by their group labels
(``manifests.group_label``), one list per group merged by name, and a page costs the same whatever the
number of other tenants (kube faked at its chokepoint; the live contract is
tests/foundation/test_paging_contract.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from django.conf import settings as django_settings

from inferencemgmt import kube, paging
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest, NotFound
from tenants import manifests, selectors, services

pytestmark = pytest.mark.unit

ALICE = Identity("alice@example.com", ("team-a",))
# Kubernetes' label key: an optional DNS-subdomain prefix (<= 253) and "/", then a name of at most 63
# characters of [A-Za-z0-9-_.] that starts and ends with a letter or digit.
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def tenant(name: str, scope: Sequence[str], *, terminating: bool = False, labelled: bool = True) -> dict[str, Any]:
    body = manifests.namespace(name, scope, {}, "admin@example.com", django_settings.PLATFORM_ADMIN_LABEL)
    if not labelled:  # made before the group labels existed: neither they nor their marker
        body["metadata"]["labels"] = {
            key: value
            for key, value in body["metadata"]["labels"].items()
            if not manifests.is_group_label(key) and key != manifests.GROUP_LABELS_MARKER
        }
    body["status"] = {"phase": "Terminating" if terminating else "Active"}
    return body


def matches(labels: dict[str, str], selector: str) -> bool:
    """Kubernetes' equality, existence and non-existence (``!key``) requirements, comma-separated (all we send)."""
    for requirement in selector.split(","):
        if requirement.startswith("!"):
            if requirement[1:] in labels:
                return False
            continue
        key, equals, value = requirement.partition("=")
        if (labels.get(key) != value) if equals else (key not in labels):
            return False
    return True


class Namespaces:
    """The API server's namespace list: by name, filtered by the label selector, in chunks whose opaque
    ``continue`` is the index of the next item among those matching."""

    def __init__(self, *namespaces: dict[str, Any]) -> None:
        self.items = sorted(namespaces, key=lambda ns: ns["metadata"]["name"])
        self.calls: list[tuple[str, int | None]] = []
        self.marker_checks: list[tuple[str, int | None]] = []

    def platform_namespaces(
        self, *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        if "!" in label_selector:  # whether every tenant is labelled yet: counted apart from the page's lists
            self.marker_checks.append((label_selector, limit))
        else:
            self.calls.append((label_selector, limit))
        items = [ns for ns in self.items if matches(ns["metadata"].get("labels") or {}, label_selector)]
        start = int(continue_token or 0)
        end = len(items) if limit is None else start + limit
        return {"items": items[start:end], "metadata": {"continue": str(end) if end < len(items) else ""}}

    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        self.calls.append((f"read {name}", None))
        for namespace in self.items:
            if namespace["metadata"]["name"] == name:
                return namespace
        raise NotFound(description=f'namespaces "{name}" not found', code="kubernetes_not_found")


@pytest.fixture(autouse=True)
def labels_checked_afresh() -> Iterator[None]:
    """Each test's cluster is asked whether every tenant is labelled (the answer is cached per process)."""
    selectors.group_labels_check_forget()
    yield
    selectors.group_labels_check_forget()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(*namespaces: dict[str, Any]) -> Namespaces:
        cluster = Namespaces(*namespaces)
        monkeypatch.setattr(kube, "platform_namespaces", cluster.platform_namespaces)
        monkeypatch.setattr(kube, "platform_read_namespace", cluster.platform_read_namespace)
        monkeypatch.setattr(kube, "namespaces", lambda *a, **k: pytest.fail("a member's page listed as the member"))
        return cluster

    return install


def walk(identity: Identity, limits: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Every page, the n-th of ``limits[n % len(limits)]`` items; and the tokens given."""
    scope = selectors.tenant_page_scope(identity)
    pages: list[list[str]] = []
    tokens: list[str] = []
    position = None
    while True:
        limit = limits[len(pages) % len(limits)]
        found, following = selectors.tenant_page(identity, paging.PageRequest(limit, position, scope))
        assert len(found) <= limit
        pages.append(found)
        if following is None:
            return pages, tokens
        assert len(tokens) < 1000, "the pages never end"
        tokens.append(following)
        position = paging.parse_continue(following, scope)


def flat(pages: list[list[str]]) -> list[str]:
    return [name for page in pages for name in page]


@pytest.mark.parametrize(
    "group",
    [
        "team-a",
        "Team A",
        "cn=ops,ou=groups,dc=example,dc=com",
        "équipe/données@example.com",
        "x" * 300,
        "-.leading-and-trailing._",
        "",
        "グループ",
    ],
)
def test_a_group_label_is_a_valid_label_key_for_any_group_name(group: str) -> None:
    key = manifests.group_label(group)
    prefix, slash, name = key.partition("/")
    assert slash
    assert prefix == manifests.GROUP_LABEL_PREFIX
    assert DNS_SUBDOMAIN.match(prefix)
    assert len(prefix) <= 253
    assert LABEL_NAME.match(name)
    assert len(name) == manifests.GROUP_LABEL_DIGEST_LENGTH
    assert manifests.group_label(group) == key  # the same group, the same label, every time
    assert manifests.is_group_label(key)
    labels = manifests.namespace("t1", [group, "team-a"], {}, "admin", "platform_admin")["metadata"]["labels"]
    assert labels[key] == manifests.GROUP_LABEL_VALUE


def test_groups_that_differ_in_case_space_or_one_character_get_different_labels() -> None:
    groups = ["team-a", "Team-a", "team-a ", "team-b", "team_a", "x" * 300, "x" * 299 + "y"]
    assert len({manifests.group_label(group) for group in groups}) == len(groups)
    assert not manifests.is_group_label(manifests.TENANT_LABEL)
    assert not manifests.is_group_label("pod-security.kubernetes.io/enforce")


def applied(labels: dict[str, str], patch: dict[str, str | None]) -> dict[str, str]:
    """``labels`` after the merge patch ``patch`` (null removes)."""
    result = dict(labels)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_the_group_labels_patch_removes_stale_groups_adds_new_ones_and_leaves_other_labels() -> None:
    current = manifests.namespace("t1", ["old", "kept"], {}, "admin", "platform_admin")["metadata"]["labels"]
    patch = manifests.group_labels_patch(current, ["kept", "new"])
    assert patch == {manifests.group_label("old"): None, manifests.group_label("new"): "member"}
    after = applied(current, patch)
    assert manifests.group_labels_patch(after, ["new", "kept"]) == {}
    assert manifests.group_labels_patch(after, ["kept", "old"]) == {
        manifests.group_label("new"): None,
        manifests.group_label("old"): "member",
    }
    others = {key: value for key, value in current.items() if not manifests.is_group_label(key)}
    assert others.items() <= after.items()
    assert manifests.group_labels_patch(after, []) == {
        manifests.group_label("new"): None,
        manifests.group_label("kept"): None,
    }


def test_a_one_group_member_pages_with_a_label_selector_one_call_per_page(fake: Any) -> None:
    hers = [tenant(f"a{index:03d}", ["team-a"]) for index in range(25)]
    others = [tenant(f"b{index:04d}", ["team-z"]) for index in range(1000)]
    cluster = fake(*hers, *others, tenant("a012x", ["team-a"], terminating=True))
    pages, _tokens = walk(ALICE, [10])
    assert flat(pages) == [f"a{index:03d}" for index in range(25)]
    assert [len(page) for page in pages] == [10, 10, 5]
    selector = f"created_by={django_settings.PLATFORM_ADMIN_LABEL},{manifests.group_label('team-a')}"
    assert {sent for sent, _ in cluster.calls} == {selector}
    # one call of ten per page, and one more (of 50) to step over the terminating tenant
    assert len(cluster.calls) <= len(pages) + 1
    assert [limit for _, limit in cluster.calls if limit != 10] in ([], [50])


def test_a_members_page_steps_over_many_terminating_tenants_in_few_calls(fake: Any) -> None:
    """After a mass deletion most of a member's tenants may be terminating for minutes."""
    gone = [tenant(f"a{index:03d}", ["team-a"], terminating=True) for index in range(100)]
    cluster = fake(*gone, tenant("z-live", ["team-a"]))
    assert flat(walk(ALICE, [10])[0]) == ["z-live"]
    assert [limit for _, limit in cluster.calls] == [10, 50, 250]  # growing chunks, not a call per ten


def test_a_one_group_members_page_costs_the_same_whatever_the_other_tenants(fake: Any) -> None:
    calls = []
    for others in (10, 1000):
        cluster = fake(
            *[tenant(f"a{index:03d}", ["team-a"]) for index in range(30)],
            *[tenant(f"b{index:04d}", ["team-z"]) for index in range(others)],
        )
        walk(ALICE, [10])
        calls.append(len(cluster.calls))
    assert calls == [3, 3]


def test_a_one_group_members_pages_resume_with_any_limit(fake: Any) -> None:
    fake(*[tenant(f"a{index:03d}", ["team-a"]) for index in range(23)])
    expected = [f"a{index:03d}" for index in range(23)]
    for limits in ([1], [3, 7], [5, 2, 11], [23], [500]):
        assert flat(walk(ALICE, limits)[0]) == expected


def test_while_a_tenant_is_not_labelled_members_get_the_scan_which_sees_it(fake: Any) -> None:
    others = [tenant(f"b{index:02d}", ["team-b"]) for index in range(30)]
    cluster = fake(tenant("a-new", ["team-a"]), tenant("a-old", ["team-a"], labelled=False), *others)
    assert flat(walk(ALICE, [10])[0]) == ["a-new", "a-old"]
    assert cluster.marker_checks == [(f"{selectors._selector()},!{manifests.GROUP_LABELS_MARKER}", 1)]
    assert cluster.calls
    assert all(selector == selectors._selector() for selector, _ in cluster.calls)  # the scan of every tenant


def test_once_every_tenant_is_labelled_the_check_is_cached_and_members_use_the_labels(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = fake(tenant("a-new", ["team-a"]), *[tenant(f"b{index:02d}", ["team-b"]) for index in range(30)])
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    assert flat(walk(ALICE, [10])[0]) == ["a-new"]
    assert flat(walk(ALICE, [10])[0]) == ["a-new"]
    assert len(cluster.marker_checks) == 1  # asked once, then trusted for GROUP_LABELS_CHECK_SECONDS
    assert cluster.calls == [(f"{selectors._selector()},{manifests.group_label('team-a')}", 10)] * 2
    now[0] += selectors.GROUP_LABELS_CHECK_SECONDS + 1
    cluster.items.append(tenant("a-old", ["team-a"], labelled=False))  # say, restored from a backup
    cluster.items.sort(key=lambda ns: ns["metadata"]["name"])
    assert flat(walk(ALICE, [10])[0]) == ["a-new", "a-old"]
    assert len(cluster.marker_checks) == 2


def test_a_label_without_the_group_in_the_scope_annotation_shows_nothing(fake: Any) -> None:
    forged = tenant("a-forged", ["team-z"])
    forged["metadata"]["labels"][manifests.group_label("team-a")] = "member"
    fake(forged, tenant("a-real", ["team-a"]))
    assert flat(walk(ALICE, [10])[0]) == ["a-real"]


def several_groups_cluster(fake: Any) -> tuple[Namespaces, list[str]]:
    """team-a, team-b and team-c tenants, some in two or three of those groups, some terminating, and
    many of groups the caller is not in; the caller (team-a, team-b, team-c, team-q) sees the names
    returned, in order."""
    namespaces = []
    expected = []
    for index in range(60):
        name = f"t{index:03d}"
        scope = [group for group, step in (("team-a", 2), ("team-b", 3), ("team-c", 7)) if index % step == 0]
        scope = scope or ["team-z"]
        terminating = index in (12, 21)
        namespaces.append(tenant(name, [*scope, "team-y"], terminating=terminating))
        if scope != ["team-z"] and not terminating:
            expected.append(name)
    namespaces.extend(tenant(f"z{index:04d}", ["team-z"]) for index in range(500))
    return fake(*namespaces), expected


CAROL = Identity("carol@example.com", ("team-c", "team-a", "team-b", "team-q"))


@pytest.mark.parametrize("limits", [[1], [2], [3, 5], [10], [7, 1, 13], [500]])
def test_a_several_groups_members_pages_are_merged_by_name_each_tenant_once(fake: Any, limits: list[int]) -> None:
    cluster, expected = several_groups_cluster(fake)
    pages, tokens = walk(CAROL, limits)
    assert flat(pages) == expected  # in name order, t000 (in all three groups) once
    assert all(pages[:-1])  # no empty page before the last
    selectors_sent = {sent for sent, _ in cluster.calls}
    prefix = f"created_by={django_settings.PLATFORM_ADMIN_LABEL},"
    assert selectors_sent <= {prefix + manifests.group_label(group) for group in CAROL.groups}
    for token in tokens:
        assert "team-" not in json.dumps(paging.parse_continue(token, selectors.tenant_page_scope(CAROL)))


def test_a_several_groups_members_page_is_one_call_per_group_whatever_the_other_tenants(fake: Any) -> None:
    costs = []
    for others in (0, 1000):
        cluster = fake(
            *[tenant(f"a{index:03d}", ["team-a"]) for index in range(0, 40, 2)],
            *[tenant(f"a{index:03d}", ["team-b"]) for index in range(1, 40, 2)],
            *[tenant(f"b{index:04d}", ["team-z"]) for index in range(others)],
        )
        identity = Identity("dave@example.com", ("team-a", "team-b"))
        pages, _ = walk(identity, [10])
        assert flat(pages) == [f"a{index:03d}" for index in range(40)]
        costs.append(len(cluster.calls))
    # four pages of ten, each one list per group; the last page learns each list ended
    assert costs[0] == costs[1] <= 2 * 4 + 2


def test_more_groups_than_the_merge_takes_scans_every_tenant_and_still_pages_right(fake: Any) -> None:
    groups = tuple(f"g{index:02d}" for index in range(selectors.MERGE_MAX_GROUPS + 1))
    namespaces = [tenant(f"t{index:03d}", [groups[index % len(groups)]]) for index in range(40)]
    cluster = fake(*namespaces, *[tenant(f"u{index:03d}", ["team-z"]) for index in range(40)])
    pages, _ = walk(Identity("many@example.com", groups), [6])
    assert flat(pages) == [f"t{index:03d}" for index in range(40)]
    assert {sent for sent, _ in cluster.calls} == {f"created_by={django_settings.PLATFORM_ADMIN_LABEL}"}


def test_a_member_of_no_group_sees_nothing_without_a_call(fake: Any) -> None:
    cluster = fake(tenant("a1", ["team-a"]))
    assert walk(Identity("dave@example.com", ()), [10]) == ([[]], [])
    assert cluster.calls == []


def test_a_robot_sees_its_own_tenant_with_one_read(fake: Any) -> None:
    cluster = fake(tenant("a1", ["team-a"]), tenant("a2", ["team-a"]))
    robot = Identity(
        "system:serviceaccount:a2:ci",
        ("system:serviceaccounts", "system:serviceaccounts:a2"),
        service_account=True,
    )
    assert walk(robot, [10]) == ([["a2"]], [])
    assert cluster.calls == [("read a2", None)]


def test_a_tampered_or_foreign_token_is_refused(fake: Any) -> None:
    several_groups_cluster(fake)
    _, tokens = walk(CAROL, [5])
    token = tokens[0]
    scope = selectors.tenant_page_scope(CAROL)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad, bad_scope in ((tampered, scope), (token, selectors.tenant_page_scope(ALICE))):
        with pytest.raises(BadRequest) as refused:
            paging.parse_continue(bad, bad_scope)
        assert refused.value.code == "invalid_continue"


@pytest.mark.django_db
def test_get_tenants_with_a_tampered_token_is_400_before_any_kubernetes_call(api: Any, issuer: Any, fake: Any) -> None:
    cluster, _ = several_groups_cluster(fake)
    bearer = f"Bearer {issuer.mint(email='carol@example.com', groups=list(CAROL.groups))}"
    first = api.get("/tenants?limit=4", HTTP_AUTHORIZATION=bearer)
    assert first.status_code == 200, first.content
    token = first.json()["continue"]
    second = api.get("/tenants", {"limit": 4, "continue": token}, HTTP_AUTHORIZATION=bearer)
    assert second.status_code == 200
    assert second.json()["data"]["tenants"][0] > first.json()["data"]["tenants"][-1]
    calls = len(cluster.calls)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = api.get("/tenants", {"continue": tampered}, HTTP_AUTHORIZATION=bearer)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_continue"
    assert len(cluster.calls) == calls


class ScopeUpdate:
    """The writes of a scope change: the tenant's RoleBinding, then one namespace patch."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.patches: list[dict[str, Any]] = []

    def platform_read_namespace(self, name: str) -> dict[str, Any]:
        return self.namespace

    def replace_role_binding(self, identity: Identity, namespace: str, name: str, body: Any) -> dict[str, Any]:
        return {}

    def patch_namespace(self, identity: Identity, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return {}


def test_a_scope_change_rewrites_the_annotation_and_the_group_labels_in_one_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = ScopeUpdate(tenant("t1", ["old group", "kept"]))
    for name in ("platform_read_namespace", "replace_role_binding", "patch_namespace"):
        monkeypatch.setattr(kube, name, getattr(cluster, name))
    admin = Identity("admin@example.com", ("admin",), is_admin=True)
    services.tenant_update(admin, name="t1", scope=["kept", "new/group"])
    assert cluster.patches == [
        {
            "metadata": {
                "annotations": {manifests.SCOPE_ANNOTATION: '["kept", "new/group"]'},
                "labels": {manifests.group_label("old group"): None, manifests.group_label("new/group"): "member"},
            }
        }
    ]
    cluster.patches.clear()
    services.tenant_update(admin, name="t1", quota=None, scope=["old group", "kept"])
    assert "labels" not in cluster.patches[0]["metadata"]  # the namespace read still has those labels


class KubernetesTokens(Namespaces):
    """Continue tokens shaped like the API server's (base64 of the resource version and the next key)."""

    def platform_namespaces(
        self, *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        start = None
        if continue_token:
            start = json.loads(base64.b64decode(continue_token))["start"].rstrip("\0")
        items = [ns for ns in self.items if matches(ns["metadata"].get("labels") or {}, label_selector)]
        items = [ns for ns in items if start is None or ns["metadata"]["name"] >= start]
        page, rest = items[:limit], items[limit:]
        following = ""
        if rest:
            key = {"v": "meta.k8s.io/v1", "rv": 987654321, "start": rest[0]["metadata"]["name"] + "\0"}
            following = base64.b64encode(json.dumps(key).encode()).decode()
        return {"items": page, "metadata": {"continue": following}}


def test_a_merged_pages_token_for_the_most_groups_and_longest_names_stays_under_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    groups = tuple(
        f"group number {index} of a directory with long names" for index in range(selectors.MERGE_MAX_GROUPS)
    )
    namespaces = []
    for index, group in enumerate(groups):
        for copy in range(3):
            name = f"{copy}{index:02d}-" + hashlib.sha256(group.encode()).hexdigest()[:59]  # 63 characters
            namespaces.append(tenant(name, [group]))
    cluster = KubernetesTokens(*namespaces)
    monkeypatch.setattr(kube, "platform_namespaces", cluster.platform_namespaces)
    pages, tokens = walk(Identity("many@example.com", groups), [1])
    assert flat(pages) == sorted(ns["metadata"]["name"] for ns in namespaces)
    assert max(len(token) for token in tokens) < paging.TOKEN_MAX_LENGTH
