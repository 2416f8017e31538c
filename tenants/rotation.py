"""Rotating a tenant's store key while its endpoints keep serving (issue 18).

The tenant's serving pods read their store key from the tenant's access secret when they start, so a
new key reaches them only by new pods. The rotation therefore issues a new key, writes the secret, then
the namespace's store-key generation (a digest of the new key's id, never the key): the controller puts
it on every pod template of the tenant, so each Deployment rolls (keeping its replicas available, as its
strategy says). Only when every endpoint runs only new pods, all available, is the old key revoked. If
the roll does not finish the old key is kept (both work), the operation fails naming each endpoint and
why, and rotating again resumes that rotation instead of issuing a third key.

Neither the admin nor the API's own identity may read a tenant secret, so which key the secret holds
is known from the namespace's annotations: ``store-key`` names the key written last, and
``store-key-previous`` the one an unfinished rotation still keeps. A key named by neither was issued by
a run that stopped before it annotated; no pod was rolled onto it, so it is revoked at once.

Steps (each recorded; a killed worker's successor resumes after the last one done):
``current-key`` finds the keys; ``new-key`` issues and writes one (noting its id the moment it exists,
so a resumed run revokes a key whose secret half it lost, instead of keeping a third); ``roll`` waits
for the endpoints; ``revoke`` deletes every other key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

from inferencemgmt import kube, objectstore
from inferencemgmt.auth.identity import Identity, identity_from_record
from inferencemgmt.errors import Conflict, ImmError
from inferencemgmt.operations.execution import OperationRun
from inferencemgmt.operations.models import Operation
from servings import selectors as serving_selectors
from tenants import manifests, selectors
from tenants.provisioning import Tenant, secret_put

logger = logging.getLogger(__name__)

KIND = "tenants.rotate_credentials"
ROLL_POLL_SECONDS = 2.0
PREVIOUS_ANNOTATION = "imm.ai.intel.com/store-key-previous"


def key_generation(access_key_id: str) -> str:
    """The store-key generation of a key: a digest of its id (the namespace and pods never show the id)."""
    return hashlib.sha256(access_key_id.encode()).hexdigest()[:16]


def rotation_in_flight(name: str) -> Operation | None:
    """The oldest unfinished rotation of the tenant, if any (a second request gets it, not a new one)."""
    return (
        Operation.objects.filter(kind=KIND, target=name)
        .exclude(state__in=Operation.FINAL_STATES)
        .order_by("created_at")
        .first()
    )


def _annotations(tenant: Tenant) -> dict[str, str]:
    namespace = kube.read_namespace(tenant.identity, tenant.name)
    return dict((namespace.get("metadata") or {}).get("annotations") or {})


def _annotate(tenant: Tenant, values: Mapping[str, str | None]) -> None:
    """Merge-patch namespace annotations (``None`` removes one); the controller watches them."""
    kube.patch_namespace(tenant.identity, tenant.name, {"metadata": {"annotations": dict(values)}})


def _find_keys(tenant: Tenant) -> dict[str, Any]:
    """Which of the identity's keys the secret holds (``current``), which an unfinished rotation keeps
    (``kept``: those pods may still use) and which no pod was given (``orphans``)."""
    keys = objectstore.tenant_keys(tenant.name)
    annotations = _annotations(tenant)
    by_generation = {key_generation(key): key for key in keys}
    current = by_generation.get(annotations.get(manifests.STORE_KEY_ANNOTATION, ""))
    if current is None and len(keys) == 1:
        # Never rotated (the key provisioning or the migration wrote), or rewritten by the migration since:
        # the only key there is is the one the secret holds.
        current = keys[0]
    previous = by_generation.get(annotations.get(PREVIOUS_ANNOTATION, ""))
    if current is None and keys:
        raise Conflict(
            f"Credentials of tenant {tenant.name} cannot be rotated",
            f"its identity holds {len(keys)} keys and none is named by the namespace's "
            f"{manifests.STORE_KEY_ANNOTATION} annotation, so which one its secret holds is unknown; "
            "run `manage.py migrate_tenant_credentials` for it after deleting the identity's keys",
            code="store_key_unknown",
        )
    kept = [previous] if previous is not None and previous != current else []
    orphans = [key for key in keys if key != current and key not in kept]
    return {"current": current, "kept": kept, "orphans": orphans}


def _issue(tenant: Tenant, run: OperationRun, old: str | None) -> str:
    """Issue a key, write it into the secret, then name it on the namespace (which rolls the pods)."""
    issued = run.noted("new-key").get("issued")
    annotations = _annotations(tenant)
    if issued and annotations.get(manifests.STORE_KEY_ANNOTATION) == key_generation(issued):
        return str(issued)  # a killed run got as far as the annotation
    with run.step("new-key") as step:
        if issued:
            # Issued by a killed run that did not annotate: its secret half is lost, and no pod was
            # rolled onto it; revoke it before issuing, so the identity never holds a third key.
            objectstore.tenant_key_delete(tenant.name, str(issued))
        # Not create-or-verify: a tenant being deleted meanwhile must not get its identity back. A
        # tenant without one (made with identities off) gets it from `migrate_tenant_credentials`.
        key = objectstore.tenant_key_create(tenant.name)
        step.note(issued=key.access_key_id)
        try:
            secret_put(tenant, _secret_body(tenant.name, key))
        except ImmError as error:
            if not error.retryable:
                # The secret was not written: the key is in no secret, revoke it now.
                objectstore.tenant_key_delete(tenant.name, key.access_key_id)
            raise
        _annotate(
            tenant,
            {
                manifests.STORE_KEY_ANNOTATION: key_generation(key.access_key_id),
                PREVIOUS_ANNOTATION: key_generation(old) if old else None,
                manifests.STORE_KEY_ROTATED_ANNOTATION: datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    return key.access_key_id


def _secret_body(name: str, key: objectstore.AccessKey) -> dict[str, Any]:
    return manifests.store_secret(
        name,
        access_key=key.access_key_id,
        secret_key=key.secret_access_key,
        endpoint_url=settings.S3_SERVING_ENDPOINT_URL or settings.S3_ENDPOINT_URL,
        region=settings.S3_REGION,
    )


def _wait_rolled(tenant: Tenant, run: OperationRun, new: str) -> list[str]:
    """Wait until every endpoint with a Deployment runs only available pods of the new key's generation."""
    generation = key_generation(new)
    deadline = time.monotonic() + settings.IMM_STORE_KEY_ROTATION_ROLLOUT_SECONDS
    with run.step("roll") as step:
        while True:
            rollouts = serving_selectors.endpoint_rollouts(tenant.identity, tenant.name, generation)
            waiting = {name: why for name, why in sorted(rollouts.items()) if why is not None}
            step.set_total(len(rollouts))
            if not waiting:
                step.note(endpoints=sorted(rollouts))
                return sorted(rollouts)
            stopped = {name: why for name, why in waiting.items() if why.startswith("its rollout stopped")}
            if stopped or time.monotonic() > deadline:
                shown = stopped or waiting
                reasons = "; ".join(f"{name}: {why}" for name, why in list(shown.items())[:10])
                raise ImmError(
                    f"Credentials of tenant {tenant.name} not rotated: its endpoints did not roll",
                    f"{reasons}. The previous key is kept (both keys work) until they do; fix the endpoints "
                    f"and POST /tenants/{tenant.name}/credentials/rotate again to resume this rotation.",
                    code="store_key_rollout_failed",
                    status=504,
                )
            run.heartbeat()
            time.sleep(ROLL_POLL_SECONDS)


