# mypy: disable-error-code="union-attr,index"
"""``manage.py label_tenant_namespaces`` on the live cluster: a tenant made before the Pod Security labels
gets them, a second run changes nothing, and the API server then refuses a pod the profile forbids.

Only the test's own namespace is named: the devstack is shared, and labelling every tenant in it would
change other checkouts' tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration


@pytest.fixture
def old_tenant(devstack_env: dict[str, str]) -> Iterator[tuple[client.CoreV1Api, str]]:
    """A tenant namespace as provisioning made it before this release: the tenant label, no Pod Security labels."""
    core = client.CoreV1Api(config.new_client_from_config(devstack_env["KUBECONFIG"]))
    name = f"old-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"created_by": "platform_admin"}}})
    yield core, name
    core.delete_namespace(name)


def run(kubeconfig: str, name: str) -> str:
    out = StringIO()
    call_command("label_tenant_namespaces", name, "--kubeconfig", kubeconfig, stdout=out)
    return out.getvalue()


def test_an_old_tenant_is_labelled_once_and_then_refuses_a_host_network_pod(devstack_env, old_tenant, settings):
    settings.PLATFORM_ADMIN_LABEL = "platform_admin"
    core, name = old_tenant
    pod = {"metadata": {"name": "host"}, "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "i"}]}}

    assert "1 tenant namespaces, 1 labelled" in run(devstack_env["KUBECONFIG"], name)
    labels = core.read_namespace(name).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    assert "1 tenant namespaces, 0 labelled, 1 already enforce" in run(devstack_env["KUBECONFIG"], name)

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(name, pod)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
