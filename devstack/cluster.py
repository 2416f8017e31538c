"""The Kubernetes part of the devstack: etcd, kube-apiserver, controller manager, scheduler, kwok.

Set up as a real cluster is: TLS from the local CA, x509 client identities, service-account
signing keys, the Node and RBAC authorizers, the usual admission chain (NamespaceLifecycle,
ResourceQuota, ...). kwok plays the kubelets of two fake nodes, so pods are scheduled and go
Pending -> Running -> Ready, and are removed on scale-down, without containers.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from devstack import pki
from devstack.build import go_binary
from devstack.layout import (
    CHART,
    CONF,
    CONTROLLER_USER,
    DATA,
    INFERENCE_TLS_SECRET,
    MANAGEMENT_USER,
    PLATFORM_DOMAIN,
    PORTS,
    ROOT,
    SERVINGS_NAMESPACE,
    SYSTEM_NAMESPACE,
)
from devstack.proc import Part, StackError, say
from servings.catalogue import serving_template_configmaps

APISERVER_URL = f"https://127.0.0.1:{PORTS.apiserver}"
SERVICE_CIDR = "10.96.0.0/16"
FAKE_NODES = ("kwok-node-0", "kwok-node-1")


def kubeconfig_path(user: str) -> Path:
    return CONF / f"{user}.kubeconfig"


def write_kubeconfig(user: str, cert: pki.KeyPair) -> Path:
    """A kubeconfig that authenticates with a client certificate of the local CA."""
    ca = pki.ensure_ca()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "imm-devstack", "cluster": {"server": APISERVER_URL, "certificate-authority": str(ca.cert)}}
        ],
        "users": [{"name": user, "user": {"client-certificate": str(cert.cert), "client-key": str(cert.key)}}],
        "contexts": [{"name": f"{user}@imm-devstack", "context": {"cluster": "imm-devstack", "user": user}}],
        "current-context": f"{user}@imm-devstack",
    }
    CONF.mkdir(parents=True, exist_ok=True)
    path = kubeconfig_path(user)
    # Written aside and renamed, so a client reading it during `devstack up` never sees half a file.
    partial = path.with_suffix(".partial")
    partial.write_text(yaml.safe_dump(config, sort_keys=False))
    partial.chmod(0o600)
    partial.replace(path)
    return path


def _https_ok(url: str, cert: pki.KeyPair | None = None) -> bool:
    context = ssl.create_default_context(cafile=str(pki.ensure_ca().cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def credentials() -> dict[str, Path]:
    """Issue every certificate and kubeconfig the cluster and its clients use."""
    pki.ensure_ca()
    pki.ensure_signing_key("service-account")
    pki.issue(
        "apiserver",
        "kube-apiserver",
        hosts=(
            "127.0.0.1",
            "localhost",
            "10.96.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        server=True,
    )
    identities = {
        "admin": ("kubernetes-admin", ("system:masters",)),
        "controller-manager": ("system:kube-controller-manager", ()),
        "scheduler": ("system:kube-scheduler", ()),
        # kwok plays every node's kubelet; it needs to write node and pod status cluster-wide.
        "kwok": ("kwok-controller", ("system:masters",)),
        "management-api": (MANAGEMENT_USER, ()),
        "controller": (CONTROLLER_USER, ()),
    }
    paths = {}
    for name, (common_name, groups) in identities.items():
        cert = pki.issue(f"user-{name}", common_name, organizations=groups, client=True)
        paths[name] = write_kubeconfig(name, cert)
    return paths


# kwok's own simulation stages, read from the kwok module we build: nodes initialise and keep a
# lease heartbeat; pods go Pending -> Running -> Ready with kwok's "general" delays (1-6 s each),
# and are removed on deletion. Taking them from the module keeps them in step with the binary.
KWOK_STAGES = ("node/fast", "node/heartbeat-with-lease", "pod/general")


def _kwok_config() -> Path:
    found = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=ROOT / "devstack" / "kwok",
        capture_output=True,
        text=True,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise StackError(f"kwok: cannot locate the kwok module's stages: {found.stderr.strip()}")
    stage_root = Path(found.stdout.strip()) / "kustomize" / "stage"
    documents = []
    for stage in KWOK_STAGES:
        for path in sorted((stage_root / stage).glob("*.yaml")):
            if path.name != "kustomization.yaml":
                documents.append(path.read_text())
    config = CONF / "kwok.yaml"
    config.write_text("\n---\n".join(documents))
    return config


# kube-apiserver's network flags without a real node: loopback only, and no endpoint for the
# `kubernetes` Service (nothing in-cluster calls it: kwok runs no pods).
LOOPBACK_APISERVER_FLAGS = [
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    "--endpoint-reconciler-type=none",
]


def parts(oidc_flags: list[str], node_flags: list[str] | None = None) -> list[Part]:
    """The cluster's processes in start order.

    `oidc_flags` make kube-apiserver trust the issuer; `node_flags` (devstack.realnode) replace
    its loopback-only network flags when a real node joins.
    """
    kube = str(go_binary("kube", ".", "imm-kube"))
    kwok = str(go_binary("kwok", "sigs.k8s.io/kwok/cmd/kwok", "kwok"))
    kubeconfigs = credentials()
    ca = pki.ensure_ca()
    sa = pki.ensure_signing_key("service-account")
    serving = pki.issue("apiserver", "kube-apiserver", server=True)
    admin_cert = pki.issue("user-admin", "kubernetes-admin", client=True)
    front_proxy = pki.issue("front-proxy-client", "front-proxy-client", client=True)
    cm_serving = pki.issue(
        "controller-manager-serving", "kube-controller-manager", hosts=("127.0.0.1", "localhost"), server=True
    )
    scheduler_serving = pki.issue("scheduler-serving", "kube-scheduler", hosts=("127.0.0.1", "localhost"), server=True)
    etcd_url = f"http://127.0.0.1:{PORTS.etcd}"
    etcd_peer = f"http://127.0.0.1:{PORTS.etcd_peer}"
    DATA.mkdir(parents=True, exist_ok=True)
    return [
        Part(
            "etcd",
            [
                kube,
                "etcd",
                "--name=devstack",
                f"--data-dir={DATA / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={etcd_peer}",
                f"--initial-advertise-peer-urls={etcd_peer}",
                f"--initial-cluster=devstack={etcd_peer}",
                "--listen-metrics-urls=",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
            ready=lambda: _http_ok(f"{etcd_url}/health"),
            ports=(PORTS.etcd, PORTS.etcd_peer),
        ),
        Part(
            "kube-apiserver",
            [
                kube,
                "kube-apiserver",
                f"--etcd-servers={etcd_url}",
                *(LOOPBACK_APISERVER_FLAGS if node_flags is None else node_flags),
                f"--secure-port={PORTS.apiserver}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={ca.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultTolerationSeconds,NodeRestriction,ResourceQuota",
                "--allow-privileged=true",
                "--profiling=false",
                "--event-ttl=1h",
                # The aggregation layer's front proxy, as kubeadm sets it up; components read this CA.
                f"--requestheader-client-ca-file={ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={front_proxy.cert}",
                f"--proxy-client-key-file={front_proxy.key}",
                "--v=1",
                *oidc_flags,
            ],
            ready=lambda: _https_ok(f"{APISERVER_URL}/readyz", admin_cert),
            ports=(PORTS.apiserver,),
            timeout=120,
        ),
        Part(
            "kube-controller-manager",
            [
                kube,
                "kube-controller-manager",
                f"--kubeconfig={kubeconfigs['controller-manager']}",
                f"--authentication-kubeconfig={kubeconfigs['controller-manager']}",
                f"--authorization-kubeconfig={kubeconfigs['controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={PORTS.controller_manager}",
                f"--tls-cert-file={cm_serving.cert}",
                f"--tls-private-key-file={cm_serving.key}",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={ca.cert}",
                f"--cluster-signing-cert-file={ca.cert}",
                f"--cluster-signing-key-file={ca.key}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
            ready=lambda: _https_ok(f"https://127.0.0.1:{PORTS.controller_manager}/healthz"),
            ports=(PORTS.controller_manager,),
        ),
        Part(
            "kube-scheduler",
            [
                kube,
                "kube-scheduler",
                f"--kubeconfig={kubeconfigs['scheduler']}",
                f"--authentication-kubeconfig={kubeconfigs['scheduler']}",
                f"--authorization-kubeconfig={kubeconfigs['scheduler']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={PORTS.scheduler}",
                "--leader-elect=false",
                "--v=1",
                f"--tls-cert-file={scheduler_serving.cert}",
                f"--tls-private-key-file={scheduler_serving.key}",
            ],
            ready=lambda: _https_ok(f"https://127.0.0.1:{PORTS.scheduler}/healthz"),
            ports=(PORTS.scheduler,),
        ),
        Part(
            "kwok",
            [
                kwok,
                f"--kubeconfig={kubeconfigs['kwok']}",
                f"--config={_kwok_config()}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--manage-single-node=",
                "--cidr=10.0.0.0/16",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{PORTS.kwok}",
            ],
            ready=lambda: _http_ok(f"http://127.0.0.1:{PORTS.kwok}/healthz"),
            ports=(PORTS.kwok,),
        ),
    ]


def _fake_node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "operatingSystem": "linux",
            },
            "phase": "Running",
        },
    }


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def bootstrap_manifests() -> list[dict[str, Any]]:
    """What the platform needs in the cluster before the product starts, in apply order."""
    manifests: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": "inference-model-manager"}},
        }
        for ns in (SYSTEM_NAMESPACE, SERVINGS_NAMESPACE)
    ]
    manifests += _documents(CHART / "crds" / "inference-endpoints.yaml")
    for name in ("management-api.yaml", "platform-admin.yaml", "serving-reader.yaml", "controller.yaml"):
        manifests += _documents(CHART / "files" / "rbac" / name)
    manifests += [
        _binding("ClusterRoleBinding", "imm-management-api", "User", MANAGEMENT_USER),
        _binding("RoleBinding", "imm-management-api", "User", MANAGEMENT_USER, SYSTEM_NAMESPACE),
        _binding("ClusterRoleBinding", "imm-platform-admin", "Group", "admin"),
        _binding("ClusterRoleBinding", "imm-controller", "User", CONTROLLER_USER),
        _binding("RoleBinding", "imm-controller", "User", CONTROLLER_USER, SYSTEM_NAMESPACE),
    ]
    manifests += _documents(CHART / "files" / "policies" / "platform-admin-tenants.yaml")
    manifests += admin_policy_binding("imm-platform-admin-tenants", "admin", "platform_admin", SERVINGS_NAMESPACE)
    manifests += _documents(CHART / "files" / "policies" / "tenant-robot-bindings.yaml")
    # The robot-bindings policy reads the platform-admin policy's parameters.
    manifests.append(policy_binding("imm-tenant-robot-bindings", "imm-platform-admin-tenants"))
    manifests += serving_template_configmaps(SERVINGS_NAMESPACE)
    manifests += [_fake_node(name) for name in FAKE_NODES]
    manifests.append(_inference_tls_secret())
    return manifests


def admin_policy_binding(
    policy: str, admin_group: str, tenant_label: str, servings_namespace: str
) -> list[dict[str, Any]]:
    """Bind the platform-admin policy with its parameters (a ConfigMap in the system namespace)."""
    params = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": policy, "namespace": SYSTEM_NAMESPACE},
        "data": {
            "adminGroup": admin_group,
            "tenantLabelKey": "created_by",
            "tenantLabelValue": tenant_label,
            "servingsNamespace": servings_namespace,
        },
    }
    return [params, policy_binding(policy, policy)]


def policy_binding(policy: str, params: str) -> dict[str, Any]:
    """Enforce an admission policy with the parameters of the ConfigMap `params` in the system namespace."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy},
        "spec": {
            "policyName": policy,
            "validationActions": ["Deny"],
            # Allow, not Deny: without its parameters a policy cannot tell admins from the cluster's
            # own controllers, and denying every namespace and secret write would stop the cluster.
            "paramRef": {"name": params, "namespace": SYSTEM_NAMESPACE, "parameterNotFoundAction": "Allow"},
        },
    }


