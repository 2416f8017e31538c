"""The devstack's real node (IMM_DEVSTACK_REAL_NODE=1): real containers beside the kwok nodes.

Skipped unless the devstack runs the real node. What it proves: the node joins as Kubernetes
v1.37.2 on containerd; a pod placed on it (toleration + node selector) runs a real process of the
registry-free base image whose output `read_namespaced_pod_log` returns; the pod reaches the
`kubernetes` Service over the pod network and authenticates with its service-account token, and
has no route but its subnet and the Service range (no default route off the machine); exec
streams through the API server and the kubelet; pods without the toleration stay on kwok's nodes.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.devstack.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

KUBERNETES_VERSION = "v1.37.2"
POD_CIDR = ipaddress.ip_network("10.87.0.0/24")
PLACEMENT_KEY = "imm.ai.intel.com/real-node"

# Runs in the pod: calls the API server through the `kubernetes` Service with the pod's own
# service-account token and the cluster CA, and prints what it learnt.
PROBE = """
import ipaddress, json, os, platform, socket, ssl, struct, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
url = "https://{}:{}/version".format(os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
token = open(sa + "/token").read()
context = ssl.create_default_context(cafile=sa + "/ca.crt")
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
with urllib.request.urlopen(request, context=context, timeout=10) as response:
    version = json.load(response)["gitVersion"]
print("marker", os.environ["MARKER"], platform.node())
print("service", url, "gitVersion", version)
routes = []
for line in open("/proc/net/route").read().splitlines()[1:]:
    fields = line.split()
    dst, mask = (socket.inet_ntoa(struct.pack("<I", int(value, 16))) for value in (fields[1], fields[7]))
    routes.append(str(ipaddress.ip_network(dst + "/" + mask)))
print("routes", " ".join(sorted(routes)))
"""


@pytest.fixture(scope="module")
def node_env(devstack_env: dict[str, str]) -> dict[str, str]:
    if "IMM_DEVSTACK_REAL_NODE_NAME" not in devstack_env:
        pytest.skip("the devstack's real node is off; start it with IMM_DEVSTACK_REAL_NODE=1 (README, Devstack)")
    return devstack_env


def _on_real_node(name: str, node_env: dict[str, str], command: list[str], **container: Any) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never",
            node_selector={PLACEMENT_KEY: "true"},
            tolerations=[client.V1Toleration(key=PLACEMENT_KEY, operator="Equal", value="true", effect="NoSchedule")],
            termination_grace_period_seconds=1,
            containers=[
                client.V1Container(
                    name="main",
                    image=node_env["IMM_DEVSTACK_BASE_IMAGE"],
                    image_pull_policy="Never",
                    command=command,
                    **container,
                )
            ],
        ),
    )


def test_node_is_ready_real_and_tainted(admin: client.ApiClient, node_env: dict[str, str]) -> None:
    node = client.CoreV1Api(admin).read_node(node_env["IMM_DEVSTACK_REAL_NODE_NAME"])
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True", node.status.conditions
    assert node.status.node_info.kubelet_version == KUBERNETES_VERSION
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.metadata.labels[PLACEMENT_KEY] == "true"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [(PLACEMENT_KEY, "true", "NoSchedule")]
    # kwok manages only nodes annotated as its own; this one must never be.
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
    addresses = {a.type: a.address for a in node.status.addresses}
    assert ipaddress.ip_address(addresses["InternalIP"]) in POD_CIDR


def test_pod_runs_logs_and_reaches_the_kubernetes_service(
    admin: client.ApiClient, namespace: str, node_env: dict[str, str]
) -> None:
    core = client.CoreV1Api(admin)
    marker = uuid.uuid4().hex
    pod = _on_real_node("probe", node_env, ["python3", "-c", PROBE], env=[client.V1EnvVar(name="MARKER", value=marker)])
    core.create_namespaced_pod(namespace, pod)

    def finished() -> client.V1Pod | None:
        current = core.read_namespaced_pod("probe", namespace)
        return current if current.status.phase in ("Succeeded", "Failed") else None

    done = wait_for(finished, timeout=120, what="the probe pod to finish")
    logs = core.read_namespaced_pod_log("probe", namespace)
    assert done.status.phase == "Succeeded", logs
    assert done.spec.node_name == node_env["IMM_DEVSTACK_REAL_NODE_NAME"]
    assert ipaddress.ip_address(done.status.pod_ip) in POD_CIDR
    # The pod's hostname is its name: the process ran inside the pod, not on the host.
    assert f"marker {marker} probe" in logs
    server_version = client.VersionApi(admin).get_code().git_version
    assert f"service https://10.96.0.1:443/version gitVersion {server_version}" in logs
    # The pod network leads to this machine only: its own subnet and the Service range, no default route.
    assert "routes 10.87.0.0/24 10.96.0.0/16\n" in logs


def test_exec_streams_through_the_kubelet(admin: client.ApiClient, namespace: str, node_env: dict[str, str]) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(namespace, _on_real_node("shell", node_env, ["sleep", "300"]))
    wait_for(lambda: core.read_namespaced_pod("shell", namespace).status.phase == "Running", what="the pod to run")
    output = stream(
        core.connect_get_namespaced_pod_exec,
        "shell",
        namespace,
        command=["cat", "/etc/debian_version"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert output.strip().startswith("12."), output
    core.delete_namespaced_pod("shell", namespace, grace_period_seconds=0)


# A python-backend model that adds its inputs: the smallest model Triton really runs here.
TRITON_CONFIG = """name: "adder"
backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 2 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
TRITON_MODEL = """import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            y = pb_utils.Tensor("Y", np.array([x.sum()], dtype=np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
        return responses
"""
RESTRICTED = client.V1SecurityContext(
    run_as_non_root=True,
    allow_privilege_escalation=False,
    capabilities=client.V1Capabilities(drop=["ALL"]),
    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
)


def test_triton_image_answers_v2_inference(admin: client.ApiClient, namespace: str, node_env: dict[str, str]) -> None:
    """The registry-free Triton image serves a python-backend model over the V2 REST protocol."""
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="adder"), data={"config.pbtxt": TRITON_CONFIG, "model.py": TRITON_MODEL}
        ),
    )
    pod = _on_real_node(
        "triton",
        node_env,
        ["tritonserver", "--model-repository=/models", "--log-verbose=0"],
        security_context=RESTRICTED,
        volume_mounts=[client.V1VolumeMount(name="model", mount_path="/models/adder", read_only=True)],
        readiness_probe=client.V1Probe(
            http_get=client.V1HTTPGetAction(path="/v2/health/ready", port=8000), period_seconds=1
        ),
    )
    pod.spec.containers[0].image = node_env["IMM_DEVSTACK_TRITON_IMAGE"]
    # The triton template's init container runs Python with boto3 from the same image.
    pod.spec.init_containers = [
        client.V1Container(
            name="clients",
            image=node_env["IMM_DEVSTACK_TRITON_IMAGE"],
            image_pull_policy="Never",
            command=[
                "python3",
                "-c",
                "import boto3, numpy; print('boto3', boto3.__version__, 'numpy', numpy.__version__)",
            ],
            security_context=RESTRICTED,
        )
    ]
    pod.spec.volumes = [
        client.V1Volume(
            name="model",
            config_map=client.V1ConfigMapVolumeSource(
                name="adder",
                items=[
                    client.V1KeyToPath(key="config.pbtxt", path="config.pbtxt"),
                    client.V1KeyToPath(key="model.py", path="1/model.py"),
                ],
            ),
        )
    ]
    core.create_namespaced_pod(namespace, pod)

    def ready() -> client.V1Pod | None:
        current = core.read_namespaced_pod("triton", namespace)
        statuses = current.status.container_statuses or []
        assert current.status.phase != "Failed", core.read_namespaced_pod_log("triton", namespace)
        return current if statuses and statuses[0].ready else None

    running = wait_for(ready, timeout=180, what="Triton to load the model")
    request = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]})
    url = f"http://{running.status.pod_ip}:8000/v2/models/adder/infer"
    with urllib.request.urlopen(urllib.request.Request(url, data=request.encode()), timeout=30) as response:
        answer = json.load(response)
    assert answer["model_name"] == "adder"
    assert answer["outputs"] == [{"name": "Y", "datatype": "FP32", "shape": [1], "data": [3.75]}]
    logs = core.read_namespaced_pod_log("triton", namespace)
    assert "successfully loaded 'adder'" in logs, logs
    clients = core.read_namespaced_pod_log("triton", namespace, container="clients")
    assert clients.startswith("boto3 1.44.8 numpy 1.26.4"), clients


def test_pods_without_the_toleration_stay_on_kwok_nodes(admin: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin)
    for index in range(3):
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"simulated-{index}"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="simulated:never-pulled")]),
        )
        core.create_namespaced_pod(namespace, pod)

    def placed() -> list[str] | None:
        nodes = [str(p.spec.node_name or "") for p in core.list_namespaced_pod(namespace).items]
        return nodes if all(nodes) else None

    nodes = wait_for(placed, timeout=60, what="the scheduler to place the pods")
    kwok = {n.metadata.name for n in core.list_node(label_selector="type=kwok").items}
    assert set(nodes) <= kwok, nodes
