"""Real inference through the product, as alice, on the devstack's real node (issues 16 and 18).

Everything a user does goes through the API: the admin creates the tenant, alice uploads a Triton
python-backend model with the direct upload API, creates a `triton` endpoint, switches its version
policy, scales it, reads its logs and deletes it; the real controller (tests/endpoints/conftest.py)
renders it and writes its status. The test reads the cluster only to find the pods' and the
Service's addresses (pod IPs on the bridge imm0 are reachable from this host) and to check which
object-store key the pods got. V2 inference goes over REST (urllib) and over gRPC (tritonclient).

Skipped when the real node is off (`IMM_DEVSTACK_REAL_NODE=1`, README "A real node"); CI starts it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton_grpc
from kubernetes import client

from inferencemgmt import objectstore
from tests.endpoints.conftest import Platform
from tests.servings.conftest import ControllerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.real_node, pytest.mark.django_db(transaction=True)]

# The input every request sends; version 1 answers the sum, version 2 ten times the sum.
X = [1.5, 2.25]
ANSWERS = {1: 3.75, 2: 37.5}
CONFIG = """name: "whatever-the-upload-says"
backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 2 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
MODEL = """import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            y = pb_utils.Tensor("Y", np.array([x.sum() * FACTOR], dtype=np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
        return responses
"""
# A model the server cannot load: its initialize() fails with a reason the status must carry.
BROKEN = """class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights missing: broken on purpose")

    def execute(self, requests):
        return []
"""
READY_SECONDS = 300
# This module's Celery broker database (tests/endpoints/conftest.py `platform`): the upload completions
# are Operations, and another endpoints module running beside must not take their messages.
BROKER_REDIS_DB = 12


@pytest.fixture(scope="module")
def real_node(devstack_env: dict[str, str]) -> dict[str, str]:
    """Listed before `platform`, so a devstack without the node skips before workers start."""
    if "IMM_DEVSTACK_S3_CLUSTER_URL" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    return devstack_env


@pytest.fixture(scope="module")
def tenant(real_node: dict[str, str], platform: Platform, controller: ControllerProcess) -> Iterator[str]:
    """A team-a tenant (made by the admin through the API) holding models `adder` (1, 2) and `broken` (1)."""
    name = platform.tenant(maxEndpoints=10)
    for version in (1, 2):
        upload(platform, name, "adder", version, "config.pbtxt", CONFIG)
        upload(platform, name, "adder", version, "model.py", MODEL.replace("FACTOR", str(10 ** (version - 1))))
    upload(platform, name, "broken", 1, "config.pbtxt", CONFIG)
    upload(platform, name, "broken", 1, "model.py", BROKEN)
    yield name
    # Endpoints first (their pods run real processes on the node); the tenant goes with the module.
    for endpoint in platform.crs(name):
        platform.call("alice", "delete", f"/tenants/{name}/endpoints/{endpoint}")


def upload(platform: Platform, tenant: str, model: str, version: int, path: str, text: str) -> None:
    """The direct upload API as a client uses it: a plan, a PUT to the presigned URL, completion."""
    data = text.encode()
    plan = platform.call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads",
        {"modelName": model, "modelVersion": version, "path": path, "size": len(data)},
    )
    assert plan.status_code == 200, plan.content
    (part,) = plan.json()["data"]["missing"]
    assert requests.put(part["url"], data=data, timeout=60).status_code == 200
    digest = hashlib.md5(data).hexdigest()  # noqa: S324 -- the store's part ETag is an MD5
    upload_id = plan.json()["data"]["uploadId"]
    done = platform.call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads/{upload_id}/complete",
        {"parts": [{"partNumber": 1, "md5": digest}]},
    )
    if done.status_code == 202:  # the completion outlived the synchronous wait: follow its task
        task = done.json()["data"]["task"]["url"]

        def finished() -> Any:
            state = platform.call("alice", "get", task).json()["data"]["state"]
            return state if state in ("SUCCEEDED", "FAILED", "ROLLED_BACK") else None

        assert wait_for(finished, 120, 1, f"upload task {task}") == "SUCCEEDED"
        return
    assert done.status_code == 200, done.content


