"""`python -m devstack.podtargets`: the serving pods of the real node as Prometheus file_sd targets.

Debian's `prometheus` is built without Kubernetes service discovery, so this small loop of the
devstack does that part: every few seconds it lists the Running pods of InferenceEndpoints on the
real node (the devstack's admin kubeconfig) and writes one target per container port named
`metrics` (Triton's :8002), labelled `namespace` (the tenant), `endpoint` (the controller's endpoint
label) and `pod`: the labels the endpoint traffic route queries by. Pods of the fake (kwok) nodes
have no address to scrape and are left out. The file is replaced whole, so Prometheus never reads
half of it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from devstack import cluster, realnode
from devstack.layout import DATA

TARGETS = DATA / "prometheus" / "serving-pods.json"
ENDPOINT_LABEL = "ai.intel.com/inference-endpoint"
INTERVAL_SECONDS = 5.0


def targets(pods: list[Any]) -> list[dict[str, Any]]:
    """file_sd groups for pods as the client library returns them (V1Pod)."""
    found = []
    for pod in pods:
        address = pod.status.pod_ip if pod.status else None
        if not address or (pod.status.phase or "") != "Running":
            continue
        labels = pod.metadata.labels or {}
        for container in pod.spec.containers or []:
            for port in container.ports or []:
                if port.name == "metrics":
                    found.append(
                        {
                            "targets": [f"{address}:{port.container_port}"],
                            "labels": {
                                "namespace": pod.metadata.namespace,
                                "endpoint": labels.get(ENDPOINT_LABEL, ""),
                                "pod": pod.metadata.name,
                            },
                        }
                    )
    return sorted(found, key=lambda group: group["targets"][0])


def write(groups: list[dict[str, Any]]) -> None:
    TARGETS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(groups, indent=1, sort_keys=True)
    if TARGETS.exists() and TARGETS.read_text() == text:
        return
    partial = TARGETS.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(TARGETS)


def main() -> int:
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig_path("admin"))))
    if not TARGETS.exists():
        write([])
    while True:
        try:
            pods = core.list_pod_for_all_namespaces(
                label_selector=ENDPOINT_LABEL, field_selector=f"spec.nodeName={realnode.NODE_NAME}", _request_timeout=10
            ).items
            write(targets(pods))
        except Exception as exc:  # the API server restarting: keep the last targets, try again
            print(f"podtargets: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(INTERVAL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
