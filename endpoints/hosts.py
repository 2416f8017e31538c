"""One inference host per endpoint: ``<endpoint>-<tenant>.<domain>`` is claimed before the CR is made.

The documented host format is ambiguous: tenant ``a-b``'s endpoint ``svc`` and tenant ``b``'s
endpoint ``svc-a`` are both ``svc-a-b.<domain>``, and the ingress would route one host to two
backends. The format is kept (the original clients build URLs from it), and a clash is refused:

* **Claim, atomically.** Before the InferenceEndpoint is created, the API creates, with its OWN
  identity (the caller cannot see other tenants), a Lease named ``inference-host.<label>`` in the
  platform namespace (``IMM_SYSTEM_NAMESPACE``). Object names are unique, so of two parallel
  creates of the same host exactly one claim is made; the other is 409 ``endpoint_host_taken``.
  The Lease's ``holderIdentity`` is ``<tenant>/<endpoint>``, and labels name both.
* **Endpoints older than claims.** Every other endpoint that could have the same host is one of a
  few names, one per ``-`` in the label (``svc-a`` of ``b``, ``svc-a-b``... ): each is looked up,
  and an existing one refuses the host too, claimed or not.
* **No orphans.** A create that fails after the claim releases it; deleting an endpoint releases its
  claim; deleting a tenant releases all of the tenant's claims. A claim whose endpoint no longer
  exists (it was deleted around the API) is taken over, but only once it is older than
  ``CLAIM_GRACE_SECONDS``: a young claim may belong to a create still in flight.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from inferencemgmt import kube
from inferencemgmt.errors import KUBERNETES, Conflict, Forbidden, NotFound, UpstreamError
from inferencemgmt.resources import GROUP

CLAIM_PREFIX = "inference-host."
CLAIM_LABEL = f"{GROUP}/inference-host"
TENANT_LABEL = f"{GROUP}/tenant"
ENDPOINT_LABEL = f"{GROUP}/endpoint"
#: A claim whose endpoint does not exist is stale only after this long (a create in flight makes
#: its claim first and its endpoint a moment later).
CLAIM_GRACE_SECONDS = 300
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TAKEOVER_ATTEMPTS = 3


def host_label(endpoint: str, tenant: str) -> str:
    """The first label of the endpoint's host (the part before ``.<domain>``)."""
    return f"{endpoint}-{tenant}"


def host_taken(endpoint: str, tenant: str) -> Conflict:
    host = f"{host_label(endpoint, tenant)}.{settings.PLATFORM_DOMAIN}"
    return Conflict(
        "409 Conflict",
        f"The host {host} of endpoint {endpoint} is already used by an endpoint of another tenant; "
        "choose another endpoint name",
        code="endpoint_host_taken",
    )


@contextlib.contextmanager
def _own_rights() -> Iterator[None]:
    """A 403 to the platform's own identity is a deployment fault (its RBAC), not the caller's: 502."""
    try:
        yield
    except Forbidden:
        raise UpstreamError(
            KUBERNETES,
            "the management API may not keep inference host claims (its RBAC: helm/imm/files/rbac/management-api.yaml)",
            code="endpoint_host_claims_forbidden",
        ) from None


def _claim_name(endpoint: str, tenant: str) -> str:
    return CLAIM_PREFIX + host_label(endpoint, tenant)


def _holder(tenant: str, endpoint: str) -> str:
    return f"{tenant}/{endpoint}"


def _endpoint_exists(tenant: str, endpoint: str) -> bool:
    """Whether ``tenant`` has an endpoint ``endpoint``, read with the platform's own identity."""
    if not (_DNS_LABEL.fullmatch(tenant) and _DNS_LABEL.fullmatch(endpoint)):
        return False
    try:
        kube.platform_read_endpoint(tenant, endpoint)
    except NotFound:
        return False
    return True