# --- inference clients ---------------------------------------------------------------------------
def rest_infer(address: str, model: str = "adder") -> float:
    """POST /v2/models/<model>/infer (Open Inference Protocol over REST); the single output value."""
    body = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": X}]}).encode()
    request = urllib.request.Request(f"http://{address}:8000/v2/models/{model}/infer", data=body)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- a pod/Service on this machine
        answer = json.load(response)
    assert answer["model_name"] == model
    assert [(o["name"], o["datatype"], o["shape"]) for o in answer["outputs"]] == [("Y", "FP32", [1])]
    return float(answer["outputs"][0]["data"][0])


def grpc_infer(address: str, model: str = "adder") -> float:
    """ModelInfer over gRPC (inference.GRPCInferenceService) with Triton's own client."""
    with triton_grpc.InferenceServerClient(url=f"{address}:8001") as grpc_client:
        tensor = triton_grpc.InferInput("X", [2], "FP32")
        tensor.set_data_from_numpy(np.array(X, dtype=np.float32))
        result = grpc_client.infer(model, [tensor], client_timeout=10)
        assert result.get_response().model_name == model
        return float(result.as_numpy("Y")[0])


def answers(address: str) -> float | None:
    """The REST answer, or None while nothing answers yet (not listening, no endpoint, not loaded)."""
    try:
        return rest_infer(address)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


# --- reading the cluster ---------------------------------------------------------------------------
def pods(platform: Platform, tenant: str, endpoint: str) -> list[Any]:
    core = client.CoreV1Api(platform.k8s)
    return list(core.list_namespaced_pod(tenant, label_selector=f"ai.intel.com/inference-endpoint={endpoint}").items)


def ready_pods(platform: Platform, tenant: str, endpoint: str) -> list[Any]:
    found = []
    for pod in pods(platform, tenant, endpoint):
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        if conditions.get("Ready") == "True" and not pod.metadata.deletion_timestamp:
            found.append(pod)
    return found


def service_ip(platform: Platform, tenant: str, endpoint: str) -> str:
    return str(client.CoreV1Api(platform.k8s).read_namespaced_service(endpoint, tenant).spec.cluster_ip)


def view(platform: Platform, tenant: str, endpoint: str) -> dict[str, Any]:
    answer = platform.call("alice", "get", f"/tenants/{tenant}/endpoints/{endpoint}")
    assert answer.status_code == 200, answer.content
    data: dict[str, Any] = answer.json()["data"]
    return data


def condition(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in data["conditions"] if c["type"] == kind), {})


def create(platform: Platform, tenant: str, endpoint: str, model: str, policy: str) -> None:
    body = {
        "endpointName": endpoint,
        "modelName": model,
        "subjectName": "client",
        "servingName": "triton",
        "modelVersionPolicy": policy,
    }
    created = platform.call("alice", "post", f"/tenants/{tenant}/endpoints", body)
    assert created.status_code == 200, created.content
    assert created.json()["data"]["warning"] == ""  # the model is in the bucket


def delete(platform: Platform, tenant: str, endpoint: str) -> None:
    deleted = platform.call("alice", "delete", f"/tenants/{tenant}/endpoints/{endpoint}")
    assert deleted.status_code == 200, deleted.content


def first_inference_seconds(platform: Platform, tenant: str, endpoint: str, policy: str) -> float:
    """Create the endpoint and poll its Service until the first correct V2 answer: the time it took."""
    began = time.monotonic()
    create(platform, tenant, endpoint, "adder", policy)
    address = wait_for(lambda: service_ip(platform, tenant, endpoint), READY_SECONDS, 0.2, "the Service")
    wait_for(lambda: answers(address) == ANSWERS[1], READY_SECONDS, 0.2, f"{endpoint} to answer")
    return time.monotonic() - began