def rotate(run: OperationRun) -> dict[str, Any]:
    """The body of the `tenants.rotate_credentials` operation."""
    name = str(run.params["name"])
    tenant = Tenant(name=name, identity=run.identity, operation_id=str(run.operation.pk))
    earlier = rotation_in_flight(name)
    if earlier is not None and earlier.pk != run.operation.pk:
        raise Conflict(
            f"Credentials of tenant {name} are being rotated",
            f"operation {earlier.pk} is rotating them; follow it instead",
            code="store_key_rotation_running",
        )
    found = run.noted("current-key")
    if not run.completed("current-key"):
        with run.step("current-key") as step:
            found = _find_keys(tenant)
            for orphan in found["orphans"]:
                objectstore.tenant_key_delete(name, orphan)
            step.note(**found)
    current, kept = found.get("current"), list(found.get("kept") or [])
    resumed = bool(kept)
    # An unfinished rotation wrote `current` and keeps `kept`: finish it rather than issue a third key.
    new = str(current) if resumed else _issue(tenant, run, current)
    endpoints = _wait_rolled(tenant, run, new) if not run.completed("roll") else run.noted("roll").get("endpoints", [])
    revoked: list[str] = []
    if not run.completed("revoke"):
        with run.step("revoke"):
            for key in objectstore.tenant_keys(name):
                if key != new and objectstore.tenant_key_delete(name, key):
                    revoked.append(key)
            _annotate(tenant, {PREVIOUS_ANNOTATION: None})
    return {"name": name, "accessKeyId": new, "revoked": revoked, "endpoints": endpoints, "resumed": resumed}


# --- periodic rotation ------------------------------------------------------------------------------
def key_age(namespace: dict[str, Any], now: datetime) -> timedelta:
    """How old the tenant's key is: since its last rotation, or since the tenant was made (the namespace's JSON)."""
    metadata = namespace.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    stamp = annotations.get(manifests.STORE_KEY_ROTATED_ANNOTATION)
    since: datetime | None = None
    if stamp:
        try:
            since = datetime.fromisoformat(stamp)
        except ValueError:
            since = None
    if since is None or since.tzinfo is None:
        created = metadata.get("creationTimestamp")
        try:
            since = datetime.fromisoformat(created) if isinstance(created, str) and created else None
        except ValueError:
            since = None
    return now - since if since is not None else timedelta(0)


def tenants_due(now: datetime, max_age: timedelta) -> list[str]:
    """Tenant namespaces whose key is older than ``max_age`` (terminating ones left out)."""
    namespaces = kube.platform_namespaces(label_selector=selectors.tenant_label_selector()).get("items") or []
    return sorted(
        str(ns["metadata"]["name"])
        for ns in namespaces
        if (ns.get("status") or {}).get("phase") != "Terminating" and key_age(ns, now) > max_age
    )


def rotation_identity() -> Identity:
    """Who a periodic rotation acts as: a named platform admin (Kubernetes' audit log shows the name)."""
    return identity_from_record(
        {"username": settings.IMM_STORE_KEY_ROTATION_USER, "groups": [settings.IMM_ADMIN_GROUP]}
    )


def not_in_flight(names: list[str]) -> list[str]:
    """The names without an unfinished rotation (one query)."""
    busy = set(
        Operation.objects.filter(Q(kind=KIND) & Q(target__in=names))
        .exclude(state__in=Operation.FINAL_STATES)
        .values_list("target", flat=True)
    )
    return [name for name in names if name not in busy]


def tenants_due_now(now: datetime) -> list[str]:
    """The tenants a periodic check should start a rotation for: keys older than
    IMM_STORE_KEY_ROTATION_DAYS and no rotation unfinished; none when that is 0 or tenants have no keys."""
    days = settings.IMM_STORE_KEY_ROTATION_DAYS
    if not days or not objectstore.identities_enabled():
        return []
    return not_in_flight(tenants_due(now, timedelta(days=days)))
