"""The tenant provisioning and deprovisioning sagas: ordered, idempotent steps with compensation.

A tenant is many objects in two systems (Kubernetes and the object store). Creation runs them in
order as the requesting admin (impersonation), each step create-or-verify so a retried or taken-
over run resumes safely. A permanent failure undoes the completed steps in reverse, so a failure
never leaves half a tenant; a transient one (an upstream briefly down) is retried by the operation
machinery with the completed steps kept. Deletion runs its steps in order and can always be re-run.

Ownership: the namespace is stamped with the id of the operation that created it. A namespace that
already exists without our stamp belongs to someone else: the run stops with 409 and undoes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings

from endpoints import services as endpoint_services
from inferencemgmt import kube, objectstore
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import KUBERNETES, Conflict, Forbidden, ImmError, NotFound, UpstreamUnavailable
from inferencemgmt.operations.execution import OperationRolledBack, OperationRun
from tenants import manifests

logger = logging.getLogger(__name__)

OPERATION_ANNOTATION = "imm.ai.intel.com/operation"
NAMESPACE_POLL_SECONDS = 1.0


def tenant_exists_error(name: str) -> Conflict:
    """The original's title (clients grep `already exists`), with our stable code."""
    return Conflict(f"Tenant {name} already exists", code="tenant_exists")


@dataclass(frozen=True)
class Tenant:
    """What a provisioning run works on: the requested tenant and the admin it acts as."""

    name: str
    identity: Identity
    operation_id: str
    cert: str = ""
    scope: tuple[str, ...] = ()
    quota: dict[str, Any] | None = None


def _ignore_missing(call: Callable[[], Any]) -> None:
    with suppress(NotFound):
        call()


def _create_or_replace(create: Callable[[], Any], replace: Callable[[], Any]) -> None:
    """Inside a namespace this saga created, an existing object can only be ours from an earlier run."""
    try:
        create()
    except Conflict:
        replace()


# --- steps ------------------------------------------------------------------------------------------
def _namespace_apply(tenant: Tenant) -> None:
    body = manifests.namespace(
        tenant.name, tenant.scope, tenant.quota or {}, tenant.identity.username, settings.PLATFORM_ADMIN_LABEL
    )
    body["metadata"]["annotations"][OPERATION_ANNOTATION] = tenant.operation_id
    try:
        kube.create_namespace(tenant.identity, body)
    except Conflict:
        existing = kube.read_namespace(tenant.identity, tenant.name)
        annotations = (existing.get("metadata") or {}).get("annotations") or {}
        if annotations.get(OPERATION_ANNOTATION) != tenant.operation_id:
            raise tenant_exists_error(tenant.name) from None


def _namespace_undo(tenant: Tenant, run: OperationRun | None) -> None:
    _ignore_missing(lambda: kube.delete_namespace(tenant.identity, tenant.name))
    namespace_wait_gone(tenant, run)


def namespace_wait_gone(tenant: Tenant, run: OperationRun | None) -> None:
    """A Terminating namespace still blocks re-creating the tenant, so deletion waits for it."""
    deadline = time.monotonic() + settings.IMM_NAMESPACE_DELETE_TIMEOUT_SECONDS
    while True:
        try:
            kube.read_namespace(tenant.identity, tenant.name)
        except NotFound:
            return
        if time.monotonic() > deadline:
            raise UpstreamUnavailable(
                KUBERNETES,
                f"namespace {tenant.name} is still terminating after "
                f"{settings.IMM_NAMESPACE_DELETE_TIMEOUT_SECONDS:.0f}s",
                code="namespace_still_terminating",
            )
        if run is not None:
            run.heartbeat()
        time.sleep(NAMESPACE_POLL_SECONDS)


def _bucket_apply(tenant: Tenant) -> None:
    if objectstore.bucket_create(tenant.name):
        return
    # The bucket exists: ours from an interrupted run, or an orphan left by an old tenant of this
    # name. Adopting it is safe only while it holds nothing.
    count, _ = objectstore.bucket_usage(tenant.name)
    if count:
        raise Conflict(
            f"Tenant {tenant.name} already exists",
            f"bucket {tenant.name} already exists and holds {count} objects; delete it or choose another name",
            code="tenant_bucket_exists",
        )


def bucket_remove(name: str) -> None:
    """Abort uploads, delete objects, delete the bucket; a missing bucket is fine."""
    try:
        objectstore.bucket_abort_uploads(name)
        objectstore.bucket_empty(name)
    except NotFound:
        return
    objectstore.bucket_delete(name)


def secret_put(tenant: Tenant, body: dict[str, Any]) -> None:
    """Create the secret, or replace the one there (provisioning and the key rotation write them)."""
    _create_or_replace(
        lambda: kube.create_secret(tenant.identity, tenant.name, body),
        lambda: kube.replace_secret(tenant.identity, tenant.name, body["metadata"]["name"], body),
    )


def _ca_secret_apply(tenant: Tenant) -> None:
    secret_put(tenant, manifests.ca_secret(tenant.name, tenant.cert))


