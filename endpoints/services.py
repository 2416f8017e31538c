"""Operations on endpoints, named <entity>_<verb>, each acting AS the caller through ``kube.py``.

Every check that can refuse a request (tenant, the caller's rights, quota compliance, the serving)
runs before the one write, so a refused request leaves nothing behind. The number of endpoints is
capped by the tenant's ResourceQuota object count, which the API server enforces atomically on
create: two parallel creates can never both take the last slot (the original counted Deployments,
then created, and raced). The inference host is claimed just as atomically (``endpoints.hosts``).

The API server charges that count when it admits a create, before storing the object, and never
gives the charge back when the store then refuses (the name exists): the count stays too high until
the quota controller recounts (every 5 minutes by default). So a create is never sent for a name
that exists, and a "quantity limit" refusal is checked against the endpoints that really exist:
when there is room, the stale count is corrected and the create sent again. The design, its
guarantees and its one residual window are in docs/endpoint-quota.md.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from decimal import Decimal
from typing import Any, TypeVar

from endpoints import hosts, selectors
from endpoints.selectors import endpoint_not_found
from endpoints.spec import (
    PAUSED_REPLICAS_ANNOTATION,
    check_autoscaling_quota,
    check_quota_compliance,
    endpoint_manifest,
    endpoint_url,
    flatten_resources,
    split_resources,
)
from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import KUBERNETES, Conflict, Forbidden, ImmError, NotFound, UpstreamUnavailable
from inferencemgmt.quantities import quantity_value
from inferencemgmt.resources import QUOTA_COUNT_KEY as ENDPOINT_COUNT_KEY
from servings import selectors as serving_selectors
from tenants.selectors import tenant_required

logger = logging.getLogger(__name__)

# Right after a tenant is made, the quota controller may not have counted its ResourceQuota yet; the
# API server then refuses every create ("status unknown for quota"). That lasts a moment, so wait.
QUOTA_UNKNOWN_ATTEMPTS = 10
QUOTA_UNKNOWN_PAUSE_SECONDS = 0.5
# Read-modify-write (scale, pause/resume, a checked update) under optimistic concurrency: a concurrent
# change means read and decide again. Between tries a random pause of up to CONFLICT_PAUSE_SECONDS,
# the ceiling doubling each time (20 ms, 40 ms, ... 1.28 s: 2.5 s at most, 1.3 s on average, when all
# eight tries lose): writers racing on one endpoint spread out instead of colliding again in lockstep.
# With five tries and no pauses, 50 clients scaling one endpoint now and then lost five races in a
# row (a 409 to the user; benchmarks/api_load.py).
CONFLICT_ATTEMPTS = 8
CONFLICT_PAUSE_SECONDS = 0.02
# A recount whose correction of the quota lost a race to another charge starts over at most this often.
RECOUNT_ATTEMPTS = 5
# A create refused for the endpoint count is sent again after each recount that found room; more
# refusals than this means other creates keep taking the room, and the caller is told to retry.
QUOTA_REFUSAL_ATTEMPTS = 5
# A create the API server charged before the quota was read is stored a few milliseconds later; the
# recount waits this long between reading the quota and counting, so it never misses such a create
# (which would let the tenant go over its limit). Only a refusal below the limit pays it.
RECOUNT_SETTLE_SECONDS = 1.0

#: Given the CR, the replicas to set and the value of the paused-replicas annotation (None: remove it).
Decision = Callable[[Mapping[str, Any]], tuple[int, str | None]]
_T = TypeVar("_T")


class _Stale(Exception):
    """A write conditional on the resourceVersion read lost a race (Kubernetes answered 409)."""

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.description)
        self.conflict = conflict


def _until_unchanged(attempt: Callable[[], _T]) -> _T:
    """Run ``attempt`` (read, decide, write carrying the resourceVersion read) until it wins its race.

    ``attempt`` raises ``_Stale`` for a lost race; every other error (a refusal the decision made on
    the fresh object, a 404) passes through at once. The pauses between tries are random and grow
    (``CONFLICT_PAUSE_SECONDS``); after ``CONFLICT_ATTEMPTS`` lost races the last 409 is the answer.
    """
    for tries in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return attempt()
        except _Stale as stale:
            if tries == CONFLICT_ATTEMPTS:
                raise stale.conflict from None
            # Not a secret: jitter only spreads the retries of racing writers.
            time.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS * 2 ** (tries - 1)))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover


def quantity_limit_reached() -> Conflict:
    return Conflict(
        "409 Conflict", "Endpoints have reached the quantity limit", code="endpoints_quantity_limit_reached"
    )


def endpoint_exists_error(name: str) -> Conflict:
    return Conflict("409 Conflict", f"Endpoint {name} already exists", code="endpoint_already_exists")


def endpoint_autoscaled_error(name: str) -> Conflict:
    """Manual scaling of an autoscaled endpoint is refused, not silently undone by the HPA a moment
    later; the caller removes autoscaling (PATCH ``autoscaling: null``) or changes its bounds."""
    return Conflict(
        "409 Conflict",
        f"Endpoint {name} is autoscaled: its HorizontalPodAutoscaler sets the replicas. Change minReplicas/"
        'maxReplicas, or remove autoscaling ("autoscaling": null), to scale it by hand',
        code="endpoint_autoscaled",
    )


class _CountRefused(Exception):
    """The API server's quota admission refused a create for the endpoint count (to be re-checked)."""


