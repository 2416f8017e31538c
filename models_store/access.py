"""May this user act in this tenant? Asked of Kubernetes before any object-store call.

Object-store calls use the platform's credentials (docs/decisions/0002-impersonation.md), so nothing
upstream would stop a user from reading or writing another tenant's bucket: the check must happen here. Kubernetes RBAC
stays the one authority: a SelfSubjectAccessReview made AS the user asks whether they may manage
InferenceEndpoints in the tenant's namespace (what the tenant Role grants its scope group, and the
platform-admin ClusterRole grants admins). The answer is cached briefly per (user, groups, tenant,
verb), because an upload asks once per part.

The tenant is looked up first, as on every tenant route (``tenants.selectors.tenant_required``):
tenant names are not secret in this design, so an unknown tenant is 404 for everyone signed in and
an existing tenant the caller may not act in is 403 (docs/api-conventions.md, "Tenants in the path").
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from inferencemgmt import kube, resources
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Forbidden
from tenants.selectors import tenant_namespace, tenant_not_found

READ = "list"
WRITE = "create"

_lock = threading.Lock()
_answers: dict[tuple[str, tuple[str, ...], str, str], tuple[float, str]] = {}
_MAX_ENTRIES = 10_000


@receiver(setting_changed)
def _forget(**kwargs: object) -> None:
    if kwargs.get("setting") == "IMM_MODEL_ACCESS_CACHE_SECONDS":
        access_cache_clear()


def access_cache_clear() -> None:
    with _lock:
        _answers.clear()


def _review(identity: Identity, tenant: str, verb: str) -> bool:
    return kube.access_allowed(identity, verb=verb, resource=resources.PLURAL, namespace=tenant, group=resources.GROUP)


def _answer(identity: Identity, tenant: str, verb: str) -> str:
    if tenant_namespace(tenant) is None:
        return "missing"
    return "ok" if _review(identity, tenant, verb) else "forbidden"


def tenant_access(identity: Identity, tenant: str, verb: str = WRITE) -> None:
    """404 when ``tenant`` does not exist, else 403 unless ``identity`` may act in it.

    "ok" and "forbidden" are cached for ``IMM_MODEL_ACCESS_CACHE_SECONDS``; "missing" is not, so a
    tenant created a moment ago is found at once.
    """
    key = (identity.username, tuple(sorted(identity.groups)), tenant, verb)
    ttl = settings.IMM_MODEL_ACCESS_CACHE_SECONDS
    now = time.monotonic()
    with _lock:
        cached = _answers.get(key)
    if cached is not None and now - cached[0] < ttl:
        answer = cached[1]
    else:
        answer = _answer(identity, tenant, verb)
        if ttl > 0 and answer != "missing":
            with _lock:
                if len(_answers) >= _MAX_ENTRIES:
                    _answers.clear()
                _answers[key] = (now, answer)
    if answer == "forbidden":
        raise Forbidden(description=f"You may not manage models of tenant {tenant}", code="tenant_forbidden")
    if answer == "missing":
        raise tenant_not_found(tenant)
