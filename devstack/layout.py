"""Where the devstack keeps things and which loopback ports it uses.

State (data, logs, PIDs, certificates, the env file) lives in `.devstack/` inside the checkout,
so two checkouts never share a cluster by accident. Built binaries live in a cache OUTSIDE the
checkout, keyed by content, so fresh clones and CI runs on the same machine skip slow builds.
Every port can be moved with an environment variable when a default is taken on a machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("IMM_DEVSTACK_STATE", ROOT / ".devstack"))
LOGS = STATE / "logs"
PIDS = STATE / "pids"
DATA = STATE / "data"
PKI = STATE / "pki"
CONF = STATE / "conf"
ENV_FILE = STATE / "env"
CACHE = Path(
    os.environ.get(
        "IMM_DEVSTACK_CACHE",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imm-devstack",
    )
)

# Rendered into every manifest that needs it: the shared deployment sources (CRD, RBAC) live in
# the Helm chart so that the chart and the devstack can never drift apart.
CHART = ROOT / "helm" / "imm"

SYSTEM_NAMESPACE = "imm-system"
SERVINGS_NAMESPACE = "imm-servings"
MANAGEMENT_USER = "imm-management-api"
# The InferenceEndpoint controller's own identity (helm/imm/files/rbac/controller.yaml).
CONTROLLER_USER = "imm-controller"
# Endpoint URLs are <endpoint>-<tenant>.<PLATFORM_DOMAIN>; the inference TLS secret covers it.
PLATFORM_DOMAIN = "imm.local"
INFERENCE_TLS_SECRET = "tls-secret"  # noqa: S105 -- an object name


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"devstack: {name}={raw!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise SystemExit(f"devstack: {name}={value} is outside 1-65535")
    return value


@dataclass(frozen=True)
class Ports:
    """Loopback ports, away from the well-known defaults so a real cluster on the laptop is safe."""

    etcd: int = _port("IMM_DEVSTACK_ETCD_PORT", 12379)
    etcd_peer: int = _port("IMM_DEVSTACK_ETCD_PEER_PORT", 12380)
    apiserver: int = _port("IMM_DEVSTACK_APISERVER_PORT", 16443)
    controller_manager: int = _port("IMM_DEVSTACK_CONTROLLER_MANAGER_PORT", 10357)
    scheduler: int = _port("IMM_DEVSTACK_SCHEDULER_PORT", 10359)
    kwok: int = _port("IMM_DEVSTACK_KWOK_PORT", 10347)
    s3: int = _port("IMM_DEVSTACK_S3_PORT", 18333)
    s3_master: int = _port("IMM_DEVSTACK_S3_MASTER_PORT", 19333)
    s3_volume: int = _port("IMM_DEVSTACK_S3_VOLUME_PORT", 18080)
    s3_filer: int = _port("IMM_DEVSTACK_S3_FILER_PORT", 18888)
    redis: int = _port("IMM_DEVSTACK_REDIS_PORT", 16379)
    ldap: int = _port("IMM_DEVSTACK_LDAP_PORT", 13389)
    dex: int = _port("IMM_DEVSTACK_DEX_PORT", 15556)
    postgres: int = _port("IMM_DEVSTACK_POSTGRES_PORT", 15432)
    # Prometheus, and the metrics ports `make dev` gives the worker and the controller (it scrapes them).
    prometheus: int = _port("IMM_DEVSTACK_PROMETHEUS_PORT", 19090)
    worker_metrics: int = _port("IMM_DEVSTACK_WORKER_METRICS_PORT", 19101)
    controller_metrics: int = _port("IMM_DEVSTACK_CONTROLLER_METRICS_PORT", 19102)
    # The real node (IMM_DEVSTACK_REAL_NODE=1): the kubelet serves on the pod bridge's address,
    # everything else on loopback.
    kubelet: int = _port("IMM_DEVSTACK_KUBELET_PORT", 10550)
    kubelet_healthz: int = _port("IMM_DEVSTACK_KUBELET_HEALTHZ_PORT", 10548)
    kube_proxy_healthz: int = _port("IMM_DEVSTACK_KUBE_PROXY_HEALTHZ_PORT", 10556)
    kube_proxy_metrics: int = _port("IMM_DEVSTACK_KUBE_PROXY_METRICS_PORT", 10549)
    containerd_stream: int = _port("IMM_DEVSTACK_CONTAINERD_STREAM_PORT", 10510)
    # metrics-server (with the real node), on loopback; kube-apiserver's aggregator reaches it there.
    metrics_server: int = _port("IMM_DEVSTACK_METRICS_SERVER_PORT", 10551)


PORTS = Ports()