def _identity_apply(tenant: Tenant) -> None:
    """Create-or-verify the tenant's own store identity (read and list of its bucket, nothing else)."""
    if objectstore.identities_enabled():
        objectstore.tenant_identity_ensure(tenant.name)


IDENTITY_FORBIDDEN = "object_store_identity_forbidden"


def identity_remove(name: str) -> None:
    """Delete the tenant's identity and its keys; a missing one (or identities off) is fine."""
    if objectstore.identities_enabled():
        objectstore.tenant_identity_delete(name)


def _identity_undo(tenant: Tenant, run: OperationRun | None) -> None:
    """Remove the identity; when the store refuses to manage identities at all, go on undoing the rest.

    A refusal means the platform's credentials may not manage identities, so this run (with the same
    credentials) made none: stopping here would leave the namespace and bucket behind for nothing. An
    identity left by credentials revoked mid-run is adopted by the next create and removed by deletion.
    """
    try:
        identity_remove(tenant.name)
    except Forbidden as exc:
        if exc.code != IDENTITY_FORBIDDEN:
            raise
        logger.warning("tenant %s: the store refused to remove identity: %s", tenant.name, exc.description)


def store_secret_body(name: str) -> dict[str, Any]:
    """The tenant's access secret with a fresh key of its identity, every older key revoked first.

    The secret half of a key is only known when it is made, so a retried run cannot reuse the key an
    interrupted one made: it revokes every key the identity holds and makes one, so no key outlives
    the secret that carried it. Never the platform's key: with identities off the secret has none.
    """
    key: objectstore.AccessKey | None = None
    if objectstore.identities_enabled():
        for key_id in objectstore.tenant_keys(name):
            objectstore.tenant_key_delete(name, key_id)
        key = objectstore.tenant_key_create(name)
    return manifests.store_secret(
        name,
        access_key=key.access_key_id if key else None,
        secret_key=key.secret_access_key if key else None,
        endpoint_url=settings.S3_SERVING_ENDPOINT_URL or settings.S3_ENDPOINT_URL,
        region=settings.S3_REGION,
    )


def _store_secret_apply(tenant: Tenant) -> None:
    secret_put(tenant, store_secret_body(tenant.name))


def _tls_secret_apply(tenant: Tenant) -> None:
    # Read with the platform's own identity (its Role in the system namespace): an admin may write
    # secrets in tenant namespaces only and read none anywhere, so the copy's source is not theirs.
    try:
        source = kube.platform_read_secret(settings.IMM_SYSTEM_NAMESPACE, settings.IMM_INFERENCE_TLS_SECRET)
    except NotFound:
        raise ImmError(
            "Platform misconfigured",
            f"the inference TLS secret {settings.IMM_SYSTEM_NAMESPACE}/{settings.IMM_INFERENCE_TLS_SECRET} "
            "does not exist",
            code="platform_tls_secret_missing",
            status=503,
        ) from None
    secret_put(tenant, manifests.tls_secret(tenant.name, {"type": source.get("type"), "data": source.get("data")}))


def _quota_apply(tenant: Tenant) -> None:
    body = manifests.resource_quota(tenant.name, tenant.quota or {})
    _create_or_replace(
        lambda: kube.create_resource_quota(tenant.identity, tenant.name, body),
        lambda: kube.replace_resource_quota(tenant.identity, tenant.name, tenant.name, body),
    )


def _role_apply(tenant: Tenant) -> None:
    body = manifests.role(tenant.name)
    _create_or_replace(
        lambda: kube.create_role(tenant.identity, tenant.name, body),
        lambda: kube.replace_role(tenant.identity, tenant.name, tenant.name, body),
    )


def _robot_roles_apply(tenant: Tenant) -> None:
    for body in manifests.robot_roles(tenant.name):
        _create_or_replace(
            partial(kube.create_role, tenant.identity, tenant.name, body),
            partial(kube.replace_role, tenant.identity, tenant.name, body["metadata"]["name"], body),
        )


def _robot_roles_undo(tenant: Tenant, run: OperationRun | None) -> None:
    for body in manifests.robot_roles(tenant.name):
        with suppress(NotFound):
            kube.delete_role(tenant.identity, tenant.name, body["metadata"]["name"])


def _role_binding_apply(tenant: Tenant) -> None:
    body = manifests.role_binding(tenant.name, tenant.scope)
    _create_or_replace(
        lambda: kube.create_role_binding(tenant.identity, tenant.name, body),
        lambda: kube.replace_role_binding(tenant.identity, tenant.name, tenant.name, body),
    )


def _network_policy_apply(tenant: Tenant) -> None:
    body = manifests.network_policy(tenant.name, settings.IMM_INGRESS_NAMESPACE)
    name = body["metadata"]["name"]
    _create_or_replace(
        lambda: kube.create_network_policy(tenant.identity, tenant.name, body),
        lambda: kube.replace_network_policy(tenant.identity, tenant.name, name, body),
    )


def _secret_undo(name: str) -> Callable[[Tenant, OperationRun | None], None]:
    def undo(tenant: Tenant, run: OperationRun | None) -> None:
        _ignore_missing(lambda: kube.delete_secret(tenant.identity, tenant.name, name))

    return undo


