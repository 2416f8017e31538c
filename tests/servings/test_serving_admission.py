"""Every shipped serving's pods are admitted by kube-apiserver's own PodSecurity admission under
`restricted` (a dry run in a namespace that enforces it, as tenant namespaces do): the API server's
judgement, beside our own check (servings/podsecurity.py). Needs no real node.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from servings.catalogue import shipped_templates
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint
from tests.servings.test_triton_live import restricted_namespace  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def pod_of(serving: str, namespace: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    cr: dict[str, Any] = {
        "apiVersion": "ai.intel.com/v1",
        "kind": "InferenceEndpoint",
        "metadata": {"name": "probe", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000002"},
        "spec": {"endpointName": "probe", "modelName": "m", "subjectName": "c", "servingName": serving},
    }
    if resources is not None:
        cr["spec"]["resources"] = resources
    template = ServingTemplate(serving, shipped_templates()[serving])
    (deployment,) = [o for o in render_endpoint(cr, template, Platform("imm.local")) if o["kind"] == "Deployment"]
    pod_template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{serving}-probe", "namespace": namespace, "labels": pod_template["metadata"]["labels"]},
        "spec": pod_template["spec"],
    }


@pytest.mark.parametrize("serving", sorted(shipped_templates()))
def test_shipped_serving_pods_are_admitted_under_restricted(
    admin: client.ApiClient,
    restricted_namespace: str,  # noqa: F811
    serving: str,
) -> None:
    core = client.CoreV1Api(admin)
    created = core.create_namespaced_pod(restricted_namespace, pod_of(serving, restricted_namespace), dry_run="All")
    assert created.metadata.name == f"{serving}-probe"
    assert created.spec.security_context.seccomp_profile.type == "RuntimeDefault"


@pytest.mark.parametrize("serving", sorted(shipped_templates()))
def test_shipped_serving_pods_are_admitted_under_a_cpu_and_memory_quota(
    admin: client.ApiClient,
    restricted_namespace: str,  # noqa: F811
    serving: str,
) -> None:
    """A tenant's quota on CPU and memory makes every container declare them, init containers included:
    a template whose init container declared nothing would be refused here, and its endpoint never start."""
    core = client.CoreV1Api(admin)
    quota = {"metadata": {"name": "tenant-quota"}, "spec": {"hard": {"requests.cpu": "2", "requests.memory": "2Gi"}}}
    core.create_namespaced_resource_quota(restricted_namespace, quota)
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    created = core.create_namespaced_pod(
        restricted_namespace, pod_of(serving, restricted_namespace, resources), dry_run="All"
    )
    containers = [*(created.spec.init_containers or []), *created.spec.containers]
    assert containers
    assert all(container.resources.requests == {"cpu": "100m", "memory": "128Mi"} for container in containers)
    with pytest.raises(client.exceptions.ApiException) as refused:
        core.create_namespaced_pod(restricted_namespace, pod_of(serving, restricted_namespace), dry_run="All")
    assert refused.value.status == 403  # the same pod without resources: the quota admission refuses it