def same_host_endpoints(endpoint: str, tenant: str) -> list[tuple[str, str]]:
    """Every other ``(tenant, endpoint)`` whose host label equals this one's: one per ``-`` in it."""
    label = host_label(endpoint, tenant)
    found = []
    for index, character in enumerate(label):
        if character == "-" and (label[:index], label[index + 1 :]) != (endpoint, tenant):
            found.append((label[index + 1 :], label[:index]))
    return found


def _age_seconds(claim: dict[str, Any]) -> float:
    created = claim["metadata"].get("creationTimestamp")
    if not created:  # pragma: no cover - the API server always sets it
        return 0.0
    age: float = (datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds()
    return age


def host_claim(tenant: str, endpoint: str) -> bool:
    """Claim the endpoint's host for it; True when this call made the claim (the caller releases it
    if the endpoint is then not created). 409 ``endpoint_host_taken`` when another endpoint has it."""
    with _own_rights():
        return _claim(tenant, endpoint)


def _claim(tenant: str, endpoint: str) -> bool:
    for other_tenant, other_endpoint in same_host_endpoints(endpoint, tenant):
        if _endpoint_exists(other_tenant, other_endpoint):
            raise host_taken(endpoint, tenant)
    namespace = settings.IMM_SYSTEM_NAMESPACE
    name = _claim_name(endpoint, tenant)
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "labels": {CLAIM_LABEL: "true", TENANT_LABEL: tenant, ENDPOINT_LABEL: endpoint},
            "annotations": {f"{GROUP}/host": f"{host_label(endpoint, tenant)}.{settings.PLATFORM_DOMAIN}"},
        },
        "spec": {"holderIdentity": _holder(tenant, endpoint)},
    }
    for _ in range(_TAKEOVER_ATTEMPTS):
        try:
            kube.platform_create_lease(namespace, body)
            return True
        except Conflict:
            pass
        try:
            claim = kube.platform_read_lease(namespace, name)
        except NotFound:
            continue  # released meanwhile: claim it again
        holder = str(claim.get("spec", {}).get("holderIdentity") or "")
        if holder == _holder(tenant, endpoint):
            return False  # ours already (the endpoint exists, or an earlier create stopped half-way)
        other_tenant, _, other_endpoint = holder.partition("/")
        if _age_seconds(claim) < CLAIM_GRACE_SECONDS or _endpoint_exists(other_tenant, other_endpoint):
            raise host_taken(endpoint, tenant)
        # Stale: its endpoint is gone. Delete exactly that claim (a newer one is left alone).
        preconditions = {"uid": claim["metadata"]["uid"], "resourceVersion": claim["metadata"]["resourceVersion"]}
        with contextlib.suppress(Conflict, NotFound):
            kube.platform_delete_lease(namespace, name, preconditions=preconditions)
    raise host_taken(endpoint, tenant)


def host_release(tenant: str, endpoint: str) -> None:
    """Remove the endpoint's claim, if it is the endpoint's (never another tenant's)."""
    with _own_rights():
        _release(tenant, endpoint)


def _release(tenant: str, endpoint: str) -> None:
    namespace = settings.IMM_SYSTEM_NAMESPACE
    name = _claim_name(endpoint, tenant)
    try:
        claim = kube.platform_read_lease(namespace, name)
    except NotFound:
        return
    if str(claim.get("spec", {}).get("holderIdentity") or "") != _holder(tenant, endpoint):
        return
    with contextlib.suppress(Conflict, NotFound):
        kube.platform_delete_lease(namespace, name, preconditions={"uid": claim["metadata"]["uid"]})


def tenant_hosts_release(tenant: str) -> None:
    """Remove every claim of ``tenant``'s endpoints (the tenant is being deleted)."""
    with _own_rights():
        kube.platform_delete_leases(
            settings.IMM_SYSTEM_NAMESPACE, label_selector=f"{CLAIM_LABEL}=true,{TENANT_LABEL}={tenant}"
        )
