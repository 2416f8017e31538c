"""The Kubernetes objects that make a tenant, as pure functions of the tenant's settings.

Pure so they can be unit-tested byte for byte, applied idempotently (create-or-verify) by the
provisioning saga, and compared with what is live to detect drift. Every object carries our
ownership labels; the namespace also keeps the original IMM's `created_by` label, which the
original clients and listing depend on, and the Pod Security Admission labels that make the API server
enforce the restricted profile on every pod in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from inferencemgmt import resources

API_GROUP = resources.GROUP
ENDPOINTS_RESOURCE = resources.PLURAL
# The ResourceQuota object count that caps the number of endpoints: the API server enforces it
# atomically on create, so there is no check-then-create race.
ENDPOINT_COUNT_KEY = resources.QUOTA_COUNT_KEY
MAX_ENDPOINTS = "maxEndpoints"

MANAGED_BY = {"app.kubernetes.io/managed-by": "inference-model-manager"}
#: The namespace label that marks a tenant (value: the PLATFORM_ADMIN_LABEL setting), kept from the original.
TENANT_OWNER_LABEL = "created_by"
#: Pod Security Admission: the API server itself refuses any pod in a tenant namespace that the
#: "restricted" Pod Security Standards profile forbids (privileged, host namespaces, hostPath, root...),
#: whoever creates it. `latest` follows the cluster's Kubernetes version, so a cluster upgrade brings the
#: profile's newest rules with it (the shipped serving templates meet them all; a pinned version would let
#: pods the profile later forbids keep being admitted). `warn` makes kubectl users see why at apply time.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}
TENANT_LABEL = "imm.ai.intel.com/tenant"
SCOPE_ANNOTATION = "imm.ai.intel.com/scope"
CREATED_BY_ANNOTATION = "imm.ai.intel.com/created-by"
#: The tenant's store-key generation: a digest of the access key id its access secret holds, written on
#: the namespace by the key rotation (tenants.rotation) after the secret; the controller copies it onto
#: every pod template of the tenant, so a new key rolls the pods. Never the key itself.
STORE_KEY_ANNOTATION = "imm.ai.intel.com/store-key"
#: When the tenant's key was last rotated (ISO 8601, UTC): the periodic rotation's clock.
STORE_KEY_ROTATED_ANNOTATION = "imm.ai.intel.com/store-key-rotated-at"
CA_SECRET = "ca-cert-secret"  # noqa: S105 -- object names, not secret values
STORE_SECRET = "minio-access-info"  # noqa: S105
TLS_SECRET = "tls-secret"  # noqa: S105
#: The scope groups as namespace labels, one per group: ``group.imm.ai.intel.com/<digest>: member``, so the
#: API server itself finds a member's tenants (``tenants.selectors.tenant_page``: a label selector, one
#: call per page whatever the number of tenants) instead of the management API reading every tenant's
#: scope annotation. The annotation stays the source of truth (it keeps the names; lists check it too).
GROUP_LABEL_PREFIX = "group.imm.ai.intel.com"
GROUP_LABEL_VALUE = "member"
#: Hex digits of the group name's SHA-256 in the label name (160 bits: no two groups meet by chance).
GROUP_LABEL_DIGEST_LENGTH = 40


def group_label(group: str) -> str:
    """The namespace label key of one scope group: ``group.imm.ai.intel.com/<first 40 hex of sha256(group)>``.

    A digest, not the name: group names are arbitrary OIDC strings (spaces, slashes, ``@``, any length,
    any script), while a label key's name part is at most 63 characters of ``[A-Za-z0-9-_.]`` starting
    and ending with a letter or digit, and no escaping is both reversible and short enough. A digest of
    fixed length is always a valid name. It reveals a digest of the group's name to whoever may read
    namespaces (admins and the platform's own identity), who may read the scope annotation anyway.
    """
    return f"{GROUP_LABEL_PREFIX}/{hashlib.sha256(group.encode('utf-8')).hexdigest()[:GROUP_LABEL_DIGEST_LENGTH]}"


def is_group_label(key: str) -> bool:
    """Whether a label key is one of the scope group labels (which ``group_labels`` writes)."""
    return key.startswith(f"{GROUP_LABEL_PREFIX}/")


#: Says a namespace's group labels are written (by provisioning, a scope change or the upgrade command).
#: Not a group label itself (another prefix), so a tenant of no group carries it too: the members' lists
#: use the labels only once no tenant lacks it (``tenants.selectors``), which makes the upgrade safe
#: before ``label_tenant_namespaces`` has run.
GROUP_LABELS_MARKER = "imm.ai.intel.com/group-labels"
GROUP_LABELS_MARKER_VALUE = "v1"


def group_labels(scope: Sequence[str]) -> dict[str, str]:
    """The scope group labels of a tenant whose scope is ``scope``, with the marker that they are written."""
    return {
        GROUP_LABELS_MARKER: GROUP_LABELS_MARKER_VALUE,
        **{group_label(group): GROUP_LABEL_VALUE for group in scope},
    }


def group_labels_patch(current: Mapping[str, str] | None, scope: Sequence[str]) -> dict[str, str | None]:
    """A merge patch of ``metadata.labels`` that leaves exactly the labels of ``scope`` among the group
    labels of a namespace labelled ``current``: stale ones removed (None), missing ones added; empty
    when nothing is to change. Other labels are not touched."""
    wanted = group_labels(scope)
    labels = current or {}
    patch: dict[str, str | None] = {key: None for key in labels if is_group_label(key) and key not in wanted}
    patch.update({key: value for key, value in wanted.items() if labels.get(key) != value})
    return patch


def labels(tenant: str) -> dict[str, str]:
    return {**MANAGED_BY, TENANT_LABEL: tenant}


def _meta(name: str, tenant: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": tenant, "labels": labels(tenant), **extra}


def namespace(
    tenant: str, scope: Sequence[str], quota: Mapping[str, Any], created_by: str, admin_label: str
) -> dict[str, Any]:
    annotations = {SCOPE_ANNOTATION: json.dumps(list(scope)), CREATED_BY_ANNOTATION: created_by}
    if MAX_ENDPOINTS in quota:
        annotations[MAX_ENDPOINTS] = str(quota[MAX_ENDPOINTS])
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": tenant,
            "labels": {
                TENANT_OWNER_LABEL: admin_label,
                **labels(tenant),
                **POD_SECURITY_LABELS,
                **group_labels(scope),
            },
            "annotations": annotations,
        },
    }


def quota_hard(quota: Mapping[str, Any]) -> dict[str, str]:
    """The ResourceQuota's `hard` map: the quantities as given, `maxEndpoints` as the CR count."""
    hard = {key: str(value) for key, value in quota.items() if key != MAX_ENDPOINTS}
    if MAX_ENDPOINTS in quota:
        hard[ENDPOINT_COUNT_KEY] = str(quota[MAX_ENDPOINTS])
    return hard


def resource_quota(tenant: str, quota: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(tenant, tenant),
        "spec": {"hard": quota_hard(quota)},
    }


# What a tenant's users may do in their namespace: manage endpoints, and read what the platform
# made for them (pods and their logs, deployments, services, ingresses, events, quota). Every
# rule names its real API group; the platform-admin ClusterRole holds all of these, so an admin
# may grant them without the `escalate` verb.
TENANT_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [API_GROUP],
        "resources": [ENDPOINTS_RESOURCE],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [API_GROUP], "resources": [f"{ENDPOINTS_RESOURCE}/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": [API_GROUP], "resources": [f"{ENDPOINTS_RESOURCE}/status"], "verbs": ["get"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "pods/log", "services", "events", "resourcequotas", "configmaps"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]


# Members manage their tenant's robots (README "Robots") AS themselves: a robot is a ServiceAccount,
# its rights a RoleBinding, its tokens TokenRequests. Kubernetes lets a member bind only a Role whose
# every permission the member holds (RBAC escalation prevention), so a member can give a robot at most
# the tenant's own Role; the admission policy helm/imm/files/policies/tenant-robot-bindings.yaml
# confines what a member may bind to whom (this namespace's service accounts, the three robot roles).
ROBOT_ADMIN_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "create", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings"],
        "verbs": ["get", "list", "create", "delete"],
    },
]
ROBOT_LABEL = "imm.ai.intel.com/robot"
ROBOT_ROLE_ANNOTATION = "imm.ai.intel.com/robot-role"
DESCRIPTION_ANNOTATION = "imm.ai.intel.com/description"
#: A robot's role: the tenant's own Role (everything a member may do, robots included), or a narrower one.
ROBOT_ROLE_TENANT = "tenant"
ROBOT_ROLE_DEPLOYER = "deployer"
ROBOT_ROLE_READER = "reader"
ROBOT_ROLES = (ROBOT_ROLE_TENANT, ROBOT_ROLE_DEPLOYER, ROBOT_ROLE_READER)
_READ_VERBS = {"get", "list", "watch"}