# --- the tests -------------------------------------------------------------------------------------
def test_triton_endpoint_serves_v2_inference_through_its_whole_life(platform, tenant, real_node):
    node = real_node["IMM_DEVSTACK_REAL_NODE_NAME"]
    seconds = first_inference_seconds(platform, tenant, "adder", "{specific{versions:1 }}")
    sys.stdout.write(f"\n[inference] create -> first successful inference: {seconds:.1f}s\n")
    address = service_ip(platform, tenant, "adder")
    assert grpc_infer(address) == ANSWERS[1]

    # Ready through the API, with the pod on the real node.
    wait_for(lambda: condition(view(platform, tenant, "adder"), "Ready").get("status") == "True", 120, 1, "Ready")
    data = view(platform, tenant, "adder")
    assert (data["reason"], data["endpoint status"]["running pods"]) == ("Available", 1), data
    (pod,) = ready_pods(platform, tenant, "adder")
    assert pod.spec.node_name == node
    assert rest_infer(pod.status.pod_ip) == grpc_infer(pod.status.pod_ip) == ANSWERS[1]

    # The pod loaded the model with the tenant's own key (issue 18), never the platform's.
    secret = client.CoreV1Api(platform.k8s).read_namespaced_secret("minio-access-info", tenant)
    key = base64.b64decode(secret.data["minio.access_key_id"]).decode()
    assert key != real_node["S3_ACCESS_KEY_ID"]
    assert key in objectstore.tenant_keys(tenant)
    assert base64.b64decode(secret.data["minio.endpoint_url"]).decode() == real_node["IMM_DEVSTACK_S3_CLUSTER_URL"]
    (init,) = pod.spec.init_containers
    store_env = {e.name: e.value_from.secret_key_ref for e in init.env or [] if e.name.startswith("AWS_")}
    assert {name: (ref.name, ref.key) for name, ref in store_env.items()} == {
        "AWS_ACCESS_KEY_ID": ("minio-access-info", "minio.access_key_id"),
        "AWS_SECRET_ACCESS_KEY": ("minio-access-info", "minio.access_secret_key"),
        "AWS_ENDPOINT_URL": ("minio-access-info", "minio.endpoint_url"),
        "AWS_REGION": ("minio-access-info", "minio.minio_region"),
    }
    assert all(not (c.env or []) for c in pod.spec.containers), "the server itself holds no store credentials"
    arranged = client.CoreV1Api(platform.k8s).read_namespaced_pod_log(
        pod.metadata.name, tenant, container="arrange-model"
    )
    assert f"arrange: model 'adder': versions [1] from s3://{tenant}/adder/" in arranged

    # Real logs through the API: Triton's own lines.
    logs = platform.call("alice", "get", f"/tenants/{tenant}/endpoints/adder/logs?tail=200")
    assert logs.status_code == 200, logs.content
    (entry,) = logs.json()["data"]["logs"]
    assert (entry["pod"], entry["container"]) == (pod.metadata.name, "triton")
    text = "\n".join(entry["lines"])
    assert "successfully loaded 'adder'" in text, text
    assert any(line.replace(" ", "").startswith("|adder|1|READY") for line in entry["lines"]), text
    assert "Started GRPCInferenceService at 0.0.0.0:8001" in text
    assert "Started HTTPService at 0.0.0.0:8000" in text

    # Version 2 through the API: the pods roll and the answer changes, over REST and gRPC.
    patched = platform.call(
        "alice", "patch", f"/tenants/{tenant}/endpoints/adder", {"modelVersionPolicy": "{specific{versions:2 }}"}
    )
    assert patched.status_code == 200, patched.content
    wait_for(lambda: answers(address) == ANSWERS[2], READY_SECONDS, 0.5, "version 2 to answer")
    wait_for(lambda: answers(address) == ANSWERS[2] and len(pods(platform, tenant, "adder")) == 1, 120, 1, "rollout")
    assert grpc_infer(address) == ANSWERS[2]

    # Two replicas through the API: both pods answer, each on its own address.
    scaled = platform.call("alice", "patch", f"/tenants/{tenant}/endpoints/adder/replicas", {"replicas": 2})
    assert scaled.status_code == 200, scaled.content
    both = wait_for(lambda: len(ready_pods(platform, tenant, "adder")) == 2, READY_SECONDS, 1, "two ready pods")
    assert both
    running = ready_pods(platform, tenant, "adder")
    assert {p.spec.node_name for p in running} == {node}
    assert len({p.status.pod_ip for p in running}) == 2
    for replica in running:
        assert rest_infer(replica.status.pod_ip) == ANSWERS[2]
        assert grpc_infer(replica.status.pod_ip) == ANSWERS[2]
    wait_for(lambda: condition(view(platform, tenant, "adder"), "Ready").get("status") == "True", 120, 1, "Ready x2")
    assert view(platform, tenant, "adder")["endpoint status"]["running pods"] == 2

    # Deleted through the API: the pods go.
    delete(platform, tenant, "adder")
    wait_for(lambda: not pods(platform, tenant, "adder"), 180, 1, "the pods to go")
    assert answers(address) is None


