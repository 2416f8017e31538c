"""Reads of tenants, scoped to what the caller may see.

A tenant is a namespace labelled `created_by=<PLATFORM_ADMIN_LABEL>` (the original's marker).
Admins list tenants as themselves (RBAC lets them list namespaces). Other users cannot list
namespaces cluster-wide, so the management API's own identity lists them and keeps those whose
scope groups the user is in; the details of a tenant are then read AS the user, so Kubernetes RBAC
still decides what a member may see.
"""

from __future__ import annotations

import json
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


def _scope_of_annotations(annotations: Mapping[str, str] | None) -> list[str]:
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


def _namespace_json_page(identity: Identity | None) -> Any:
    """Tenant namespaces as the API server's JSON, in chunks, listed as ``identity`` (None: as the
    management API itself): no SDK models are built for the namespaces a page leaves out (other
    groups' for a member, terminating ones for everyone)."""

    def call(*, limit: int, _continue: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        if identity is None:
            answer = kube.platform_namespaces(label_selector=_selector(), limit=limit, continue_token=_continue)
        else:
            answer = kube.namespaces(identity, label_selector=_selector(), limit=limit, continue_token=_continue)
        return list(answer.get("items") or []), (answer.get("metadata") or {}).get("continue") or None

    return call


def _member_of(identity: Identity, groups: set[str], namespace: dict[str, Any]) -> bool:
    metadata = namespace.get("metadata") or {}
    if (namespace.get("status") or {}).get("phase") == "Terminating":
        return False
    if metadata.get("name") == identity.robot_namespace:
        return True
    return bool(groups.intersection(_scope_of_annotations(metadata.get("annotations"))))


def tenant_page(identity: Identity, page: paging.PageRequest) -> tuple[list[str], str | None]:
    """One page of the tenants the caller may see, by name, and the next page's token.

    Admins list the tenant namespaces as themselves. Others cannot list namespaces: the management
    API lists them and keeps those of the caller's groups (a robot: its own tenant). Either way the
    namespaces are read as raw JSON in chunks of five times the page (at least 50, at most
    ``paging.MAX_LIMIT``) until the page is full, so a page costs what it takes to find ``limit``
    tenants the caller may see, whatever the total; terminating tenants (many, after a mass
    deletion) are left out without a call each.
    """
    chunk = min(paging.MAX_LIMIT, max(50, 5 * page.limit))
    if identity.is_admin:
        found, following = paging.kube_page(
            _namespace_json_page(identity),
            page,
            keep=lambda ns: (ns.get("status") or {}).get("phase") != "Terminating",
            name=lambda ns: str(ns["metadata"]["name"]),
            chunk=chunk,
        )
        return [str(ns["metadata"]["name"]) for ns in found], following
    groups = set(identity.groups)
    found, following = paging.kube_page(
        _namespace_json_page(None),
        page,
        keep=lambda ns: _member_of(identity, groups, ns),
        name=lambda ns: str(ns["metadata"]["name"]),
        chunk=chunk,
    )
    return [str(ns["metadata"]["name"]) for ns in found], following


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
        "scope": _scope_of_annotations(annotations),
        "phase": (namespace.get("status") or {}).get("phase"),
        "quota": quota,
        "maxEndpoints": ascii_int(max_endpoints),
        "endpoints": endpoint_count,
        "bucket": bucket,
        "createdBy": annotations.get(manifests.CREATED_BY_ANNOTATION),
        "createdAt": kube.timestamp_iso(metadata.get("creationTimestamp")),
    }
