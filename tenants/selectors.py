"""Reads of tenants, scoped to what the caller may see.

A tenant is a namespace labelled `created_by=<PLATFORM_ADMIN_LABEL>` (the original's marker).
Admins list tenants as themselves (RBAC lets them list namespaces). Other users cannot list
namespaces cluster-wide, so the management API's own identity lists them for the user: those
labelled with one of the user's scope groups (``manifests.group_label``: the API server does the
filtering), checked against the scope annotation; the details of a tenant are then read AS the user,
so Kubernetes RBAC still decides what a member may see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from inferencemgmt import kube, objectstore, paging
from inferencemgmt.api.validation import known_tenant_name as known_tenant_name
from inferencemgmt.api.validation import tenant_not_found as tenant_not_found
from inferencemgmt.auth.identity import Identity
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import NotFound
from tenants import manifests


def tenant_label_selector() -> str:
    """The label selector of tenant namespaces (for lists and watches by any app)."""
    return f"{manifests.TENANT_OWNER_LABEL}={settings.PLATFORM_ADMIN_LABEL}"


def is_tenant_labels(labels: Mapping[str, str] | None) -> bool:
    """Whether a namespace with these labels is a tenant (the one rule; the controller uses it too)."""
    return bool((labels or {}).get(manifests.TENANT_OWNER_LABEL) == settings.PLATFORM_ADMIN_LABEL)


def store_key_generation(annotations: Mapping[str, str] | None) -> str:
    """A tenant namespace's store-key generation ("" when its key was never rotated); the controller
    puts it on the tenant's pod templates (tenants.rotation)."""
    return str((annotations or {}).get(manifests.STORE_KEY_ANNOTATION, ""))


def _selector() -> str:
    return tenant_label_selector()


def _is_tenant(namespace: dict[str, Any]) -> bool:
    return is_tenant_labels((namespace.get("metadata") or {}).get("labels"))


def scope_of_annotations(annotations: Mapping[str, str] | None) -> list[str]:
    """The tenant's groups, from our annotation (tenants made by the original IMM have none)."""
    raw = (annotations or {}).get(manifests.SCOPE_ANNOTATION, "[]")
    try:
        scope = json.loads(raw)
    except ValueError:
        return []
    return [group for group in scope if isinstance(group, str)] if isinstance(scope, list) else []


def tenant_namespace(name: str) -> dict[str, Any] | None:
    """The tenant's namespace as the management API sees it (its JSON), or None when it is not a tenant."""
    try:
        namespace = kube.platform_read_namespace(name)
    except NotFound:
        return None
    return namespace if _is_tenant(namespace) else None


def tenant_required(name: str) -> dict[str, Any]:
    """The tenant's namespace, or 404 ``Tenant <name> does not exist``: every tenant route's first check.

    The one rule of the tenant routes (docs/api-conventions.md, "Tenants in the path"): tenant names
    are not secret (they are namespace and bucket names), so an unknown tenant is 404 for everyone
    signed in, decided here before the caller's rights are asked; an existing tenant that is not the
    caller's is then 403. Admin-only routes refuse a non-admin (403) before this, whatever the name.
    """
    namespace = tenant_namespace(name)
    if namespace is None:
        raise tenant_not_found(name)
    return namespace


def namespace_taken(name: str) -> bool:
    """Any namespace of that name (a tenant or not) makes the name unavailable."""
    try:
        kube.platform_read_namespace(name)
    except NotFound:
        return False
    return True


def tenant_names_all() -> list[str]:
    """Every tenant, as the management API's own identity sees them (periodic tasks: no caller)."""
    namespaces = kube.platform_namespaces(label_selector=_selector()).get("items") or []
    return sorted(str(ns["metadata"]["name"]) for ns in namespaces)


def tenant_list(identity: Identity) -> list[str]:
    """Every tenant the caller may see, sorted (all pages: for callers that need the whole list)."""
    return paging.all_pages(lambda page: tenant_page(identity, page), tenant_page_scope(identity))


def tenant_page_scope(identity: Identity) -> str:
    return paging.scope_of("tenants", identity.username)


