"""An `mlserver` endpoint made through the API serves a scikit-learn model from the tenant's bucket on
the devstack's real node: the admin makes the tenant, the model lands in its bucket, alice creates
the endpoint, the test controller renders it, MLServer loads it, and V2 REST inference
through the endpoint's Service answers with the model's numbers. The endpoint view says how to call it.

Skipped when the devstack's real node is off (README, "A real node").
"""

from __future__ import annotations

import io
import json
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from tests.endpoints.conftest import Platform
from tests.servings.conftest import ControllerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.real_node, pytest.mark.django_db(transaction=True)]

MODEL = "flowers"


@pytest.fixture(scope="module")
def real_node(devstack_env: dict[str, str]) -> str:
    """Listed first, so the module's other fixtures start only when the node runs."""
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env or "IMM_DEVSTACK_MLSERVER_IMAGE" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    return devstack_env["IMM_DEVSTACK_REAL_NODE_NAME"]


def linear_model() -> bytes:
    """y = 1 + 2*x0 + 3*x1, fitted exactly, as joblib bytes."""
    import joblib  # type: ignore[import-untyped]
    import numpy as np
    from sklearn.linear_model import LinearRegression  # type: ignore[import-untyped]

    fitted = LinearRegression().fit(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), [1.0, 3.0, 4.0, 6.0])
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    return buffer.getvalue()


def infer(url: str, rows: list[list[float]]) -> dict[str, Any]:
    flat = [value for row in rows for value in row]
    body = {"inputs": [{"name": "x", "shape": [len(rows), 2], "datatype": "FP64", "data": flat}]}
    request = urllib.request.Request(  # noqa: S310 -- http:// to a Service on this machine
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer: dict[str, Any] = json.load(response)
    return answer


def test_mlserver_endpoint_through_the_api_serves_the_uploaded_model(
    real_node: str, platform: Platform, controller: ControllerProcess
) -> None:
    tenant = platform.tenant()
    # Into the tenant's bucket as the platform writes an upload (the direct-upload flow has its own tests).
    platform.s3.put_object(Bucket=tenant, Key=f"{MODEL}/1/model.joblib", Body=linear_model())
    body = {
        "endpointName": "predict",
        "modelName": MODEL,
        "subjectName": "client",
        "servingName": "mlserver",
        "replicas": 1,
        "resources": {"requests.memory": "128Mi", "limits.memory": "1Gi"},
    }
    created = platform.call("alice", "post", f"/tenants/{tenant}/endpoints", body)
    assert created.status_code == 200, created.content
    assert created.json()["data"]["warning"] == ""

    core = client.CoreV1Api(platform.k8s)
    views: list[dict[str, Any]] = []

    def ready() -> bool:
        views.append(platform.call("alice", "get", f"/tenants/{tenant}/endpoints/predict").json()["data"])
        return bool(views[-1]["status"] == "available" and views[-1]["protocol"] is not None)

    try:
        wait_for(ready, timeout=300, interval=2, what="the mlserver endpoint to be available")
    except AssertionError:
        pods = core.list_namespaced_pod(tenant, label_selector="endpoint=predict").items
        states = [(p.metadata.name, p.status.phase, p.status.container_statuses) for p in pods]
        raise AssertionError(f"not available; last view {views[-1] if views else None}; pods {states}") from None
    (pod,) = core.list_namespaced_pod(tenant, label_selector="endpoint=predict").items
    assert pod.spec.node_name == real_node
    fetched = core.read_namespaced_pod_log(pod.metadata.name, tenant, container="fetch-model")
    assert f"fetch: model '{MODEL}' version 1" in fetched
    assert "mlserver_sklearn.SKLearnModel" in fetched

    protocol = views[-1]["protocol"]
    assert protocol["name"] == "Open Inference Protocol (KServe V2)"
    assert protocol["httpUrl"] == f"http://predict.{tenant}.svc:8080/v2/models/{MODEL}/infer"
    assert protocol["grpcAddress"] == f"predict.{tenant}.svc:8081"
    service = core.read_namespaced_service("predict", tenant)
    assert {(port.name, port.port) for port in service.spec.ports} == {("http", 8080), ("grpc", 8081)}

    # From the host through the Service's cluster IP (kube-proxy on this machine), as V2 REST.
    url = f"http://{service.spec.cluster_ip}:8080/v2/models/{MODEL}/infer"
    answer = infer(url, [[2.0, 3.0], [0.0, 1.0]])
    assert answer["model_name"] == MODEL
    assert answer["model_version"] == "1"
    (output,) = answer["outputs"]
    assert output["data"] == pytest.approx([14.0, 4.0])

    # The server's own log lines, through the API: MLServer says which model it loaded.
    logs = platform.call("alice", "get", f"/tenants/{tenant}/endpoints/predict/logs").json()["data"]["logs"]
    (entry,) = logs
    assert entry["container"] == "mlserver"
    assert any(f"Loaded model '{MODEL}'" in line for line in entry["lines"]), entry["lines"][-20:]
