"""Reads of models, after the caller was allowed into the tenant (``access.tenant_access``).

The bucket is listed page by page (1000 keys per request) and never held as raw pages, so a tenant
with 100,000 files is listed in one pass of bounded memory besides the answer itself.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from inferencemgmt import kube, objectstore, paging
from inferencemgmt.auth.identity import Identity
from inferencemgmt.digits import ascii_int
from models_store import access, keys
from models_store.policy import served_versions


def model_list(identity: Identity, tenant: str) -> list[dict[str, Any]]:
    """The documented list: one entry per file, version as a string, directory markers hidden."""
    access.tenant_access(identity, tenant, access.READ)
    return [entry for entry in map(_visible, objectstore.objects_iter(tenant)) if entry is not None]


def tenant_endpoints(identity: Identity, tenant: str) -> list[dict[str, Any]]:
    """The tenant's InferenceEndpoints, read AS the user: ``{"name", "modelName", "modelVersionPolicy"}``."""
    answer = kube.endpoints(identity, tenant)
    endpoints = []
    for item in answer.get("items", []):
        spec = item.get("spec") or {}
        endpoints.append(
            {
                "name": str(item.get("metadata", {}).get("name", "")),
                "modelName": spec.get("modelName"),
                "modelVersionPolicy": spec.get("modelVersionPolicy"),
            }
        )
    return endpoints


def numeric_versions(versions: Any) -> list[int]:
    return sorted(number for number in map(ascii_int, versions) if number is not None)


def _version_order(version: str) -> tuple[bool, int, str]:
    """Numeric versions first, by value; any other directory name after them, by name."""
    number = ascii_int(version)
    return (number is None, number or 0, version)


def model_versions(tenant: str, model: str) -> list[int]:
    """Versions of ``model`` in the bucket: its version directories, listed without walking the files."""
    prefixes = objectstore.common_prefixes(tenant, f"{model}/")
    return numeric_versions(prefix[len(model) + 1 :].rstrip("/") for prefix in prefixes)


def endpoints_serving(endpoints: list[dict[str, Any]], model: str, version: int, available: list[int]) -> list[str]:
    """Names of the endpoints whose model is ``model`` and whose version policy loads ``version``."""
    return sorted(
        endpoint["name"]
        for endpoint in endpoints
        if endpoint["modelName"] == model and version in served_versions(endpoint["modelVersionPolicy"], available)
    )


def _group(files: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files as models → versions → files, with sizes and the endpoints that serve each version."""
    tree: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for entry in files:
        tree[entry["name"]][entry["version"]].append({"path": entry["path"], "size": entry["size"]})
    grouped = []
    for name in sorted(tree):
        available = numeric_versions(tree[name])
        versions = []
        for version in sorted(tree[name], key=_version_order):
            version_files = tree[name][version]
            number = ascii_int(version)
            serving = endpoints_serving(endpoints, name, number, available) if number is not None else []
            versions.append(
                {
                    "version": version,
                    "size": sum(f["size"] for f in version_files),
                    "files": version_files,
                    "endpoints": serving,
                }
            )
        grouped.append({"name": name, "size": sum(v["size"] for v in versions), "versions": versions})
    return grouped


def model_grouped(identity: Identity, tenant: str) -> list[dict[str, Any]]:
    """Models → versions → files, with sizes and the endpoints that serve each version (new view)."""
    return _group(model_list(identity, tenant), tenant_endpoints(identity, tenant))


def model_page_scope(identity: Identity, tenant: str, view: str) -> str:
    return paging.scope_of("models", identity.username, tenant=tenant, view=view)


def _visible(item: dict[str, Any]) -> dict[str, Any] | None:
    parts = keys.split_key(item["key"])
    if item["size"] == 0 or parts is None:
        return None
    return {"path": item["key"], "name": parts[0], "version": parts[1], "size": item["size"]}


def model_page(identity: Identity, tenant: str, page: paging.PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the documented file list (by key) and the next page's token.

    The bucket is read from after the last key given (S3 ``StartAfter``, a keyset cursor), and
    only as far as the page needs: one more file is looked for to know whether a next page exists.
    """
    access.tenant_access(identity, tenant, access.READ)
    after = str((page.position or {}).get("a") or "")
    found: list[dict[str, Any]] = []
    for item in objectstore.objects_iter(tenant, start_after=after):
        entry = _visible(item)
        if entry is None:
            continue
        if len(found) == page.limit:
            return found, page.token({"a": found[-1]["path"]})
        found.append(entry)
    return found, None


def model_grouped_page(
    identity: Identity, tenant: str, page: paging.PageRequest
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the grouped view: ``page.limit`` models (by name) with all their versions and files.

    The models are the bucket's top-level "directories" read from after the last model given; the
    files are then read under each model of the page only, and the endpoints once.
    """
    access.tenant_access(identity, tenant, access.READ)
    after = str((page.position or {}).get("a") or "")
    # Every key of model ``m`` starts "m/" and "/" sorts just before "0": starting after "m0" skips
    # exactly model m's keys (a top-level key named "m0" is no model's).
    start = f"{after}0" if after else ""
    names: list[str] = []
    following: str | None = None
    for prefix in objectstore.common_prefixes_iter(tenant, start_after=start):
        if len(names) == page.limit:
            following = page.token({"a": names[-1]})
            break
        names.append(prefix.rstrip("/"))
    files = [
        entry
        for name in names
        for entry in map(_visible, objectstore.objects_iter(tenant, f"{name}/"))
        if entry is not None
    ]
    return _group(files, tenant_endpoints(identity, tenant) if files else []), following