def _binding(kind: str, role: str, subject_kind: str, subject: str, namespace: str | None = None) -> dict[str, Any]:
    """Bind the chart's role of the same name; the devstack's identities are its subjects."""
    rbac = "rbac.authorization.k8s.io"
    metadata = {"name": role} if namespace is None else {"name": role, "namespace": namespace}
    return {
        "apiVersion": f"{rbac}/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": rbac, "kind": "Role" if namespace else "ClusterRole", "name": role},
        "subjects": [{"apiGroup": rbac, "kind": subject_kind, "name": subject}],
    }


def _inference_tls_secret() -> dict[str, Any]:
    """The platform's inference server certificate, which tenant provisioning copies into each tenant."""
    pair = pki.issue("inference", f"*.{PLATFORM_DOMAIN}", hosts=(f"*.{PLATFORM_DOMAIN}", PLATFORM_DOMAIN), server=True)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": INFERENCE_TLS_SECRET,
            "namespace": SYSTEM_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "inference-model-manager"},
        },
        "data": {
            "tls.crt": base64.b64encode(pair.cert.read_bytes()).decode(),
            "tls.key": base64.b64encode(pair.key.read_bytes()).decode(),
        },
    }


def bootstrap() -> None:
    """Apply the bootstrap manifests (server-side apply, so a restart re-applies safely)."""
    from kubernetes import client, config, dynamic

    api_client = config.new_client_from_config(str(kubeconfig_path("admin")))
    api = dynamic.DynamicClient(api_client)
    core = client.CoreV1Api(api_client)
    for manifest in bootstrap_manifests():
        status = manifest.pop("status", None)
        resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        api.server_side_apply(resource, body=manifest, field_manager="imm-devstack", force_conflicts=True)
        if status is not None:
            # Node capacity lives in the status subresource; kwok keeps it and adds the conditions.
            core.patch_node_status(manifest["metadata"]["name"], {"status": status})
    say("cluster bootstrap applied (namespaces, CRD, RBAC, inference TLS secret, 2 kwok nodes)")


def wait_established(timeout: float = 60.0) -> None:
    """Block until the CRD serves and the fake nodes are Ready, so the stack is usable when we return."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kubeconfig_path("admin")))
    deadline = time.monotonic() + timeout
    ext = client.ApiextensionsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    while True:
        crd = ext.read_custom_resource_definition("inference-endpoints.ai.intel.com")
        established = any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))
        nodes = core.list_node(label_selector="type=kwok").items
        ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))]
        if established and len(ready) == len(FAKE_NODES):
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"kwok: after {timeout:.0f}s the CRD established={established} and {len(ready)}/{len(FAKE_NODES)} "
                "nodes are Ready; see .devstack/logs/kwok.log"
            )
        time.sleep(0.5)
