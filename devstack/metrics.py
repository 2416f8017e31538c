"""metrics-server beside the real node: pod CPU for HorizontalPodAutoscalers (README, Autoscaling).

Only when the real node runs (kwok's simulated pods use no CPU, and a metrics-server that cannot
reach them would make the metrics API fail). Built from the Go module proxy like the other Go
programs (devstack/metrics-server/go.mod pins it; devstack.build caches it outside the checkout
and shows progress) and run as a host process, as the rest of the devstack:

- it scrapes the kubelet's resource metrics (`/metrics/resource`) on the real node only
  (`--node-selector`: the kwok nodes' addresses lead nowhere), over TLS verified with the devstack
  CA, as its own user `imm-metrics-server`, which the kubelet authorises by a webhook;
- kube-apiserver reaches it through the aggregation layer: an APIService `v1beta1.metrics.k8s.io`
  backed by an ExternalName Service `kube-system/metrics-server` -> localhost (the aggregator routes
  an ExternalName to that host, so no ClusterIP routing and no kube-apiserver flag is needed), TLS
  verified against the devstack CA with the name `metrics-server.kube-system.svc`.

An APIService whose server is gone makes discovery fail, and namespaces then never finish
deleting; so a start without the real node removes the registration, and one that cannot make it
Available removes it again before failing.
"""

from __future__ import annotations

import base64
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack import pki
from devstack.build import go_binary
from devstack.layout import PORTS
from devstack.proc import Part, StackError, recorded_pid, say, stop

NAME = "metrics-server"
USER = "imm-metrics-server"
NAMESPACE = "kube-system"
API_SERVICE = "v1beta1.metrics.k8s.io"
SERVICE_HOST = f"{NAME}.{NAMESPACE}.svc"  # the name the aggregator verifies in the serving certificate
REAL_NODE_SELECTOR = "imm.ai.intel.com/real-node=true"
# How often the kubelet is scraped; the HPA controller reads every 15 s.
RESOLUTION = "15s"
RBAC = "rbac.authorization.k8s.io"


def binary() -> Path:
    return go_binary(NAME, "sigs.k8s.io/metrics-server/cmd/metrics-server", NAME)


def _https_ok(url: str) -> bool:
    context = ssl.create_default_context(cafile=str(pki.ensure_ca().cert))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200)


def part(write_kubeconfig: Any) -> Part:
    """The process; `write_kubeconfig(user, keypair)` is the cluster's kubeconfig writer."""
    program = str(binary())
    ca = pki.ensure_ca()
    kubeconfig = write_kubeconfig("metrics-server", pki.issue(f"user-{NAME}", USER, client=True))
    serving = pki.issue(f"{NAME}-serving", SERVICE_HOST, hosts=(SERVICE_HOST, "localhost", "127.0.0.1"), server=True)
    return Part(
        NAME,
        [
            program,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS.metrics_server}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--kubelet-port={PORTS.kubelet}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={ca.cert}",
            f"--node-selector={REAL_NODE_SELECTOR}",
            f"--metric-resolution={RESOLUTION}",
            "--v=1",
        ],
        # Alive and serving. Not /readyz: seen here, it answers "no metrics to serve" for as long as
        # the real node runs no pod (a fresh devstack), although the node is scraped every cycle, so
        # a start would wait for ever; the APIService turns Available on the served API alone, and
        # pods' CPU is there for the HPAs as soon as pods run.
        ready=lambda: _https_ok(f"https://127.0.0.1:{PORTS.metrics_server}/livez"),
        ports=(PORTS.metrics_server,),
        timeout=90,
    )


def rbac_manifests() -> list[dict[str, Any]]:
    """What metrics-server may do: read nodes and pods, the kubelet's metrics, delegate authn/authz."""
    subject = [{"apiGroup": RBAC, "kind": "User", "name": USER}]
    labels = {"app.kubernetes.io/part-of": "inference-model-manager"}
    return [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": USER, "labels": labels},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": USER, "labels": labels},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": USER},
            "subjects": subject,
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{USER}:system:auth-delegator", "labels": labels},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": subject,
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{USER}-auth-reader", "namespace": NAMESPACE, "labels": labels},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": subject,
        },
    ]


def registration_manifests() -> list[dict[str, Any]]:
    """The ExternalName Service and the APIService that route metrics.k8s.io to the process."""
    labels = {"app.kubernetes.io/part-of": "inference-model-manager"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": PORTS.metrics_server, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE, "labels": labels},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": NAME, "namespace": NAMESPACE, "port": PORTS.metrics_server},
                "caBundle": base64.b64encode(pki.ensure_ca().cert.read_bytes()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def _apply(api_client: Any, manifests: list[dict[str, Any]]) -> None:
    from kubernetes import dynamic

    api = dynamic.DynamicClient(api_client)
    for manifest in manifests:
        resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        api.server_side_apply(resource, body=manifest, field_manager="imm-devstack", force_conflicts=True)


def _available(api_client: Any) -> tuple[bool, str]:
    from kubernetes import client

    found = client.ApiregistrationV1Api(api_client).read_api_service(API_SERVICE)
    for condition in found.status.conditions or []:
        if condition.type == "Available":
            return condition.status == "True", f"{condition.reason}: {condition.message}"
    return False, "not reported yet"


def unregister(admin_kubeconfig: Path) -> bool:
    """Remove the APIService (and its Service); True if there was one. Safe when nothing is registered."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(admin_kubeconfig))
    removed = False
    try:
        client.ApiregistrationV1Api(api_client).delete_api_service(API_SERVICE)
        removed = True
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    try:
        client.CoreV1Api(api_client).delete_namespaced_service(NAME, NAMESPACE)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    return removed


def up(admin_kubeconfig: Path, write_kubeconfig: Any, timeout: float = 60.0) -> None:
    """RBAC, the process (started only if it is not running), then the registration, Available.

    Idempotent: a running metrics-server is reused and the manifests are applied again (server-side
    apply). Nothing else of the devstack is touched.
    """
    from kubernetes import config

    api_client = config.new_client_from_config(str(admin_kubeconfig))
    _apply(api_client, rbac_manifests())
    process = part(write_kubeconfig)
    reused = recorded_pid(NAME) is not None
    waited = process.start()
    say(f"{NAME}: {'already running' if reused else 'started'}, ready in {waited:.1f}s (scraping the real node)")
    _apply(api_client, registration_manifests())
    deadline = time.monotonic() + timeout
    while True:
        available, why = _available(api_client)
        if available:
            say(f"{NAME}: {API_SERVICE} Available (pod CPU for HorizontalPodAutoscalers)")
            return
        if time.monotonic() > deadline:
            # Never leave an unavailable APIService behind: namespace deletions would hang on it.
            unregister(admin_kubeconfig)
            raise StackError(f"{NAME}: {API_SERVICE} not Available after {timeout:.0f}s ({why}); unregistered it")
        time.sleep(1)


def down() -> bool:
    """Stop the process (the registration is removed by the next start without the real node)."""
    return stop(NAME)
