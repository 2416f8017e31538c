"""The serving templates shipped with the product, and their ConfigMap form.

The templates live as files under ``helm/imm/files/serving-templates/<name>/<part>.yaml.j2`` so that
they are reviewed and versioned like code. The Helm chart is their one source, as it is for the CRD
and the RBAC rules: the chart turns these same files into ConfigMaps (``.Files.Glob``; Helm cannot
read outside the chart directory), and the devstack and the tests read them here. Clusters hold them
as ConfigMaps in the servings namespace (``SERVING_TEMPLATES_NAMESPACE``), one per serving, labelled
so that the API and the controller never mistake another ConfigMap for a template (the original
listed every ConfigMap). The data keys keep the original's names (``configMap.tmpl``,
``deployment.tmpl``, ...) so that ``GET /servings/<name>`` answers with the documented keys.

This module imports neither Django nor Jinja2: the devstack bootstrap can call
:func:`serving_template_configmaps` with the standard library only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "helm" / "imm" / "files" / "serving-templates"

#: The four parts of a serving, in apply order, each with the kind and apiVersion it must render.
PARTS: dict[str, tuple[str, str]] = {
    "configMap": ("v1", "ConfigMap"),
    "service": ("v1", "Service"),
    "deployment": ("apps/v1", "Deployment"),
    "ingress": ("networking.k8s.io/v1", "Ingress"),
}

#: Label that marks a ConfigMap in the servings namespace as a serving template.
TEMPLATE_LABEL = "ai.intel.com/serving-template"
TEMPLATE_LABEL_SELECTOR = f"{TEMPLATE_LABEL}=true"
PART_OF_LABELS = {"app.kubernetes.io/part-of": "inference-model-manager"}


def data_key(part: str) -> str:
    """The ConfigMap data key of a part: the original's ``<part>.tmpl``."""
    return f"{part}.tmpl"


def shipped_templates(directory: Path = TEMPLATES_DIR) -> dict[str, dict[str, str]]:
    """Every shipped serving as ``{name: {data key: template text}}``, read from the repository."""
    servings: dict[str, dict[str, str]] = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        servings[folder.name] = {data_key(part): (folder / f"{part}.yaml.j2").read_text() for part in PARTS}
    return servings


def serving_template_configmap(name: str, data: dict[str, str], namespace: str) -> dict[str, Any]:
    """The ConfigMap that holds one serving template (pure: same input, same manifest)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {TEMPLATE_LABEL: "true", **PART_OF_LABELS},
        },
        "data": dict(data),
    }


def serving_template_configmaps(namespace: str, directory: Path = TEMPLATES_DIR) -> list[dict[str, Any]]:
    """The ConfigMaps the devstack and the chart install: one per shipped serving."""
    return [serving_template_configmap(name, data, namespace) for name, data in shipped_templates(directory).items()]