def _create_once(identity: Identity, tenant: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    for attempt in range(QUOTA_UNKNOWN_ATTEMPTS):
        try:
            kube.create_endpoint(identity, tenant, body)
            return
        except Conflict:
            raise endpoint_exists_error(name) from None
        except Forbidden as exc:
            message = exc.description or ""
            if "exceeded quota" in message and ENDPOINT_COUNT_KEY in message:
                raise _CountRefused from None
            if "status unknown for quota" not in message:
                raise
            if attempt + 1 == QUOTA_UNKNOWN_ATTEMPTS:
                raise UpstreamUnavailable(
                    KUBERNETES,
                    f"the quota of tenant {tenant} has not been counted yet; retry in a moment",
                    retry_after=2,
                    code="endpoint_quota_not_counted",
                ) from None
            time.sleep(QUOTA_UNKNOWN_PAUSE_SECONDS)


def _count_contended(tenant: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        KUBERNETES,
        f"the endpoint count of tenant {tenant} kept changing while it was being checked; retry in a moment",
        retry_after=2,
        code="endpoint_count_contended",
    )


def _count_of(values: Mapping[str, Any] | None) -> Decimal | None:
    value = (values or {}).get(ENDPOINT_COUNT_KEY)
    return None if value is None else quantity_value(str(value))


def _correct_used(tenant: str, quota: dict[str, Any], count: int) -> None:
    """Write the real count into the quota's ``status.used``, only if the quota is unchanged since it was read.

    The write carries the resourceVersion read, so a charge the API server made meanwhile (or
    another correction) makes it a 409 and nothing is lost. It is made with the management API's
    own identity: no tenant user may write quota status, or they could lift their own limit.
    """
    # Items of a list carry no apiVersion/kind of their own.
    corrected = {**copy.deepcopy(quota), "apiVersion": "v1", "kind": "ResourceQuota"}
    corrected.setdefault("status", {}).setdefault("used", {})[ENDPOINT_COUNT_KEY] = str(count)
    try:
        kube.platform_replace_resource_quota_status(tenant, quota["metadata"]["name"], corrected)
    except Forbidden:
        raise UpstreamUnavailable(
            KUBERNETES,
            f"the quota of tenant {tenant} counts more endpoints than exist ({count}) and the management API "
            "may not correct it (it needs 'update' on resourcequotas/status); Kubernetes recounts within minutes",
            retry_after=30,
            code="endpoint_quota_not_correctable",
        ) from None


def _room_after_recount(identity: Identity, tenant: str) -> bool:
    """After a count refusal: True when there is room for one more endpoint (the count was stale and
    is now corrected), False when the tenant really holds its limit.

    The quota is read first, then (after ``RECOUNT_SETTLE_SECONDS``) the endpoints are counted: every
    charge in the quota read belongs to an endpoint stored by then or to a create that failed, and
    every later charge changes the quota's resourceVersion, which fails the correction (a 409) and
    starts the check again. So the correction only ever removes charges of failed creates.
    """
    for _ in range(RECOUNT_ATTEMPTS):
        quotas = [
            quota
            for quota in selectors.resource_quotas(identity, tenant)
            if ENDPOINT_COUNT_KEY in ((quota.get("spec") or {}).get("hard") or {})
        ]
        full: list[tuple[dict[str, Any], Decimal]] = []
        for quota in quotas:
            hard, used = _count_of(quota["spec"]["hard"]), _count_of((quota.get("status") or {}).get("used"))
            if hard is not None and used is not None and used >= hard:
                full.append((quota, hard))
        if not full:
            return True  # corrected meanwhile (by another request or the quota controller)
        limit = min(hard for _, hard in full)
        if selectors.endpoint_count(identity, tenant) >= limit:
            return False
        time.sleep(RECOUNT_SETTLE_SECONDS)
        count = selectors.endpoint_count(identity, tenant)
        if count >= limit:
            return False
        try:
            for quota, _ in full:
                _correct_used(tenant, quota, count)
        except Conflict:
            continue
        return True
    raise _count_contended(tenant)


def _create(identity: Identity, tenant: str, body: dict[str, Any]) -> None:
    """Create the CR; a count refusal is answered only once the real count confirms it."""
    for _ in range(QUOTA_REFUSAL_ATTEMPTS):
        try:
            _create_once(identity, tenant, body)
            return
        except _CountRefused:
            # Once the quota is full, Kubernetes refuses a create of an existing name for the count
            # (kubernetes/kubernetes#106842): that name's truth is "already exists", no recount needed.
            if selectors.endpoint_exists(identity, tenant, body["metadata"]["name"]):
                raise endpoint_exists_error(body["metadata"]["name"]) from None
            if not _room_after_recount(identity, tenant):
                raise quantity_limit_reached() from None
    raise _count_contended(tenant)


def endpoint_create(
    identity: Identity,
    tenant: str,
    *,
    endpoint_name: str,
    model_name: str,
    subject_name: str,
    serving_name: str,
    model_version_policy: str,
    replicas: int | None = None,
    resources: Mapping[str, str] | None = None,
    autoscaling: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Create the CR; ``{"url", "warning"}`` as documented. The body was validated and normalised by the view."""
    tenant_required(tenant)
    # Read as the caller: an outsider is refused (403) here, before anything else is revealed.
    hard = selectors.quota_hard(identity, tenant)
    check_quota_compliance(tenant, hard, resources)
    if autoscaling is not None:
        check_autoscaling_quota(tenant, hard, resources, autoscaling)
    serving_selectors.serving_configmap(identity, serving_name)
    body = endpoint_manifest(
        tenant,
        endpoint_name=endpoint_name,
        model_name=model_name,
        subject_name=subject_name,
        serving_name=serving_name,
        model_version_policy=model_version_policy,
        replicas=replicas,
        resources=resources,
        autoscaling=autoscaling,
    )
    # A create of an existing name would be charged to the quota and then refused: never send one.
    # (Two parallel creates of one new name can still both be sent; the loser's charge is corrected
    # by the recount of the next count refusal.)
    if selectors.endpoint_exists(identity, tenant, endpoint_name):
        raise endpoint_exists_error(endpoint_name)
    # The host is claimed last before the write, once the caller has proved (as themselves) that
    # they may act in the tenant: no other tenant's endpoint may have the same host (endpoints.hosts).
    hosts.host_claim(tenant, endpoint_name)
    try:
        _create(identity, tenant, body)
    except ImmError as exc:
        if exc.code != "endpoint_already_exists":  # that endpoint holds the claim: keep it
            # Best effort: a claim left behind names no endpoint and is taken over once stale.
            with suppress(ImmError):
                hosts.host_release(tenant, endpoint_name)
        raise
    # After the create: the bucket is read with the platform's credentials, and only once the
    # caller has proved (as themselves) that they may act in the tenant.
    return {"url": endpoint_url(endpoint_name, tenant), "warning": selectors.model_warning(tenant, model_name)}


def _json_patch(identity: Identity, tenant: str, name: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        return kube.patch_endpoint(identity, tenant, name, operations, content_type=kube.JSON_PATCH)
    except NotFound:
        raise endpoint_not_found(name) from None


def endpoint_update(identity: Identity, tenant: str, name: str, changes: Mapping[str, Any]) -> str:
    """Set the given spec fields (already validated and normalised); returns the endpoint's URL.

    A JSON Patch ``add`` replaces a member whole, so a new ``resources`` map replaces the old one
    (the original's merge patch could never drop a key), and fields nobody sent are never written
    back (the original re-sent the whole object it had read).

    ``autoscaling: null`` removes autoscaling: ``add`` then ``remove`` in one patch, so it is one
    atomic write whether or not the endpoint was autoscaled (a bare ``remove`` of a missing member
    fails). Autoscaling (new, or kept while ``resources`` change) is checked against the quota with
    the resources the endpoint will have; the CR is read for that, and the patch then sets the
    resourceVersion read, which makes the write conditional: a change in between is a 409 from
    Kubernetes, and the check runs again on the fresh object.
    """
    tenant_required(tenant)
    hard: dict[str, str] | None = None
    if "resources" in changes:
        hard = selectors.quota_hard(identity, tenant)
        check_quota_compliance(tenant, hard, changes["resources"])
    writes: list[dict[str, Any]] = []
    for key, value in changes.items():
        if key == "autoscaling" and value is None:
            writes.append({"op": "add", "path": "/spec/autoscaling", "value": {}})
            writes.append({"op": "remove", "path": "/spec/autoscaling"})
            continue
        written = split_resources(value) if key == "resources" else value
        writes.append({"op": "add", "path": f"/spec/{key}", "value": written})
    if "autoscaling" not in changes and "resources" not in changes:
        _json_patch(identity, tenant, name, writes)
        return endpoint_url(name, tenant)

    def attempt() -> str:
        nonlocal hard
        cr = selectors.endpoint_cr(identity, tenant, name)
        spec = cr.get("spec") or {}
        scaling = changes["autoscaling"] if "autoscaling" in changes else spec.get("autoscaling")
        if scaling is not None:
            resources = changes["resources"] if "resources" in changes else flatten_resources(spec.get("resources"))
            hard = selectors.quota_hard(identity, tenant) if hard is None else hard
            check_autoscaling_quota(tenant, hard, resources, scaling)
        version = {"op": "replace", "path": "/metadata/resourceVersion", "value": cr["metadata"]["resourceVersion"]}
        try:
            _json_patch(identity, tenant, name, [version, *writes])
        except Conflict as exc:
            raise _Stale(exc) from None
        return endpoint_url(name, tenant)

    return _until_unchanged(attempt)


def endpoint_scale(identity: Identity, tenant: str, name: str, replicas: int) -> str:
    """Through the ``scale`` subresource, the door ``kubectl scale`` and an HPA use too.

    An autoscaled endpoint is a 409 (``endpoint_autoscaled_error``). The scale carries the
    resourceVersion read, so autoscaling switched on in between is a conflict, and the check runs again.
    """
    tenant_required(tenant)

    def attempt() -> str:
        cr = selectors.endpoint_cr(identity, tenant, name)
        if (cr.get("spec") or {}).get("autoscaling") is not None:
            raise endpoint_autoscaled_error(name)
        patch = {"metadata": {"resourceVersion": cr["metadata"]["resourceVersion"]}, "spec": {"replicas": replicas}}
        try:
            kube.scale_endpoint(identity, tenant, name, patch)
        except NotFound:
            raise endpoint_not_found(name) from None
        except Conflict as exc:
            raise _Stale(exc) from None
        return endpoint_url(name, tenant)

    return _until_unchanged(attempt)


def endpoint_delete(identity: Identity, tenant: str, name: str) -> str:
    """Delete the CR; its children go with it through their owner references (garbage collection)."""
    tenant_required(tenant)
    try:
        kube.delete_endpoint(identity, tenant, name, propagation_policy="Background")
    except NotFound:
        _host_release_quietly(tenant, name)  # a claim left by an endpoint deleted around the API
        raise endpoint_not_found(name) from None
    _host_release_quietly(tenant, name)
    return endpoint_url(name, tenant)


def _host_release_quietly(tenant: str, name: str) -> None:
    """The endpoint is gone whatever happens here: a claim that cannot be released now names a
    missing endpoint and is taken over once stale (``endpoints.hosts``), so the delete succeeds."""
    try:
        hosts.host_release(tenant, name)
    except ImmError as exc:
        logger.warning("The host claim of endpoint %s/%s was not released (%s)", tenant, name, exc.code)


def endpoint_hosts_release(tenant: str) -> None:
    """Release the host claims of every endpoint of ``tenant`` (called when the tenant is deleted).

    A retryable failure (Kubernetes unreachable) is raised, so the deletion is retried; any other is
    logged: the claims then name endpoints that no longer exist and are taken over once stale.
    """
    try:
        hosts.tenant_hosts_release(tenant)
    except ImmError as exc:
        if exc.retryable:
            raise
        logger.warning("The host claims of tenant %s were not released (%s)", tenant, exc.code)


def _replicas(cr: Mapping[str, Any]) -> int:
    value = (cr.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _set_replicas(identity: Identity, tenant: str, name: str, decide: Decision) -> int:
    """Read the CR, let ``decide(cr)`` give (replicas, annotation value or None), write both at once.

    The resourceVersion makes the write conditional: a change in between (a scale, another pause)
    is a 409 from Kubernetes, and the decision is taken again on the fresh object.
    """

    def attempt() -> int:
        cr = selectors.endpoint_cr(identity, tenant, name)
        replicas, remembered = decide(cr)
        patch = {
            "metadata": {
                "resourceVersion": cr["metadata"]["resourceVersion"],
                "annotations": {PAUSED_REPLICAS_ANNOTATION: remembered},
            },
            "spec": {"replicas": replicas},
        }
        try:
            kube.patch_endpoint(identity, tenant, name, patch, content_type=kube.MERGE_PATCH)
        except NotFound:
            raise endpoint_not_found(name) from None
        except Conflict as exc:
            raise _Stale(exc) from None
        return int(replicas)

    return _until_unchanged(attempt)


def endpoint_pause(identity: Identity, tenant: str, name: str) -> int:
    """Scale to 0 and remember the current count on the CR (annotation), for ``endpoint_resume``.

    Pausing a paused endpoint changes nothing; pausing one already at 0 remembers nothing.
    """
    tenant_required(tenant)

    def decide(cr: Mapping[str, Any]) -> tuple[int, str | None]:
        annotations = cr["metadata"].get("annotations") or {}
        current = _replicas(cr)
        if PAUSED_REPLICAS_ANNOTATION in annotations or current == 0:
            return 0, annotations.get(PAUSED_REPLICAS_ANNOTATION)
        return 0, str(current)

    return _set_replicas(identity, tenant, name, decide)


def endpoint_resume(identity: Identity, tenant: str, name: str) -> int:
    """Back to the remembered count (1 when none was remembered), and forget it.

    An endpoint someone scaled up while it was paused keeps that count: the later decision wins.
    """
    tenant_required(tenant)

    def decide(cr: Mapping[str, Any]) -> tuple[int, None]:
        annotations = cr["metadata"].get("annotations") or {}
        remembered = str(annotations.get(PAUSED_REPLICAS_ANNOTATION) or "")
        current = _replicas(cr)
        if current > 0:
            return current, None
        count = ascii_int(remembered)
        return (count if count else 1), None

    return _set_replicas(identity, tenant, name, decide)