@dataclass(frozen=True)
class Step:
    name: str
    apply: Callable[[Tenant], None]
    undo: Callable[[Tenant, OperationRun | None], None]


CREATE_STEPS: tuple[Step, ...] = (
    Step("namespace", _namespace_apply, _namespace_undo),
    Step("bucket", _bucket_apply, lambda tenant, run: bucket_remove(tenant.name)),
    Step("object-store-identity", _identity_apply, _identity_undo),
    Step("ca-cert-secret", _ca_secret_apply, _secret_undo(manifests.CA_SECRET)),
    Step("object-store-secret", _store_secret_apply, _secret_undo(manifests.STORE_SECRET)),
    Step("tls-secret", _tls_secret_apply, _secret_undo(manifests.TLS_SECRET)),
    Step(
        "resource-quota",
        _quota_apply,
        lambda t, run: _ignore_missing(lambda: kube.delete_resource_quota(t.identity, t.name, t.name)),
    ),
    Step("role", _role_apply, lambda t, run: _ignore_missing(lambda: kube.delete_role(t.identity, t.name, t.name))),
    Step("robot-roles", _robot_roles_apply, _robot_roles_undo),
    Step(
        "role-binding",
        _role_binding_apply,
        lambda t, run: _ignore_missing(lambda: kube.delete_role_binding(t.identity, t.name, t.name)),
    ),
    Step(
        "network-policy",
        _network_policy_apply,
        lambda t, run: _ignore_missing(lambda: kube.delete_network_policy(t.identity, t.name, "tenant-isolation")),
    ),
)


def _rollback(tenant: Tenant, run: OperationRun, failed: Step, error: ImmError) -> None:
    """Undo the failed step (it may have half-happened) and every completed one, newest first."""
    index = CREATE_STEPS.index(failed)
    undone: list[str] = []
    for step in reversed(CREATE_STEPS[: index + 1]):
        if step is failed and isinstance(error, Conflict) and step.name == "namespace":
            continue  # someone else's namespace: never touch it
        if step is not failed and not run.completed(step.name):
            continue
        with run.step(f"undo {step.name}"):
            step.undo(tenant, run)
        undone.append(step.name)
    detail = f"{error.title}: {error.description}" if error.description else error.title
    raise OperationRolledBack(
        ImmError(
            f"Tenant {tenant.name} was not created: step '{failed.name}' failed",
            f"{detail}. Undone: {', '.join(undone) or 'nothing'}.",
            code=error.code,
            status=error.status,
            retry_after=error.retry_after,
        )
    )


def provision(run: OperationRun) -> dict[str, Any]:
    """The body of the `tenants.provision` operation."""
    params = run.params
    tenant = Tenant(
        name=params["name"],
        identity=run.identity,
        operation_id=str(run.operation.pk),
        cert=params["cert"],
        scope=tuple(params["scope"]),
        quota=dict(params.get("quota") or {}),
    )
    for step in CREATE_STEPS:
        if run.completed(step.name):
            continue
        try:
            with run.step(step.name):
                step.apply(tenant)  # create-or-verify: a resumed run adopts what an earlier one made
        except ImmError as error:
            if error.retryable and run.operation.attempts < settings.IMM_OPERATION_MAX_ATTEMPTS:
                raise  # kept steps; the operation is retried and resumes here
            if step.name == "namespace" and error.code == "tenant_exists":
                raise  # nothing of ours exists: plain failure, nothing to undo
            _rollback(tenant, run, step, error)
    return {"name": tenant.name}


def deprovision(run: OperationRun) -> dict[str, Any]:
    """The body of the `tenants.delete` operation: every step is safe to run again."""
    tenant = Tenant(name=run.params["name"], identity=run.identity, operation_id=str(run.operation.pk))
    name = tenant.name
    if not run.completed("endpoints"):
        with run.step("endpoints"):
            # Deleting the CRs first lets the controller and the garbage collector remove the
            # serving pods before the namespace goes, so nothing serves from a deleted bucket.
            _ignore_missing(lambda: kube.delete_endpoints(tenant.identity, name))
    if not run.completed("host claims"):
        with run.step("host claims"):
            # The endpoints' inference hosts become free for other tenants (endpoints.hosts).
            endpoint_services.endpoint_hosts_release(name)
    if not run.completed("namespace"):
        with run.step("namespace"):
            _namespace_undo(tenant, run)
    if not run.completed("identity"):
        with run.step("identity"):
            # After the namespace: no serving pod holds the key any more when it is revoked.
            identity_remove(name)
    aborted = deleted = 0
    try:
        if not run.completed("uploads"):
            with run.step("uploads"):
                aborted = objectstore.bucket_abort_uploads(name)
        if not run.completed("objects"):
            with run.step("objects"):
                deleted = objectstore.bucket_empty(name)
    except NotFound:
        pass  # no bucket: an earlier run (or a half-created tenant) already removed it
    if not run.completed("bucket"):
        with run.step("bucket"):
            objectstore.bucket_delete(name)
    return {"name": name, "uploads_aborted": aborted, "objects_deleted": deleted}