def _namespace_json_page(identity: Identity | None, selector: str = "") -> Any:
    """Tenant namespaces (those also matching ``selector``, when given) as the API server's JSON, in
    chunks, listed as ``identity`` (None: as the management API itself): no SDK models are built for
    the namespaces a page leaves out (terminating ones)."""
    label_selector = f"{_selector()},{selector}" if selector else _selector()

    def call(*, limit: int, _continue: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        if identity is None:
            answer = kube.platform_namespaces(label_selector=label_selector, limit=limit, continue_token=_continue)
        else:
            answer = kube.namespaces(identity, label_selector=label_selector, limit=limit, continue_token=_continue)
        return list(answer.get("items") or []), (answer.get("metadata") or {}).get("continue") or None

    return call


def _terminating(namespace: dict[str, Any]) -> bool:
    return bool((namespace.get("status") or {}).get("phase") == "Terminating")


def _member_of(groups: set[str], namespace: dict[str, Any]) -> bool:
    """A live tenant one of whose scope groups is the caller's, by the scope annotation (the source of
    truth: the group labels only let the API server find the candidates)."""
    if _terminating(namespace):
        return False
    metadata = namespace.get("metadata") or {}
    return bool(groups.intersection(scope_of_annotations(metadata.get("annotations"))))


def _name(namespace: dict[str, Any]) -> str:
    return str(namespace["metadata"]["name"])


def _group_json_page(group: str) -> Any:
    """The tenant namespaces labelled with ``group`` (``manifests.group_label``), as the management API
    lists them: the API server does the filtering, so a page costs the same whatever the other tenants."""
    return _namespace_json_page(None, manifests.group_label(group))


def _kept_page(
    list_call: Any, page: paging.PageRequest, keep: Any, *, chunk: int, growing: bool = False
) -> tuple[list[str], str | None]:
    """One page of tenant names from a namespace list, keeping what ``keep`` accepts (``paging.kube_page``)."""
    found, following = paging.kube_page(list_call, page, keep=keep, name=_name, chunk=chunk, growing=growing)
    return [_name(ns) for ns in found], following


def _scan_chunk(page: paging.PageRequest) -> int:
    """Chunks of five pages (at least 50, at most ``paging.MAX_LIMIT``) for lists the API server did not filter."""
    return min(paging.MAX_LIMIT, max(50, 5 * page.limit))


def _robot_page(namespace_name: str, page: paging.PageRequest) -> list[str]:
    """A robot sees its own tenant and nothing else: one read, no list (one page: no token)."""
    if page.position:
        return []
    namespace = tenant_namespace(namespace_name)
    return [namespace_name] if namespace is not None and not _terminating(namespace) else []


def tenant_page(identity: Identity, page: paging.PageRequest) -> tuple[list[str], str | None]:
    """One page of the tenants the caller may see, by name, and the next page's token.

    Admins list the tenant namespaces as themselves, in chunks of five times the page (at least 50,
    at most ``paging.MAX_LIMIT``), terminating tenants left out without a call each. Others cannot
    list namespaces, so the management API lists them for the caller:

    * a robot: its own tenant, one read;
    * a member of no group: nothing, without a call;
    * a member of one group: the tenant namespaces labelled with that group (``manifests.group_label``),
      so the API server does the filtering and a page is one call whatever the number of tenants;
    * a member of several groups: one such list per group, merged by name (``_merged_page``).

    The labels are used once every tenant carries them (``_group_labels_complete``); until
    ``manage.py label_tenant_namespaces`` has labelled the tenants made before they existed (the upgrade
    step of docs/deployment.md), members get the scan of every tenant, which sees those too.
    """
    if identity.is_admin:
        return _kept_page(
            _namespace_json_page(identity), page, lambda ns: not _terminating(ns), chunk=_scan_chunk(page)
        )
    robot_namespace = identity.robot_namespace
    if robot_namespace is not None:
        return _robot_page(robot_namespace, page), None
    groups = sorted(set(identity.groups))
    if not groups:
        return [], None
    if not _group_labels_complete():
        return _scanned_page(groups, page)
    if len(groups) == 1:
        member = set(groups)
        # The API server filtered: one page's worth usually fills the page; when the caller's
        # tenants are mostly terminating (a mass deletion), the chunks grow so it takes few calls.
        return _kept_page(
            _group_json_page(groups[0]), page, lambda ns: _member_of(member, ns), chunk=page.limit, growing=True
        )
    if len(groups) > MERGE_MAX_GROUPS:
        return _scanned_page(groups, page)
    return _merged_page(groups, page)


#: How long a process trusts its answer to "does every tenant carry the group labels?" (one list call).
GROUP_LABELS_CHECK_SECONDS = 60.0
_labels_checked: tuple[float, bool] | None = None


def _group_labels_complete() -> bool:
    """Whether every tenant namespace carries ``manifests.GROUP_LABELS_MARKER``: only then do members'
    lists trust the group labels (one call per page). Until ``label_tenant_namespaces`` has labelled the
    tenants made before the labels existed, members get the scan of every tenant (``_scanned_page``),
    which sees them all: an upgrade never hides a tenant from its members. One list of at most one item,
    asked at most every ``GROUP_LABELS_CHECK_SECONDS`` per process (a tenant made meanwhile by a replica
    of an older release, during a rolling upgrade, is missed by members' lists for at most that long)."""
    global _labels_checked
    now = time.monotonic()
    if _labels_checked is not None and now - _labels_checked[0] < GROUP_LABELS_CHECK_SECONDS:
        return _labels_checked[1]
    unmarked = kube.platform_namespaces(label_selector=f"{_selector()},!{manifests.GROUP_LABELS_MARKER}", limit=1)
    complete = not (unmarked.get("items") or [])
    _labels_checked = (now, complete)
    return complete


def group_labels_check_forget() -> None:
    """Ask again at the next member's list (tests, and after relabelling in this process)."""
    global _labels_checked
    _labels_checked = None


#: The most groups a member's page merges (one labelled list per group, and per group a Kubernetes
#: ``continue`` in the token, which must stay under ``paging.TOKEN_MAX_LENGTH``). A member of more groups
#: gets the scan of every tenant namespace (``_scanned_page``), whose cost does not grow with the groups.
MERGE_MAX_GROUPS = 16
#: A group's list is finished (in ``_merged_page``'s token).
_DONE = 0


def _group_key(group: str) -> str:
    """A group's key in a merged page's token: a short digest (a token carries no group names)."""
    return manifests.group_label(group).rpartition("/")[2][:12]


class _GroupCursor:
    """Where one group's labelled list stands during a merged page: the chunk read from the Kubernetes
    ``continue`` token ``start`` (None: the list's beginning), what of it is not yet merged, and the
    token of the chunk after it."""

    def __init__(self, group: str, start: str | None, chunk: int) -> None:
        self.list_call = _group_json_page(group)
        self.start = start
        self.chunk = chunk
        self.items: list[dict[str, Any]] = []
        self.following: str | None = None
        self.read = False

    def head(self, after: str | None) -> dict[str, Any] | None:
        """The first namespace of this group's list after the name ``after``, reading chunks as needed."""
        while True:
            while self.items and after is not None and _name(self.items[0]) <= after:
                self.items.pop(0)
            if self.items:
                return self.items[0]
            if self.read:
                if not self.following:
                    return None
                self.start = self.following
            arguments: dict[str, Any] = {"limit": self.chunk}
            if self.start:
                arguments["_continue"] = self.start
            items, self.following = self.list_call(**arguments)
            self.items = list(items)
            self.read = True

    def resume(self) -> str | int:
        """What the next page needs to resume this list: the Kubernetes ``continue`` of the chunk that
        holds its next namespace ("": the beginning), or ``_DONE``."""
        if not self.read or self.items:
            return self.start or ""
        return self.following or _DONE


def _merged_page(groups: list[str], page: paging.PageRequest) -> tuple[list[str], str | None]:
    """One page of a member of several groups: a k-way merge by name of one labelled list per group,
    each tenant once (a tenant of two of the caller's groups is in both lists).

    The token holds the last name given (``a``) and, per group (``g``, by ``_group_key``), the
    Kubernetes ``continue`` of the chunk that holds its next namespace, or ``_DONE``: Kubernetes cannot
    resume in the middle of its own page, so the next page re-reads that chunk and skips the names up
    to ``a`` (every list is in name order, so every name up to ``a`` was merged). Chunks are one page
    long, so a page costs one call per group whatever the number of tenants (more only when
    terminating tenants are left out). A group missing from the token (the caller's groups changed)
    is read from its beginning, which is still right.
    """
    position = page.position or {}
    after = position.get("a") if isinstance(position.get("a"), str) else None
    saved_states = position.get("g")
    saved: dict[str, Any] = saved_states if isinstance(saved_states, dict) else {}
    member = set(groups)
    cursors: dict[str, _GroupCursor] = {}
    finished: dict[str, str | int] = {}
    for group in groups:
        key = _group_key(group)
        state = saved.get(key, "")
        if state == _DONE and after is not None:
            finished[key] = _DONE
            continue
        cursors[key] = _GroupCursor(group, state if isinstance(state, str) and state else None, page.limit)
    found: list[str] = []
    last = after
    while len(found) < page.limit:
        heads = [(cursor, head) for cursor in cursors.values() if (head := cursor.head(last)) is not None]
        if not heads:
            break
        smallest = min(_name(head) for _, head in heads)
        namespace = next(head for _, head in heads if _name(head) == smallest)
        for cursor, head in heads:
            if _name(head) == smallest:
                cursor.items.pop(0)
        last = smallest
        if _member_of(member, namespace):
            found.append(smallest)
    states = {**finished, **{key: cursor.resume() for key, cursor in cursors.items()}}
    if last is None or all(state == _DONE for state in states.values()):
        return found, None
    return found, page.token({"a": last, "g": states})


def _scanned_page(groups: list[str], page: paging.PageRequest) -> tuple[list[str], str | None]:
    """One page of a member of more than ``MERGE_MAX_GROUPS`` groups: every tenant namespace, in
    chunks of five pages (at least 50), keeping the caller's."""
    member = set(groups)
    return _kept_page(_namespace_json_page(None), page, lambda ns: _member_of(member, ns), chunk=_scan_chunk(page))


def _endpoint_count(identity: Identity, name: str) -> int:
    """How many endpoints the tenant has, without reading them all: one item and the API server's
    ``remainingItemCount`` (pages of 500 only if a server does not give that count)."""
    count, token, limit = 0, None, 1
    while True:
        answer = kube.endpoints(identity, name, limit=limit, continue_token=token)
        count += len(answer.get("items") or [])
        metadata = answer.get("metadata") or {}
        token = metadata.get("continue")
        remaining = metadata.get("remainingItemCount")
        if not token:
            return count
        if isinstance(remaining, int):
            return count + remaining
        limit = paging.MAX_LIMIT


def tenant_get(identity: Identity, name: str) -> dict[str, Any]:
    """Details of one tenant; reads run as the caller, so a non-member gets Kubernetes' 403."""
    tenant_required(name)
    namespace = kube.read_namespace(identity, name)
    quota: dict[str, Any] = {"hard": {}, "used": {}}
    try:
        resource_quota = kube.read_resource_quota(identity, name, name)
        quota_status = resource_quota.get("status") or {}
        quota = {
            "hard": dict(quota_status.get("hard") or (resource_quota.get("spec") or {}).get("hard") or {}),
            "used": dict(quota_status.get("used") or {}),
        }
    except NotFound:
        pass
    endpoint_count = _endpoint_count(identity, name)
    bucket: dict[str, Any] | None
    try:
        objects, size = objectstore.bucket_usage(name)
        bucket = {"name": name, "objects": objects, "bytes": size}
    except NotFound:
        bucket = None
    metadata = namespace.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    max_endpoints = annotations.get(manifests.MAX_ENDPOINTS)
    return {
        "name": name,
        "scope": scope_of_annotations(annotations),
        "phase": (namespace.get("status") or {}).get("phase"),
        "quota": quota,
        "maxEndpoints": ascii_int(max_endpoints),
        "endpoints": endpoint_count,
        "bucket": bucket,
        "createdBy": annotations.get(manifests.CREATED_BY_ANNOTATION),
        "createdAt": kube.timestamp_iso(metadata.get("creationTimestamp")),
    }
