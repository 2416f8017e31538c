"""kubeconform's schemas from the running cluster's own OpenAPI document (pure functions).

kubeconform would download its schemas from the internet, which is not allowed here and would validate
against another Kubernetes version anyway. Instead the cluster's ``/openapi/v2`` document is turned into
kubeconform's file layout: one self-contained, strict JSON schema per kind
(``<kind>-<group>-<version>.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from devstack.proc import StackError


def api_version_of(gvk: dict[str, str]) -> str:
    return f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]


def schema_filename(api_version: str, kind: str) -> str:
    """kubeconform's ``{{ .ResourceKind }}{{ .KindSuffix }}.json`` for an object's apiVersion and kind."""
    group, _, version = api_version.rpartition("/")
    if group:
        return f"{kind.lower()}-{group.split('.')[0].lower()}-{version.lower()}.json"
    return f"{kind.lower()}-{version.lower()}.json"


def _strict(schema: Any) -> Any:
    """The definition as kubeconform's strict schemas have it: unknown fields refused, and the two
    Kubernetes string formats that YAML may also write as numbers (int-or-string, quantity) widened."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("format") == "int-or-string":
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def _references(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref[len("#/definitions/") :]
        for value in schema.values():
            yield from _references(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _references(item)


def standalone_schemas(openapi: dict[str, Any], wanted: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """``{file name: schema}`` for each wanted (apiVersion, kind), from an OpenAPI v2 document.

    Each schema carries only the definitions its kind reaches, so a file stays small and needs
    nothing else. A wanted kind the cluster does not serve raises: the chart would not install."""
    definitions: dict[str, Any] = openapi["definitions"]
    by_gvk: dict[tuple[str, str], str] = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            by_gvk.setdefault((api_version_of(gvk), gvk["kind"]), name)
    out: dict[str, dict[str, Any]] = {}
    for api_version, kind in sorted(set(wanted)):
        root = by_gvk.get((api_version, kind))
        if root is None:
            raise StackError(f"the cluster serves no {kind} in {api_version}")
        closure: dict[str, Any] = {}
        pending = [root]
        while pending:
            name = pending.pop()
            if name in closure:
                continue
            if name == QUANTITY:
                closure[name] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
                continue
            closure[name] = _strict(copy.deepcopy(definitions[name]))
            pending.extend(_references(definitions[name]))
        out[schema_filename(api_version, kind)] = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$ref": f"#/definitions/{root}",
            "definitions": closure,
        }
    return out


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
