"""The controller's status code on a real crash: a Triton pod on the real node that cannot load its model.

The rendered objects are applied as the controller would (no controller runs: the namespace is no
tenant, so no controller of a test running beside touches it either), the model's `initialize()`
fails, and `servings.controller.status.endpoint_status` over the live Deployment, ReplicaSets and
pods (the API's JSON, as the controller reads it) must say `CrashLoop` with Triton's own reason.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import boto3
import pytest
from kubernetes import client

from servings.controller import status as rules
from servings.controller.reconciler import Reconciler, TemplateCache
from servings.controller.tenancy import TenantNamespaces
from tenants import manifests
from tests.servings.conftest import wait_for
from tests.servings.test_triton_live import ADDER_CONFIG, devstack_platform, rendered

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

BROKEN = """class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights missing: broken on purpose")

    def execute(self, requests):
        return []
"""


def _json(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """The object as the API's JSON (camelCase keys), which is what the controller reads."""
    return json.loads(json.dumps(api.sanitize_for_serialization(obj)))


def test_a_model_triton_cannot_load_is_a_crash_loop_with_triton_s_reason(
    admin: client.ApiClient, devstack_env: dict[str, str]
) -> None:
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    namespace = f"trs-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=labels)))
    s3 = boto3.client(
        "s3",
        endpoint_url=devstack_env["S3_ENDPOINT_URL"],
        aws_access_key_id=devstack_env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=devstack_env["S3_SECRET_ACCESS_KEY"],
        region_name=devstack_env["S3_REGION"],
    )
    s3.create_bucket(Bucket=namespace)
    files = {"broken/1/config.pbtxt": ADDER_CONFIG, "broken/1/model.py": BROKEN}
    try:
        for key, body in files.items():
            s3.put_object(Bucket=namespace, Key=key, Body=body.encode())
        secret = manifests.store_secret(
            namespace,
            access_key=devstack_env["S3_ACCESS_KEY_ID"],
            secret_key=devstack_env["S3_SECRET_ACCESS_KEY"],
            endpoint_url=devstack_env["IMM_DEVSTACK_S3_CLUSTER_URL"],
            region=devstack_env["S3_REGION"],
        )
        core.create_namespaced_secret(namespace, secret)
        objects = rendered(namespace, "{latest{}}", model="broken", platform=devstack_platform(devstack_env))
        for obj in objects.values():
            obj["metadata"].pop("ownerReferences")  # no CR here: the garbage collector would take them
        core.create_namespaced_config_map(namespace, objects["ConfigMap"])
        apps.create_namespaced_deployment(namespace, objects["Deployment"])
        cr = {"metadata": {"name": "broken", "namespace": namespace, "generation": 1}, "spec": {"replicas": 1}}
        # The controller's own log reader (previous run, once per restart), on the admin's client.
        reconciler = Reconciler(
            admin,
            platform=devstack_platform(devstack_env),
            templates=TemplateCache(admin, "imm-servings"),
            namespaces=TenantNamespaces(lambda labels: False, "none"),
        )

        def crash_loop() -> dict[str, Any] | None:
            deployment = _json(admin, apps.read_namespaced_deployment("broken", namespace))
            selector = "endpoint=broken"
            pods = [_json(admin, p) for p in core.list_namespaced_pod(namespace, label_selector=selector).items]
            replicasets = [
                _json(admin, r) for r in apps.list_namespaced_replica_set(namespace, label_selector=selector).items
            ]
            found = rules.endpoint_status(
                cr,
                deployment,
                pods=pods,
                replicasets=replicasets,
                url="u",
                selector=selector,
                log_tail=reconciler._log_tail(namespace),
            )
            return {"status": found, "pods": pods} if found["state"] == "Degraded" else None

        snapshot = wait_for(crash_loop, timeout=240, interval=1, what="the broken pod to crash")
        status = snapshot["status"]
        (pod,) = [p for p in snapshot["pods"] if p["metadata"]["name"] in status["message"]]
        (container,) = pod["status"]["containerStatuses"]
        tail = ((container.get("lastState") or {}).get("terminated") or {}).get("message", "")
        sys.stdout.write(
            f"\n[status] termination message of {pod['metadata']['name']}:\n{tail}\n[status] {status['message']}\n"
        )
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "CrashLoop")
        assert degraded["message"].startswith(f"pod {pod['metadata']['name']}, container triton restarted ")
        assert "exit code 1 (Error)" in degraded["message"]
        # Triton's own line (its reason), which the 2 KiB termination message no longer holds.
        assert "failed to load 'broken' version 1" in degraded["message"], tail
        assert "weights missing: broken on purpose" in degraded["message"], tail
        assert "weights missing" not in tail
    finally:
        core.delete_namespace(namespace)
        for key in files:
            s3.delete_object(Bucket=namespace, Key=key)
        s3.delete_bucket(Bucket=namespace)