def test_a_model_the_server_cannot_load_degrades_its_endpoint_only(platform, tenant):
    """CrashLoop with Triton's own reason on the broken endpoint; the tenant's other endpoint answers."""
    seconds = first_inference_seconds(platform, tenant, "healthy", "{specific{versions:1 }}")
    address = service_ip(platform, tenant, "healthy")
    create(platform, tenant, "broken", "broken", "{latest{}}")

    seen: list[str] = []

    def degraded() -> dict[str, Any] | None:
        """The view once it says CrashLoop with Triton's reason (a snapshot: the status moves on every restart)."""
        data = view(platform, tenant, "broken")
        seen.append(f"{data['reason']}: {data['message']}")
        return data if data["reason"] == "CrashLoop" and "weights missing" in data["message"] else None

    try:
        data = wait_for(degraded, READY_SECONDS, 1, "the broken endpoint to be Degraded (CrashLoop)")
    except AssertionError:
        raise AssertionError(f"never CrashLoop with Triton's reason; seen {sorted(set(seen))}") from None
    found = condition(data, "Degraded")
    assert (found["status"], found["reason"], found["message"]) == ("True", "CrashLoop", data["message"])
    assert condition(data, "Ready")["status"] == "False"
    assert ", container triton restarted " in found["message"]
    assert "exit code 1 (Error)" in found["message"]
    # Triton's own line: failed to load 'broken' version 1: ... RuntimeError: weights missing: broken on purpose
    assert "failed to load 'broken' version 1" in found["message"], found["message"]
    assert "weights missing: broken on purpose" in found["message"], found["message"]
    sys.stdout.write(f"\n[inference] broken endpoint: {found['reason']}: {found['message']}\n")
    listed = platform.call("alice", "get", f"/tenants/{tenant}/endpoints").json()["data"]["endpoints"]
    assert {e["name"]: e["status"] for e in listed}["broken"] != "available"

    # The tenant's other endpoint keeps answering, over both protocols, while the broken one crashes.
    for _ in range(5):
        assert rest_infer(address) == grpc_infer(address) == ANSWERS[1]
        time.sleep(0.5)
    assert condition(view(platform, tenant, "healthy"), "Degraded").get("status") != "True"
    sys.stdout.write(f"\n[inference] create -> first successful inference (second endpoint): {seconds:.1f}s\n")
    for endpoint in ("broken", "healthy"):
        delete(platform, tenant, endpoint)
    wait_for(lambda: not pods(platform, tenant, "broken") and not pods(platform, tenant, "healthy"), 180, 1, "pods")


def test_create_to_first_inference_p50(platform, tenant):
    """Three creates in a row, each timed from POST to the first correct answer; p50 printed for the README."""
    timings = []
    for run in range(3):
        endpoint = f"timed{run}"
        timings.append(first_inference_seconds(platform, tenant, endpoint, "{specific{versions:1 }}"))
        delete(platform, tenant, endpoint)
        wait_for(lambda: not pods(platform, tenant, endpoint), 180, 1, "the pods to go")  # noqa: B023 -- called now
    sys.stdout.write(
        f"\n[inference] create -> first inference over {len(timings)} runs: "
        f"{', '.join(f'{t:.1f}s' for t in timings)}; p50 {statistics.median(timings):.1f}s\n"
    )
