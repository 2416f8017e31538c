"""Reads of serving templates, as the caller (Kubernetes RBAC lets every authenticated user read them).

Only ConfigMaps labelled as serving templates count: the original listed every ConfigMap in its
namespace, so any unrelated ConfigMap showed up as a "serving".
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from inferencemgmt import kube, paging
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound
from servings.catalogue import TEMPLATE_LABEL, TEMPLATE_LABEL_SELECTOR
from servings.controller.rendering import STORE_KEY_ANNOTATION

# What Kubernetes accepts as a ConfigMap name (a DNS-1123 subdomain, at most 253 characters).
CONFIGMAP_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
CONFIGMAP_NAME_MAX = 253


def serving_not_found(name: str) -> NotFound:
    return NotFound(description=f"Serving {name} does not exist", code="serving_not_found")


def serving_list(identity: Identity) -> list[str]:
    """Names of every serving template, sorted (all pages: for the console's choices)."""
    return paging.all_pages(lambda page: serving_page(identity, page), serving_page_scope(identity))


def serving_page_scope(identity: Identity) -> str:
    return paging.scope_of("servings", identity.username)


def serving_page(identity: Identity, page: paging.PageRequest) -> tuple[list[str], str | None]:
    """One page of serving template names (sorted, as the API server lists them) and the next token."""
    configmaps = kube.config_maps(
        identity,
        settings.SERVING_TEMPLATES_NAMESPACE,
        label_selector=TEMPLATE_LABEL_SELECTOR,
        limit=page.limit,
        continue_token=page.kube_continue,
    )
    names = sorted(str(item["metadata"]["name"]) for item in configmaps.get("items") or [])
    return names, page.kube_token(configmaps.get("metadata"))


def serving_configmap(identity: Identity, name: str) -> dict[str, Any]:
    """The ConfigMap of serving ``name``; 404 when it is absent or not labelled as a template.

    A name no ConfigMap can have is 404 before any call: it becomes a segment of a Kubernetes URL,
    where ``..`` would have read the templates' namespace itself (found by the hostile-names test).
    """
    if len(name) > CONFIGMAP_NAME_MAX or not CONFIGMAP_NAME.fullmatch(name):
        raise serving_not_found(name)
    try:
        configmap = kube.read_config_map(identity, settings.SERVING_TEMPLATES_NAMESPACE, name)
    except NotFound:
        raise serving_not_found(name) from None
    if ((configmap.get("metadata") or {}).get("labels") or {}).get(TEMPLATE_LABEL) != "true":
        raise serving_not_found(name)
    return configmap


def serving_get(identity: Identity, name: str) -> dict[str, str] | None:
    """The template texts by data key (``configMap.tmpl``, ...), or None for a ConfigMap without data."""
    data = serving_configmap(identity, name).get("data")
    return dict(data) if data is not None else None


def serving_users(identity: Identity, name: str) -> list[str]:
    """``<tenant>/<endpoint>`` of every endpoint that uses serving ``name`` (cluster-wide)."""
    endpoints = kube.endpoints_everywhere(identity)
    return sorted(
        f"{item['metadata']['namespace']}/{item['metadata']['name']}"
        for item in endpoints.get("items", [])
        if item.get("spec", {}).get("servingName") == name
    )


def serving_exists(identity: Identity, name: str) -> bool:
    """For endpoint creation: an unknown ``servingName`` is a 404 before anything is written
    (docs/compatibility.md, Endpoints)."""
    try:
        serving_configmap(identity, name)
    except NotFound:
        return False
    return True


def _rollout_problem(deployment: dict[str, Any], store_key: str) -> str | None:
    """Why the Deployment's pods are not all on ``store_key`` and available yet (None: they are).

    The rule of ``kubectl rollout status``: the controller saw the newest spec, every wanted replica
    is updated and available, and no old replica is left (an old pod still holds the previous key).
    """
    metadata, spec, status = deployment.get("metadata", {}), deployment.get("spec", {}), deployment.get("status") or {}
    annotations = (spec.get("template", {}).get("metadata") or {}).get("annotations") or {}
    if annotations.get(STORE_KEY_ANNOTATION) != store_key:
        return "the controller has not rendered the new store key into its pod template yet"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return f"its rollout stopped: {condition.get('message') or 'progress deadline exceeded'}"
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return "its newest spec was not observed yet"
    wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated, total = int(status.get("updatedReplicas") or 0), int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if total > updated:
        return f"{total - updated} old replicas still running"
    if available < updated:
        return f"{available} of {updated} updated replicas available"
    return None


def endpoint_rollouts(identity: Identity, tenant: str, store_key: str) -> dict[str, str | None]:
    """For each endpoint of ``tenant`` that has a Deployment: None when all its pods run with the
    store-key generation ``store_key`` and are available, else why not (the key rotation waits on it).

    An endpoint without a Deployment has no pod holding any key, so it is left out.
    """
    crs = kube.endpoints(identity, tenant)
    found: dict[str, str | None] = {}
    for cr in crs.get("items") or []:
        name = str(cr.get("spec", {}).get("endpointName") or cr["metadata"]["name"])
        try:
            deployment = kube.read_deployment(identity, tenant, name)
        except NotFound:
            continue
        found[name] = _rollout_problem(deployment, store_key)
    return found
