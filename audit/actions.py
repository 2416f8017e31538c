"""Which requests are audited and under what name: one table keyed by route name, method and (for
the console's one multi-action route) its ``action`` path segment.

A value source is ``"kw:<path argument>"``, ``"body:<JSON field>"`` (the request body, read only for
routes that name one and only up to ``IMM_MAX_JSON_BODY_BYTES``) or ``"form:<form field>"``. The
test ``audit/tests/test_actions.py`` fails when a route that takes a writing method is neither here
nor in ``NOT_AUDITED``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    #: Where the tenant's name comes from; None for platform-wide objects (serving templates).
    tenant: str | None = "kw:tenant"
    #: Where the parts of the target come from, joined with "/" (the tenant is not repeated).
    target: tuple[str, ...] = ()


_ENDPOINT = ("kw:name",)
_MODEL_BODY = ("body:modelName", "body:modelVersion")

#: (route name, method, console action segment or "") -> Action.
ACTIONS: dict[tuple[str, str, str], Action] = {
    # --- API: tenants and their robots (robot tokens are the tenants' credentials) ---
    ("tenant-list", "POST", ""): Action("tenant.create", "body:name"),
    ("tenant-list", "DELETE", ""): Action("tenant.delete", "body:name"),
    ("tenant-detail", "PATCH", ""): Action("tenant.update", "kw:name"),
    ("tenant-detail", "DELETE", ""): Action("tenant.delete", "kw:name"),
    ("tenant-credentials-rotate", "POST", ""): Action("tenant.credentials_rotate", "kw:name"),
    ("robot-list", "POST", ""): Action("robot.create", target=("body:name",)),
    ("robot-detail", "DELETE", ""): Action("robot.delete", target=("kw:name",)),
    ("robot-tokens", "POST", ""): Action("robot.token_create", target=("kw:name",)),
    # --- API: endpoints ---
    ("endpoint-list", "POST", ""): Action("endpoint.create", target=("body:endpointName",)),
    ("endpoint-list", "DELETE", ""): Action("endpoint.delete", target=("body:endpointName",)),
    ("endpoint-detail", "PATCH", ""): Action("endpoint.update", target=_ENDPOINT),
    ("endpoint-detail", "DELETE", ""): Action("endpoint.delete", target=_ENDPOINT),
    ("endpoint-replicas", "PATCH", ""): Action("endpoint.scale", target=_ENDPOINT),
    ("endpoint-pause", "POST", ""): Action("endpoint.pause", target=_ENDPOINT),
    ("endpoint-resume", "POST", ""): Action("endpoint.resume", target=_ENDPOINT),
    # --- API: models and uploads ---
    ("model-list", "DELETE", ""): Action("model.delete", target=_MODEL_BODY),
    ("model-extract", "POST", ""): Action("model.extract", target=_MODEL_BODY),
    ("model-import", "POST", ""): Action("model.import", target=_MODEL_BODY),
    ("upload-start", "POST", ""): Action("upload.start", target=(*_MODEL_BODY, "body:fileName")),
    ("upload-done", "POST", ""): Action("upload.done", target=(*_MODEL_BODY, "body:fileName")),
    ("upload-abort", "POST", ""): Action("upload.abort", target=(*_MODEL_BODY, "body:fileName")),
    ("upload-dir", "POST", ""): Action("upload.directory", target=(*_MODEL_BODY, "body:key")),
    ("direct-upload-list", "POST", ""): Action("upload.direct_start", target=(*_MODEL_BODY, "body:path")),
    ("direct-upload", "DELETE", ""): Action("upload.direct_abort", target=("kw:upload_id",)),
    ("direct-upload-complete", "POST", ""): Action("upload.direct_complete", target=("kw:upload_id",)),
    # --- API: serving templates (platform-wide) ---
    ("serving-detail", "POST", ""): Action("serving.create", None, ("kw:name",)),
    ("serving-detail", "PUT", ""): Action("serving.replace", None, ("kw:name",)),
    ("serving-detail", "DELETE", ""): Action("serving.delete", None, ("kw:name",)),
    # --- Console ---
    ("console-tenant-create", "POST", ""): Action("tenant.create", "form:name"),
    ("console-tenant-delete", "POST", ""): Action("tenant.delete", "kw:name"),
    ("console-endpoint-create", "POST", ""): Action("endpoint.create", target=("form:endpointName",)),
    ("console-endpoint-action", "POST", "scale"): Action("endpoint.scale", target=_ENDPOINT),
    ("console-endpoint-action", "POST", "pause"): Action("endpoint.pause", target=_ENDPOINT),
    ("console-endpoint-action", "POST", "resume"): Action("endpoint.resume", target=_ENDPOINT),
    ("console-endpoint-action", "POST", "edit"): Action("endpoint.update", target=_ENDPOINT),
    ("console-endpoint-action", "POST", "delete"): Action("endpoint.delete", target=_ENDPOINT),
    ("console-model-delete", "POST", ""): Action("model.delete", target=("kw:name", "kw:version")),
    ("console-serving", "POST", ""): Action("serving.replace", None, ("kw:name",)),
}

#: Writing routes deliberately left out, with the reason (the coverage test reads this too).
NOT_AUDITED: dict[tuple[str, str], str] = {
    # One request per part of a multi-gigabyte file: the upload's start and done are audited.
    ("upload-part", "PUT"): "a part of an upload whose start and completion are audited",
    # Signing in changes nothing on the platform (the identity provider logs sign-ins).
    ("authenticate-token", "POST"): "a sign-in (token exchange)",
    ("oidc_logout", "POST"): "a sign-out of the console",
}

#: The console's multi-action route; its ``action`` path segment is part of the key.
VARIANT_ARGUMENT = "action"


def action_for(route: str, method: str, kwargs: dict[str, object]) -> Action | None:
    """The table's entry for a request, or None when it is not audited."""
    variant = kwargs.get(VARIANT_ARGUMENT, "")
    return ACTIONS.get((route, method, variant if isinstance(variant, str) else ""))
