"""Operations on tenants, named <entity>_<verb> and taking an Identity.

Creation and deletion touch two systems and take seconds, so they run as Operations (see
`provisioning.py`); these functions validate what can be checked at once, then record the
Operation in the caller's transaction. A quota or scope change is quick and runs inline, as the
admin, against the live objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from inferencemgmt import kube, objectstore
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, NotFound
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import operation_create
from tenants import manifests, rotation, selectors, tasks
from tenants.provisioning import tenant_exists_error


def tenant_create(
    identity: Identity, *, name: str, cert: str, scope: Sequence[str], quota: dict[str, Any]
) -> Operation:
    if selectors.namespace_taken(name):
        raise tenant_exists_error(name)
    return operation_create(
        task=tasks.provision_tenant,
        target=name,
        identity=identity,
        params={"name": name, "cert": cert, "scope": list(scope), "quota": quota},
    )


def tenant_delete(identity: Identity, *, name: str) -> Operation:
    """Half-created tenants (only a namespace, or only a bucket) can be deleted too."""
    if selectors.tenant_namespace(name) is None and not objectstore.bucket_exists(name):
        raise selectors.tenant_not_found(name)
    return operation_create(task=tasks.delete_tenant, target=name, identity=identity, params={"name": name})


def tenant_update(
    identity: Identity, *, name: str, quota: dict[str, Any] | None = None, scope: Sequence[str] | None = None
) -> dict[str, Any]:
    """Replace the quota and/or the scope groups; the ResourceQuota and RoleBinding follow.

    A new scope rewrites the scope annotation and the group labels (``manifests.group_label``) in one
    namespace patch, so the labels members' lists select on never disagree with the annotation.
    """
    namespace = selectors.tenant_required(name)
    annotations: dict[str, str | None] = {}
    labels: dict[str, str | None] = {}
    values: dict[str, Any] = {}
    if quota is not None:
        body = manifests.resource_quota(name, quota)
        try:
            kube.replace_resource_quota(identity, name, name, body)
        except NotFound:
            kube.create_resource_quota(identity, name, body)
        annotations[manifests.MAX_ENDPOINTS] = (
            str(quota[manifests.MAX_ENDPOINTS]) if manifests.MAX_ENDPOINTS in quota else None
        )
        values["quota"] = quota
    if scope is not None:
        binding = manifests.role_binding(name, scope)
        try:
            kube.replace_role_binding(identity, name, name, binding)
        except NotFound:
            kube.create_role_binding(identity, name, binding)
        annotations[manifests.SCOPE_ANNOTATION] = json.dumps(list(scope))
        labels = manifests.group_labels_patch((namespace.get("metadata") or {}).get("labels"), scope)
        values["scope"] = list(scope)
    if annotations:
        metadata: dict[str, Any] = {"annotations": annotations}
        if labels:
            metadata["labels"] = labels
        kube.patch_namespace(identity, name, {"metadata": metadata})
    return {"name": name, "values": values}


def tenant_credentials_rotate(identity: Identity, *, name: str) -> Operation:
    """Start rotating the tenant's store key (tenants.rotation), or return the rotation already running,
    so a repeated request never issues one more key."""
    selectors.tenant_required(name)
    if not objectstore.identities_enabled():
        raise Conflict(
            f"Tenant {name} has no store key to rotate",
            "tenant identities are off (IMM_STORE_IDENTITY_BACKEND=none): tenants get no key at all",
            code="object_store_identities_off",
        )
    running = rotation.rotation_in_flight(name)
    if running is not None:
        return running
    return operation_create(task=tasks.rotate_credentials, target=name, identity=identity, params={"name": name})
