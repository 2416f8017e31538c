"""The chart's own rules, checked on the rendered objects (pure): least privilege, pod hardening, resources."""

from __future__ import annotations

from typing import Any

FORBIDDEN_ROLES = {"cluster-admin", "admin", "edit"}


def policy_problems(objects: list[dict[str, Any]]) -> list[str]:
    """What the chart promises beyond schema validity: least privilege and hardened pods."""
    problems: list[str] = []
    for obj in objects:
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        where = f"{kind}/{name}"
        if kind in {"ClusterRole", "Role"}:
            for rule in obj.get("rules") or []:
                for key in ("apiGroups", "resources", "verbs"):
                    if "*" in (rule.get(key) or []):
                        problems.append(f"{where}: wildcard in {key}")
                verbs = set(rule.get("verbs") or [])
                if verbs & {"escalate", "bind"}:
                    problems.append(f"{where}: grants {sorted(verbs & {'escalate', 'bind'})}")
                if "nonResourceURLs" in rule:
                    problems.append(f"{where}: grants non-resource URLs")
        if kind in {"ClusterRoleBinding", "RoleBinding"} and obj["roleRef"]["name"] in FORBIDDEN_ROLES:
            problems.append(f"{where}: binds the built-in role {obj['roleRef']['name']}")
        pod = _pod_spec(obj)
        if pod is None:
            continue
        security = pod.get("securityContext") or {}
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod does not set runAsNonRoot")
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            cname = f"{where} container {container['name']}"
            ctx = container.get("securityContext") or {}
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: root filesystem is writable")
            if ctx.get("privileged"):
                problems.append(f"{cname}: privileged")
            if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{cname}: capabilities not dropped")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(part) or {}):
                    problems.append(f"{cname}: no cpu and memory {part}")
        if kind == "Deployment" and obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "api":
            api = pod["containers"][0]
            if api.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                problems.append(f"{where}: readiness probe is not /readyz")
            if api.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                problems.append(f"{where}: liveness probe is not /healthz")
    return problems


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    if obj.get("kind") == "Pod":
        pod: dict[str, Any] = obj["spec"]
        return pod
    return None
