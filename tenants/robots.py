"""A tenant's robot accounts: services and selectors, every Kubernetes call AS the caller.

A robot is a ServiceAccount in the tenant namespace (labelled ``imm.ai.intel.com/robot=true``) and a
RoleBinding that gives it the tenant's Role or a narrower one (``manifests.ROBOT_ROLES``). The caller
creates both through impersonation, so Kubernetes decides who may make a robot and which rights
they may hand out: RBAC's escalation prevention lets a member bind only a Role whose every permission
they hold, and the admission policy files/policies/tenant-robot-bindings.yaml lets a member bind only
the robot roles to this namespace's service accounts. The management API's own identity grants
nothing here, so it needs no ``bind`` or ``escalate`` rights.

Tokens come from the TokenRequest API (never a Secret): bounded by ``IMM_ROBOT_TOKEN_MAX_SECONDS``,
bound to the audience ``IMM_ROBOT_TOKEN_AUDIENCE`` and to the ServiceAccount's UID, so deleting the
robot revokes every token it was given.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.conf import settings

from inferencemgmt import kube, paging
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest, Conflict, ImmError, NotFound
from tenants import manifests
from tenants.selectors import tenant_required

#: Kubernetes refuses a TokenRequest shorter than this.
TOKEN_MIN_SECONDS = 600


def robot_not_found(name: str) -> NotFound:
    return NotFound(description=f"Robot {name} does not exist", code="robot_not_found")


def _is_robot(account: dict[str, Any]) -> bool:
    labels = (account.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(manifests.ROBOT_LABEL) == "true")


def _view(tenant: str, account: dict[str, Any]) -> dict[str, Any]:
    metadata = account.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return {
        "name": metadata["name"],
        "description": annotations.get(manifests.DESCRIPTION_ANNOTATION, ""),
        "role": annotations.get(manifests.ROBOT_ROLE_ANNOTATION, ""),
        "username": f"system:serviceaccount:{tenant}:{metadata['name']}",
        "createdBy": annotations.get(manifests.CREATED_BY_ANNOTATION),
        "createdAt": kube.timestamp_iso(metadata.get("creationTimestamp")),
    }


def _read(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    """The robot's ServiceAccount read AS the caller: 403 for an outsider, 404 for no such robot."""
    try:
        account = kube.read_service_account(identity, tenant, name)
    except NotFound:
        raise robot_not_found(name) from None
    if not _is_robot(account):
        raise robot_not_found(name)  # the namespace's `default` account, or one made by hand
    return account


def robot_page_scope(identity: Identity, tenant: str) -> str:
    return paging.scope_of("robots", identity.username, tenant=tenant)


def robot_page(identity: Identity, tenant: str, page: paging.PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the tenant's robots (by name) and the next page's token: one list call."""
    tenant_required(tenant)
    accounts = kube.service_accounts(
        identity,
        tenant,
        label_selector=f"{manifests.ROBOT_LABEL}=true",
        limit=page.limit,
        continue_token=page.kube_continue,
    )
    views = (_view(tenant, account) for account in accounts.get("items") or [])
    robots = sorted(views, key=lambda robot: str(robot["name"]))
    return robots, page.kube_token(accounts.get("metadata"))


def robot_get(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    tenant_required(tenant)
    return _view(tenant, _read(identity, tenant, name))


def robot_create(identity: Identity, tenant: str, *, name: str, description: str, role: str) -> dict[str, Any]:
    """The ServiceAccount, then its RoleBinding; a refused binding removes the account again."""
    tenant_required(tenant)
    body = manifests.robot_service_account(tenant, name, description, role, identity.username)
    try:
        account = kube.create_service_account(identity, tenant, body)
    except Conflict:
        raise Conflict(f"Robot {name} already exists", code="robot_exists") from None
    binding = manifests.robot_role_binding(tenant, name, role, str(account["metadata"]["uid"]))
    try:
        kube.create_role_binding(identity, tenant, binding)
    except ImmError:
        with suppress(ImmError):
            kube.delete_service_account(identity, tenant, name)
        raise
    return _view(tenant, account)


def robot_delete(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    """Deleting the ServiceAccount revokes every token (they are bound to its UID); the binding goes too."""
    tenant_required(tenant)
    _read(identity, tenant, name)
    with suppress(NotFound):
        kube.delete_role_binding(identity, tenant, manifests.robot_binding_name(name))
    try:
        kube.delete_service_account(identity, tenant, name)
    except NotFound:
        raise robot_not_found(name) from None
    return {"name": name}


def robot_token(identity: Identity, tenant: str, name: str, *, expires_in: int) -> dict[str, Any]:
    """A bounded token for the robot, asked for AS the caller (``serviceaccounts/token create``)."""
    maximum = settings.IMM_ROBOT_TOKEN_MAX_SECONDS
    if not TOKEN_MIN_SECONDS <= expires_in <= maximum:
        raise BadRequest(
            "Invalid parameter",
            f"expiresIn: must be between {TOKEN_MIN_SECONDS} and {maximum} seconds",
            code="robot_token_lifetime",
        )
    tenant_required(tenant)
    _read(identity, tenant, name)
    audience = settings.IMM_ROBOT_TOKEN_AUDIENCE
    try:
        status = kube.service_account_token(identity, tenant, name, audience=audience, seconds=expires_in)
    except NotFound:
        raise robot_not_found(name) from None
    return {
        "name": name,
        "token": status.get("token"),
        "expiresAt": kube.timestamp_iso(status.get("expirationTimestamp")),
        "audience": audience,
    }
