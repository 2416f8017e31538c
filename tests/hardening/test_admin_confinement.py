"""A platform admin manages tenants and nothing else: the API server refuses the rest.

The admin acts through the platform's impersonating client exactly as the product does, and the
cluster itself (RBAC plus the admission policy in helm/imm/files/policies/) answers. The attack of
the security review comes first: a service-account token Secret in kube-system.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Forbidden, NotFound
from tests.kube_as_user import api_as

pytestmark = [pytest.mark.integration]

ADMIN = Identity("admin@example.com", ("admin",), is_admin=True)
TENANT_LABEL = {"created_by": "platform_admin", "pod-security.kubernetes.io/enforce": "restricted"}


@pytest.fixture
def cluster_admin(devstack_env: dict[str, str]) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(devstack_env["KUBECONFIG"]))


@pytest.fixture
def admin_core(platform_settings: Any) -> Any:
    return api_as(ADMIN, client.CoreV1Api)


def _namespace(cluster_admin: client.CoreV1Api, labels: dict[str, str]) -> Iterator[str]:
    name = f"confine-{uuid.uuid4().hex[:8]}"
    cluster_admin.create_namespace({"metadata": {"name": name, "labels": labels}})
    yield name
    cluster_admin.delete_namespace(name)


@pytest.fixture
def foreign_namespace(cluster_admin: client.CoreV1Api) -> Iterator[str]:
    """A namespace that is not a tenant (made by the cluster's own admin)."""
    yield from _namespace(cluster_admin, {})


@pytest.fixture
def tenant_namespace(cluster_admin: client.CoreV1Api) -> Iterator[str]:
    yield from _namespace(cluster_admin, TENANT_LABEL)


def _token_secret(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": "namespace-controller"}},
        "type": "kubernetes.io/service-account-token",
    }


def test_admin_cannot_mint_a_service_account_token_in_kube_system(admin_core, cluster_admin):
    name = f"stolen-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Forbidden):
        admin_core.create_namespaced_secret("kube-system", _token_secret(name))
    with pytest.raises(client.ApiException) as missing:
        cluster_admin.read_namespaced_secret(name, "kube-system")
    assert missing.value.status == 404


def test_admin_manages_service_accounts_and_their_tokens_only_in_tenant_namespaces(
    admin_core, platform_settings, tenant_namespace
):
    """Robots need admins to hold `serviceaccounts/token create`; the admission policy keeps it in tenants."""
    request = {"spec": {"audiences": ["inference-model-manager"], "expirationSeconds": 600}}
    with pytest.raises(Forbidden):
        admin_core.create_namespaced_service_account_token("namespace-controller", "kube-system", request)
    with pytest.raises(Forbidden):
        admin_core.create_namespaced_service_account("kube-system", {"metadata": {"name": "probe"}})
    admin_core.create_namespaced_service_account(tenant_namespace, {"metadata": {"name": "probe"}})
    answer = admin_core.create_namespaced_service_account_token("probe", tenant_namespace, request)
    assert answer.status.token
    admin_core.delete_namespaced_service_account("probe", tenant_namespace)


def test_admin_reads_no_secret_anywhere(admin_core, tenant_namespace):
    for namespace in ("kube-system", "imm-system", tenant_namespace):
        with pytest.raises(Forbidden):
            admin_core.list_namespaced_secret(namespace)
    with pytest.raises(Forbidden):
        admin_core.read_namespaced_secret("tls-secret", "imm-system")


def test_admin_writes_only_in_tenant_namespaces(admin_core, platform_settings, foreign_namespace, tenant_namespace):
    secret = {"metadata": {"name": "probe"}, "stringData": {"k": "v"}}
    admin_core.create_namespaced_secret(tenant_namespace, secret)
    admin_core.delete_namespaced_secret("probe", tenant_namespace)
    with pytest.raises(Forbidden):
        admin_core.create_namespaced_secret(foreign_namespace, secret)
    with pytest.raises(Forbidden):
        admin_core.create_namespaced_config_map(foreign_namespace, {"metadata": {"name": "probe"}})
    rbac = api_as(ADMIN, client.RbacAuthorizationV1Api)
    binding = {
        "metadata": {"name": "probe"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "imm-platform-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "admin"}],
    }
    with pytest.raises(Forbidden):
        rbac.create_namespaced_role_binding("kube-system", binding)


def test_admin_changes_and_deletes_only_tenant_namespaces(admin_core, cluster_admin, foreign_namespace):
    with pytest.raises(Forbidden):
        admin_core.delete_namespace(foreign_namespace)
    with pytest.raises(Forbidden):
        # Labelling a namespace as a tenant would open it to the admin: refused too.
        admin_core.patch_namespace(foreign_namespace, {"metadata": {"labels": TENANT_LABEL}})
    with pytest.raises(Forbidden):
        admin_core.create_namespace({"metadata": {"name": f"plain-{uuid.uuid4().hex[:8]}"}})
    with pytest.raises(Forbidden):
        admin_core.create_namespace({"metadata": {"name": f"kube-{uuid.uuid4().hex[:6]}", "labels": TENANT_LABEL}})
    assert cluster_admin.read_namespace(foreign_namespace).metadata.labels.get("created_by") is None
    with pytest.raises(Forbidden):
        admin_core.delete_namespace("kube-public")


def test_the_platforms_own_identity_still_reads_the_inference_certificate(platform_settings):
    # Tenant provisioning copies it with the platform's identity now, not the admin's.
    secret = kube.service_api("CoreV1Api").read_namespaced_secret("tls-secret", "imm-system")
    assert set(secret.data) >= {"tls.crt", "tls.key"}
    with pytest.raises(NotFound):
        kube.service_api("CoreV1Api").read_namespaced_secret("no-such-secret", "imm-system")


def test_admin_cannot_lift_a_tenants_pod_security(admin_core, platform_settings, tenant_namespace):
    enforce = "pod-security.kubernetes.io/enforce"
    with pytest.raises(Forbidden):
        admin_core.patch_namespace(tenant_namespace, {"metadata": {"labels": {enforce: "privileged"}}})
    with pytest.raises(Forbidden):
        admin_core.patch_namespace(tenant_namespace, {"metadata": {"labels": {enforce: None}}})
    without_profile = {"name": f"nopsa-{uuid.uuid4().hex[:8]}", "labels": {"created_by": "platform_admin"}}
    with pytest.raises(Forbidden):
        admin_core.create_namespace({"metadata": without_profile})
    # Everything else about a tenant namespace stays the admin's to change.
    admin_core.patch_namespace(tenant_namespace, {"metadata": {"annotations": {"imm.ai.intel.com/probe": "1"}}})