def _read_only(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    kept = []
    for rule in rules:
        verbs = [verb for verb in rule["verbs"] if verb in _READ_VERBS]
        if verbs:
            kept.append({**rule, "verbs": verbs})
    return kept


#: ``deployer`` manages endpoints and uploads models (an upload is allowed to whoever may create
#: endpoints, models_store/access.py): the tenant's rules without robot management.
DEPLOYER_RULES = TENANT_RULES
#: ``reader`` reads endpoints, models and what the platform made; it writes nothing.
READER_RULES = _read_only(TENANT_RULES)


def robot_role_name(tenant: str, role_choice: str) -> str:
    """The Role a robot of ``role_choice`` is bound to in ``tenant``."""
    return tenant if role_choice == ROBOT_ROLE_TENANT else f"imm-robot-{role_choice}"


def role(tenant: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(tenant, tenant),
        "rules": TENANT_RULES + ROBOT_ADMIN_RULES,
    }


def robot_roles(tenant: str) -> list[dict[str, Any]]:
    """The narrower Roles a robot may be given (subsets of the tenant's Role, so members may bind them)."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(robot_role_name(tenant, choice), tenant),
            "rules": rules,
        }
        for choice, rules in ((ROBOT_ROLE_DEPLOYER, DEPLOYER_RULES), (ROBOT_ROLE_READER, READER_RULES))
    ]


def robot_service_account(
    tenant: str, name: str, description: str, role_choice: str, created_by: str
) -> dict[str, Any]:
    """A robot: a ServiceAccount that mounts no token anywhere (its tokens are asked for, bounded)."""
    metadata = _meta(name, tenant)
    metadata["labels"][ROBOT_LABEL] = "true"
    metadata["annotations"] = {
        DESCRIPTION_ANNOTATION: description,
        ROBOT_ROLE_ANNOTATION: role_choice,
        CREATED_BY_ANNOTATION: created_by,
    }
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata, "automountServiceAccountToken": False}


def robot_binding_name(name: str) -> str:
    return f"imm-robot-{name}"


def robot_role_binding(tenant: str, name: str, role_choice: str, owner_uid: str) -> dict[str, Any]:
    """The robot's rights; owned by its ServiceAccount, so the garbage collector removes it with the robot."""
    metadata = _meta(robot_binding_name(name), tenant)
    metadata["labels"][ROBOT_LABEL] = "true"
    metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "ServiceAccount", "name": name, "uid": owner_uid}]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": robot_role_name(tenant, role_choice),
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": tenant}],
    }


