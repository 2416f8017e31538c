"""Operations on serving templates (platform admins), each acting as the caller through kube.py.

A template is test-rendered against a sample endpoint before it is saved: a broken template would
otherwise only show up later, as a RenderFailed condition on every endpoint that picks it. The
rendered pod template must also pass the restricted Pod Security Standards profile: its pods are
created in tenant namespaces by the controller, not by the admin who wrote it.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from django.conf import settings

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict, ValidationFailed
from servings import selectors
from servings.catalogue import PARTS, data_key, serving_template_configmap
from servings.controller.rendering import Platform, RenderError, ServingTemplate, TemplateForbidden, render_sample

# A DNS-1123 label (it names a ConfigMap) longer than 3 characters, as the original chart required.
SERVING_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{2,61}[a-z0-9])$")
REQUIRED_KEYS = tuple(data_key(part) for part in PARTS)


def platform() -> Platform:
    https = urlparse(settings.S3_ENDPOINT_URL).scheme == "https"
    return Platform(
        domain=settings.PLATFORM_DOMAIN,
        s3_use_https=https,
        s3_verify_ssl=https,
        image_registry=settings.SERVING_IMAGE_REGISTRY,
        serving_images=dict(settings.SERVING_IMAGES),
    )


def serving_validate(name: str, data: object) -> dict[str, str]:
    """Check the name and the four template texts, and render them against the sample endpoint."""
    if not SERVING_NAME.match(name):
        raise ValidationFailed(
            description="name: must be 4-63 lower-case letters, digits or '-', starting and ending alphanumeric",
            code="serving_invalid_name",
        )
    if not isinstance(data, dict):
        raise ValidationFailed(description=f"body: must be an object with the keys {', '.join(REQUIRED_KEYS)}")
    for key in REQUIRED_KEYS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValidationFailed(description=f"{key}: a non-empty template text is required")
    unknown = sorted(set(data) - set(REQUIRED_KEYS))
    if unknown:
        raise ValidationFailed(description=f"{unknown[0]}: unknown key; expected {', '.join(REQUIRED_KEYS)}")
    texts = {key: str(data[key]) for key in REQUIRED_KEYS}
    try:
        render_sample(ServingTemplate(name, texts), platform())
    except TemplateForbidden as exc:
        # The pods would run in tenant namespaces, applied with the controller's rights: only what the
        # restricted Pod Security Standards profile allows may be stored (servings/podsecurity.py).
        raise ValidationFailed(description=str(exc), code="serving_template_forbidden") from None
    except RenderError as exc:
        raise ValidationFailed(
            "Failed data validation",
            f"template does not render against the sample endpoint: {exc}",
            code="serving_render_failed",
        ) from None
    return texts


def serving_create(identity: Identity, name: str, data: object) -> None:
    texts = serving_validate(name, data)
    body = serving_template_configmap(name, texts, settings.SERVING_TEMPLATES_NAMESPACE)
    try:
        kube.create_config_map(identity, settings.SERVING_TEMPLATES_NAMESPACE, body)
    except Conflict:
        raise Conflict("Conflict", f"Serving {name} already exists", code="serving_already_exists") from None


def serving_replace(identity: Identity, name: str, data: object) -> None:
    texts = serving_validate(name, data)
    current = selectors.serving_configmap(identity, name)
    body = serving_template_configmap(name, texts, settings.SERVING_TEMPLATES_NAMESPACE)
    # Optimistic concurrency: a concurrent change makes this a 409, never a lost update.
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.replace_config_map(identity, settings.SERVING_TEMPLATES_NAMESPACE, name, body)


def serving_delete(identity: Identity, name: str) -> None:
    """Delete a template no endpoint uses (the controller could no longer render those that do)."""
    selectors.serving_configmap(identity, name)
    users = selectors.serving_users(identity, name)
    if users:
        shown = ", ".join(users[:5]) + (", ..." if len(users) > 5 else "")
        raise Conflict(
            "Conflict", f"Serving {name} is used by {len(users)} endpoint(s): {shown}", code="serving_in_use"
        )
    kube.delete_config_map(identity, settings.SERVING_TEMPLATES_NAMESPACE, name)
