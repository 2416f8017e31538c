"""A tenant's key rotation while a Triton endpoint on the real node answers V2 inference (issue 18).

The tenant is made through the API, the endpoint is a CR the test controller renders with the shipped
`triton` template, its pod reads the model with the tenant's key on the real node. While the rotation
runs (new key, secret, the controller rolls the pod onto the new key's generation, then the old key is
revoked) a client asks for an inference every 100 ms from this host through the endpoint's Service:
not one may fail. The rendered Deployment keeps one replica and rolls with Kubernetes' default
strategy (maxSurge 25% rounds up to 1, maxUnavailable 25% rounds down to 0) and minReadySeconds 10, so
the old pod serves until the new one has been ready for 10 s. Skipped when the real node is off.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client

from inferencemgmt.operations.models import Operation
from servings.controller.rendering import STORE_KEY_ANNOTATION
from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.servings.conftest import ControllerProcess, wait_for
from tests.servings.test_triton_live import ADDER_CONFIG, ADDER_MODEL
from tests.tenants.test_tenants_api import CERT

pytestmark = [pytest.mark.integration, pytest.mark.real_node, pytest.mark.django_db(transaction=True)]
BODY = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]}).encode()


def infer(url: str) -> list[float]:
    request = urllib.request.Request(url, data=BODY)  # noqa: S310 -- http:// to a Service on this machine
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        data: list[float] = json.load(response)["outputs"][0]["data"]
    return data


class Prober:
    """Asks for an inference every 100 ms on a thread; records every answer and every failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = infer(self.url)
            except Exception as exc:  # every failure counts, whatever it is
                self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            else:
                if answer == [3.75]:
                    self.answers += 1
                else:
                    self.failures.append(f"wrong answer {answer}")
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def tenant_made(platform: Platform) -> str:
    """A team-a tenant made through the API, waited for as long as a loaded machine needs (the fixture's
    own helper waits only IMM_OPERATION_WAIT_SECONDS); deleted with the module's tenants."""
    from rest_framework.test import APIClient

    name = f"rot{uuid.uuid4().hex[:9]}"
    platform.tenants.append(name)
    answer = APIClient().post(
        "/tenants",
        data=json.dumps({"name": name, "cert": CERT, "scope": "team-a", "quota": {}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {platform.token('admin')}",
        HTTP_PREFER="respond-async",
    )
    assert answer.status_code == 202, answer.content
    operation_id = answer.json()["data"]["task"]["id"]
    made = wait_for(
        lambda: (op := Operation.objects.get(pk=operation_id)).is_final and op, timeout=300, what="the tenant"
    )
    assert made.state == Operation.State.SUCCEEDED, made.error
    return name


def test_a_triton_endpoint_answers_throughout_a_key_rotation(platform: Platform, controller: ControllerProcess) -> None:
    env = platform.env
    if "IMM_DEVSTACK_REAL_NODE_NAME" not in env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    tenant = tenant_made(platform)
    core, apps = client.CoreV1Api(platform.k8s), client.AppsV1Api(platform.k8s)
    # The shipped triton serving, whose image the devstack's SERVING_IMAGES maps to its own build (a
    # copy under another name would get the vendor's image, which no registry here serves).
    serving = "triton"
    platform.s3.put_object(Bucket=tenant, Key="adder/1/config.pbtxt", Body=ADDER_CONFIG.encode())
    platform.s3.put_object(Bucket=tenant, Key="adder/1/model.py", Body=ADDER_MODEL.replace("FACTOR", "1").encode())
    cr = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceEndpoint",
        "metadata": {"name": "adder"},
        "spec": {
            "endpointName": "adder",
            "modelName": "adder",
            "modelVersionPolicy": "{specific{versions:1 }}",
            "subjectName": "client",
            "servingName": serving,
            "replicas": 1,
        },
    }
    platform.custom().create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, cr)
    # A first rotation at once: the endpoint has no Deployment yet, so nothing waits on it, and its new
    # store-key generation queues the endpoint first in the controller (the shared cluster's controllers
    # may hold thousands of other endpoints in their queues), so it is rendered with the generation.
    first = platform.call("admin", "post", f"/tenants/{tenant}/credentials/rotate")
    assert first.status_code == 202, first.content
    first_id = first.json()["data"]["task"]["id"]
    done = wait_for(lambda: (op := Operation.objects.get(pk=first_id)).is_final and op, timeout=300, what="rotation 1")
    assert done.state == Operation.State.SUCCEEDED, (done.error, done.steps)

    def pods() -> list[Any]:
        return list(core.list_namespaced_pod(tenant, label_selector="endpoint=adder").items)

    def serves() -> bool:
        deployment = apps.read_namespaced_deployment("adder", tenant)
        status = deployment.status
        running = [pod for pod in pods() if pod.metadata.deletion_timestamp is None]
        return bool(
            status.observed_generation == deployment.metadata.generation
            and status.updated_replicas == status.available_replicas == status.replicas == 1
            and len(running) == 1
            and running[0].spec.node_name == env["IMM_DEVSTACK_REAL_NODE_NAME"]
        )

    wait_for(serves, timeout=300, interval=2, what="the triton endpoint to serve on the real node")
    (before,) = [pod for pod in pods() if pod.metadata.deletion_timestamp is None]  # a draining pod may linger
    url = f"http://{core.read_namespaced_service('adder', tenant).spec.cluster_ip}:8000/v2/models/adder/infer"
    wait_for(lambda: infer(url) == [3.75], timeout=60, what="the first inference")

    with Prober(url) as prober:
        started = platform.call("admin", "post", f"/tenants/{tenant}/credentials/rotate")
        assert started.status_code == 202, started.content
        operation_id = started.json()["data"]["task"]["id"]
        try:
            operation = wait_for(
                lambda: (op := Operation.objects.get(pk=operation_id)).is_final and op,
                timeout=420,
                interval=1,
                what="the rotation to finish",
            )
        except AssertionError:
            unfinished = Operation.objects.get(pk=operation_id)
            deployment = apps.read_namespaced_deployment("adder", tenant)
            shown = [(p.metadata.name, p.spec.node_name, p.status.phase) for p in pods()]
            raise AssertionError(
                f"rotation {unfinished.state} {unfinished.steps}; deployment template "
                f"{deployment.spec.template.metadata.annotations} status {deployment.status}; pods {shown}"
            ) from None
        time.sleep(3)  # a few more answers from the new pod alone
    assert operation.state == Operation.State.SUCCEEDED, (operation.error, operation.steps)
    assert operation.result["endpoints"] == ["adder"]
    assert len(operation.result["revoked"]) == 1
    assert prober.failures == [], f"{len(prober.failures)} failed of {prober.answers + len(prober.failures)}"
    assert prober.answers > 50, prober.answers  # asked every 100 ms for well over 5 s

    (after,) = [pod for pod in pods() if pod.metadata.deletion_timestamp is None]
    assert after.metadata.name != before.metadata.name  # the pod was replaced, so it read the new key
    generation = apps.read_namespaced_deployment("adder", tenant).spec.template.metadata.annotations
    assert (
        generation[STORE_KEY_ANNOTATION]
        == core.read_namespace(tenant).metadata.annotations["imm.ai.intel.com/store-key"]
    )
    arranged = core.read_namespaced_pod_log(after.metadata.name, tenant, container="arrange-model")
    assert "arrange: model 'adder': versions [1]" in arranged
    print(f"rotation: {prober.answers} answers, 0 failures, operation {operation.finished_at - operation.started_at}")