def role_binding(tenant: str, scope: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(tenant, tenant),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": tenant},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group} for group in scope],
    }


def network_policy(tenant: str, ingress_namespace: str) -> dict[str, Any]:
    """Pods of the tenant accept traffic only from their own namespace and the ingress controller."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("tenant-isolation", tenant),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}}},
                    ]
                }
            ],
        },
    }


def _b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def ca_secret(tenant: str, cert_b64: str) -> dict[str, Any]:
    """The tenant's client CA for the inference Ingress's mTLS; `cert_b64` is the request's base64 PEM."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(CA_SECRET, tenant),
        "data": {"ca.crt": cert_b64},
    }


def store_secret(
    tenant: str, *, access_key: str | None, secret_key: str | None, endpoint_url: str, region: str
) -> dict[str, Any]:
    """The object-store settings the serving pods read, under the original IMM's key names.

    The key is the tenant identity's own (read and list of its bucket only), never the platform's.
    ``None`` (no identity backend): the secret carries no key at all, so a serving container that needs
    one fails to start (CreateContainerConfigError) instead of reading models with another key.
    """
    host = endpoint_url.split("://", 1)[-1].rstrip("/")
    data = {
        "minio.endpoint": _b64(host),
        "minio.endpoint_url": _b64(endpoint_url),
        "minio.minio_region": _b64(region),
        "minio.signature_version": _b64("s3v4"),
    }
    if access_key is not None and secret_key is not None:
        data = {"minio.access_key_id": _b64(access_key), "minio.access_secret_key": _b64(secret_key), **data}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(STORE_SECRET, tenant),
        "data": data,
    }


def tls_secret(tenant: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the platform's inference TLS secret (its data and type), owned by the tenant."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": source.get("type", "kubernetes.io/tls"),
        "metadata": _meta(TLS_SECRET, tenant),
        "data": dict(source.get("data") or {}),
    }
