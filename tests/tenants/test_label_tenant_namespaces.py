# mypy: disable-error-code="union-attr,index"
"""``manage.py label_tenant_namespaces`` on the live cluster: a tenant made before the Pod Security and group
labels gets them, a second run changes nothing, the API server then refuses a pod the profile forbids, and
the tenant appears in its members' ``GET /tenants`` (which selects on the group labels).

Only the test's own namespace is named: the devstack is shared, and labelling every tenant in it would
change other checkouts' tenants.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tenants import manifests, selectors

pytestmark = pytest.mark.integration


@pytest.fixture
def old_tenant(devstack_env: dict[str, str]) -> Iterator[tuple[client.CoreV1Api, str]]:
    """A tenant namespace as provisioning made it before this release: the tenant label and the scope
    annotation (team-a), no Pod Security or group labels (but one of a group no longer in the scope)."""
    core = client.CoreV1Api(config.new_client_from_config(devstack_env["KUBECONFIG"]))
    name = f"old-{uuid.uuid4().hex[:8]}"
    labels = {"created_by": "platform_admin", manifests.group_label("team-gone"): "member"}
    annotations = {manifests.SCOPE_ANNOTATION: json.dumps(["team-a"])}
    core.create_namespace({"metadata": {"name": name, "labels": labels, "annotations": annotations}})
    yield core, name
    core.delete_namespace(name)


def run(kubeconfig: str, name: str) -> str:
    out = StringIO()
    call_command("label_tenant_namespaces", name, "--kubeconfig", kubeconfig, stdout=out)
    return out.getvalue()


def tenants_of(as_user: Any, user: str) -> list[str]:
    """Every tenant ``user`` sees, page after page."""
    names: list[str] = []
    path = "/tenants?limit=500"
    while True:
        answer = as_user(user, "get", path)
        assert answer.status_code == 200, answer.content
        names.extend(answer.json()["data"]["tenants"])
        if "continue" not in answer.json():
            return names
        path = f"/tenants?limit=500&continue={quote(answer.json()['continue'])}"


def test_an_old_tenant_is_labelled_once_and_then_refuses_a_host_network_pod(
    devstack_env, old_tenant, settings, as_user
):
    settings.PLATFORM_ADMIN_LABEL = "platform_admin"
    core, name = old_tenant
    pod = {"metadata": {"name": "host"}, "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "i"}]}}
    selectors.group_labels_check_forget()
    assert name in tenants_of(as_user, "alice")  # not labelled yet: members get the scan, which sees it
    assert name not in tenants_of(as_user, "bob")

    assert "1 tenant namespaces, 1 labelled" in run(devstack_env["KUBECONFIG"], name)
    labels = core.read_namespace(name).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    assert labels[manifests.group_label("team-a")] == "member"
    assert manifests.group_label("team-gone") not in labels
    assert "1 tenant namespaces, 0 labelled, 1 already up to date" in run(devstack_env["KUBECONFIG"], name)
    assert labels[manifests.GROUP_LABELS_MARKER] == manifests.GROUP_LABELS_MARKER_VALUE
    selectors.group_labels_check_forget()
    assert name in tenants_of(as_user, "alice")
    assert name not in tenants_of(as_user, "bob")

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(name, pod)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
