"""A real Kubernetes node beside the kwok nodes: containerd + runc, kubelet and kube-proxy (opt-in).

`IMM_DEVSTACK_REAL_NODE=1 make devstack` adds it; without the variable nothing here runs, so the
default devstack (and CI) stays as fast as it was. The node runs real containers, so pods on it
really run, log and talk to the API server.

Everything lives in the devstack's state directory: containerd's config, root, state and socket,
the kubelet's root and pod logs, the CNI config and IP leases. What the node must change on the
host is recorded in `<state>/node/host-changes.json` and undone by `make devstack-down`:

- the bridge `imm0` with 10.87.0.1/24 (pods get 10.87.0.10-254 on it); the API server advertises
  10.87.0.1, so pods reach the `kubernetes` Service there, and the kubelet listens there only;
- one nftables table, `inet imm-devstack`: it drops anything forwarded between the bridge and any
  other interface (pods can reach this host and each other, never another machine: they get no
  default route either), and it keeps the API server's and the kubelet's ports closed to every
  interface except loopback and the bridge (the API server binds 0.0.0.0 so that both the host's
  127.0.0.1 clients and the pods on the bridge reach it);
- kube-proxy's own tables (`ip`/`ip6 kube-proxy`, nftables mode; `kube-proxy --cleanup` removes
  them) and the kubelet's iptables chains (KUBE-FIREWALL, KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY);
- the kernel settings the kubelet sets on start (vm.overcommit_memory, kernel.panic, ...), restored.

Placement: the node carries the taint `imm.ai.intel.com/real-node=true:NoSchedule` and the label
`imm.ai.intel.com/real-node=true`, so only pods that tolerate it land there and every existing
kwok test keeps its simulated nodes (kwok manages only nodes annotated `kwok.x-k8s.io/node=fake`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from devstack import images, pki
from devstack.build import GO_MODULES, go_binary, module_key
from devstack.layout import CACHE, CONF, DATA, LOGS, PORTS, STATE
from devstack.proc import Part, StackError, recorded_pid, say, stop

ENABLED = os.environ.get("IMM_DEVSTACK_REAL_NODE", "") == "1"

NODE_NAME = "imm-real-node"
BRIDGE = "imm0"
POD_CIDR = ipaddress.ip_network("10.87.0.0/24")
NODE_IP = "10.87.0.1"
SERVICE_CIDR = "10.96.0.0/16"  # cluster.SERVICE_CIDR; kept here to avoid an import cycle
PLACEMENT_KEY = "imm.ai.intel.com/real-node"
TAINT = {"key": PLACEMENT_KEY, "value": "true", "effect": "NoSchedule"}
NFT_TABLE = ("inet", "imm-devstack")

# Start order; `stop` goes in reverse and empties the runtime before containerd stops.
PARTS = ("containerd", "kubelet", "kube-proxy")

NODE_DIR = STATE / "node"
RECORD = NODE_DIR / "host-changes.json"
CONTAINERD_ROOT = DATA / "containerd"
CONTAINERD_STATE = STATE / "run" / "containerd"
SOCKET = CONTAINERD_STATE / "containerd.sock"
KUBELET_ROOT = DATA / "kubelet"
POD_LOGS = LOGS / "pods"
CNI_CONF_DIR = CONF / "cni"
CNI_BIN_DIR = Path("/usr/lib/cni")

KUBERNETES_VERSION = "v1.37.2"
# What Kubernetes' own build stamps (hack/lib/version.sh), so the node reports its real version.
VERSION_LDFLAGS = tuple(
    f"-X {package}.{name}={value}"
    for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
    for name, value in (
        ("gitVersion", KUBERNETES_VERSION),
        ("gitMajor", "1"),
        ("gitMinor", "37"),
        ("gitTreeState", "clean"),
    )
)

# Set by the kubelet on start unless protectKernelDefaults (which would refuse to start here);
# recorded before and restored after.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# The kubelet's iptables chains (only made when an iptables command exists): (table, chain, jumps from).
KUBELET_CHAINS = (
    ("mangle", "KUBE-IPTABLES-HINT", ()),
    ("mangle", "KUBE-KUBELET-CANARY", ()),
    ("nat", "KUBE-KUBELET-CANARY", ()),
    ("filter", "KUBE-KUBELET-CANARY", ()),
    ("filter", "KUBE-FIREWALL", ("INPUT", "OUTPUT")),
)
# Paths outside the state directory that containerd 1.6, libcni and the kubelet use whatever their
# configuration says (shim sockets, the CNI result cache, the device-plugin socket), and the
# kubelet's cgroups: removed on stop when they did not exist before the first start.
HOST_PATHS = ("/run/containerd", "/var/lib/cni", "/var/lib/kubelet")
CGROUP_ROOT = Path("/sys/fs/cgroup")
REQUIRED_COMMANDS = ("containerd", "ctr", "runc", "ip", "nft", "iptables", "umoci", "debootstrap")


def active() -> bool:
    """Wanted now, or left running by an earlier `IMM_DEVSTACK_REAL_NODE=1` start."""
    return ENABLED or any(recorded_pid(name) is not None for name in PARTS)


def binary() -> Path:
    """kubelet + kube-proxy (+ cri-reset) from k8s.io/kubernetes, built once and cached."""
    return go_binary("node", ".", "imm-node", VERSION_LDFLAGS)


def _cached_binary() -> Path | None:
    """The binary if it was ever built on this machine; `stop` must not start a long build."""
    path = CACHE / "bin" / f"node-{module_key(GO_MODULES / 'node', VERSION_LDFLAGS)}" / "imm-node"
    return path if path.exists() else None


def ctr() -> list[str]:
    return ["ctr", "--address", str(SOCKET), "--namespace", "k8s.io"]


def _run(argv: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise StackError(f"{what}: `{' '.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


# ---------------------------------------------------------------------------- host changes


def _load_record() -> dict[str, Any]:
    if RECORD.exists():
        loaded: dict[str, Any] = json.loads(RECORD.read_text())
        return loaded
    return {}


def _save_record(record: dict[str, Any]) -> None:
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    partial = RECORD.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(RECORD)


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], "ip", check=False).returncode == 0


def _check_cidr_free() -> None:
    """Refuse to create the bridge if its subnet is already routed or addressed on this machine."""
    routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"], "ip route").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("dev") == BRIDGE or route.get("type") in ("broadcast", "local"):
            continue
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(dst, strict=False).overlaps(POD_CIDR):
                raise StackError(
                    f"real node: {POD_CIDR} overlaps the route {dst} on {route.get('dev')}; cannot add {BRIDGE}"
                )


def _nft_rules() -> str:
    family, name = NFT_TABLE
    guarded = f"{PORTS.apiserver}, {PORTS.kubelet}"
    return f"""table {family} {name} {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname "{BRIDGE}" oifname != "{BRIDGE}" counter drop comment "pods never reach another machine"
        oifname "{BRIDGE}" iifname != "{BRIDGE}" counter drop comment "no other machine reaches the pods"
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        tcp dport {{ {guarded} }} iifname != {{ "lo", "{BRIDGE}" }} counter drop comment "loopback and pods only"
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat - 10; policy accept;
        iifname "{BRIDGE}" ip daddr {NODE_IP} tcp dport {PORTS.s3} counter dnat ip to 127.0.0.1:{PORTS.s3}
    }}
}}
"""


def network_up() -> None:
    """Create the bridge and the guard table (idempotent), recording each change before making it."""
    record = _load_record()
    if not _link_exists(BRIDGE):
        _check_cidr_free()
        record["bridge"] = BRIDGE
        _save_record(record)
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], "real node bridge")
    elif "bridge" not in record:
        raise StackError(f"real node: a link named {BRIDGE} exists and this devstack did not make it; remove it first")
    addresses = json.loads(_run(["ip", "-j", "addr", "show", "dev", BRIDGE], "ip addr").stdout or "[]")
    have = {info["local"] for link in addresses for info in link.get("addr_info", [])}
    if NODE_IP not in have:
        _run(["ip", "addr", "add", f"{NODE_IP}/{POD_CIDR.prefixlen}", "dev", BRIDGE], "real node bridge")
    _run(["ip", "link", "set", BRIDGE, "up"], "real node bridge")
    # Forwarding for this bridge only (it goes with the bridge): Service traffic from one pod to
    # another is DNAT-ed on the host and forwarded back onto the bridge. The global switch stays.
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("1\n")
    # The object store stays on loopback; pods reach it at NODE_IP through the guard table's DNAT,
    # which needs loopback destinations routable from this bridge (also per bridge, gone with it).
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet").write_text("1\n")
    family, name = NFT_TABLE
    record["nft_table"] = f"{family} {name}"
    _save_record(record)
    # Replace the table whole, so a restart never stacks duplicate rules.
    script = f"table {family} {name}\ndelete table {family} {name}\n{_nft_rules()}"
    result = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"real node: nft refused the guard table: {result.stderr.strip()}")


def _record_kernel_state(record: dict[str, Any]) -> None:
    """Before the kubelet first starts: the sysctls it changes and which of its iptables chains exist."""
    if "sysctls" not in record:
        record["sysctls"] = {key: Path("/proc/sys", key).read_text().strip() for key in KUBELET_SYSCTLS}
    if "iptables_chains_before" not in record:
        before: list[str] = []
        for tool in ("iptables", "ip6tables"):
            if shutil.which(tool) is None:
                continue
            for table, chain, _jumps in KUBELET_CHAINS:
                if _run([tool, "-t", table, "-S", chain], tool, check=False).returncode == 0:
                    before.append(f"{tool} {table} {chain}")
        record["iptables_chains_before"] = before
    if "nft_tables_before" not in record:
        record["nft_tables_before"] = _nft_tables()
    if "host_paths_created" not in record:
        record["host_paths_created"] = [path for path in HOST_PATHS if not Path(path).exists()]
        record["kubepods_cgroups_created"] = not any(CGROUP_ROOT.glob("*/kubepods"))
    _save_record(record)


def _remove_tree_of_sockets_and_empty_dirs(root: Path) -> bool:
    """Remove sockets and empty directories under `root`, deepest first; True if `root` is gone.

    Anything else (a regular file) stays, so nothing that another program keeps there is lost.
    """
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_socket():
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(dirpath).rmdir()
    return not root.exists()


def _remove_kubepods_cgroups() -> bool:
    """rmdir the kubelet's cgroup trees (an empty cgroup directory can be removed, deepest first)."""
    gone = True
    for tree in CGROUP_ROOT.glob("*/kubepods"):
        for dirpath, _dirnames, _filenames in os.walk(tree, topdown=False):
            with contextlib.suppress(OSError):
                Path(dirpath).rmdir()
        gone = gone and not tree.exists()
    return gone


def _nft_tables() -> list[str]:
    """Every nftables table as "family name" (iptables-nft keeps its tables there too)."""
    listed = _run(["nft", "list", "tables"], "nft")
    return [line.removeprefix("table ").strip() for line in listed.stdout.splitlines() if line.startswith("table ")]


def _remove_emptied_tables(before: list[str]) -> list[str]:
    """Delete the iptables-nft tables that appeared for the kubelet's chains and hold no rule now."""
    removed = []
    for table in _nft_tables():
        family, _, name = table.partition(" ")
        if table in before or family not in ("ip", "ip6") or name not in ("filter", "mangle", "nat"):
            continue
        listing = json.loads(_run(["nft", "-j", "list", "table", family, name], "nft").stdout)
        if any("rule" in item for item in listing.get("nftables", [])):
            continue
        if _run(["nft", "delete", "table", family, name], "nft", check=False).returncode == 0:
            removed.append(table)
    return removed


def _remove_kubelet_chains(before: list[str]) -> None:
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table, chain, jumps in KUBELET_CHAINS:
            if f"{tool} {table} {chain}" in before:
                continue
            for source in jumps:
                while _run([tool, "-t", table, "-D", source, "-j", chain], tool, check=False).returncode == 0:
                    pass
            _run([tool, "-t", table, "-F", chain], tool, check=False)
            _run([tool, "-t", table, "-X", chain], tool, check=False)


def network_down() -> list[str]:
    """Undo every recorded host change; returns what was undone."""
    record = _load_record()
    undone: list[str] = []
    if record.get("kube_proxy"):
        node = _cached_binary()
        if node is not None:
            _run([str(node), "kube-proxy", "--cleanup", "--v=0"], "kube-proxy --cleanup", check=False)
            undone.append("kube-proxy rules (kube-proxy --cleanup)")
    if "iptables_chains_before" in record:
        _remove_kubelet_chains(record["iptables_chains_before"])
        undone.append("kubelet iptables chains")
    if "nft_tables_before" in record:
        undone += [f"empty table {table}" for table in _remove_emptied_tables(record["nft_tables_before"])]
    deleted = "nft_table" in record and _run(
        ["nft", "delete", "table", *record["nft_table"].split()], "nft", check=False
    )
    if deleted and deleted.returncode == 0:
        undone.append(f"nftables table {record['nft_table']}")
    for path in record.get("host_paths_created", []):
        if Path(path).exists() and _remove_tree_of_sockets_and_empty_dirs(Path(path)):
            undone.append(path)
    if record.get("kubepods_cgroups_created") and any(CGROUP_ROOT.glob("*/kubepods")) and _remove_kubepods_cgroups():
        undone.append("kubepods cgroups")
    if "bridge" in record and _link_exists(record["bridge"]):
        _run(["ip", "link", "delete", record["bridge"]], "ip link delete")
        undone.append(f"bridge {record['bridge']}")
    for key, value in record.get("sysctls", {}).items():
        path = Path("/proc/sys", key)
        if path.read_text().strip() != value:
            path.write_text(value + "\n")
            undone.append(f"{key.replace('/', '.')}={value}")
    RECORD.unlink(missing_ok=True)
    return undone


def _unmount_state() -> int:
    """Unmount whatever is still mounted under the state directory (deepest first)."""
    state = str(STATE.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == state or point.startswith(state + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        _run(["umount", "--lazy", point], "umount", check=False)
    return len(mounts)


# ---------------------------------------------------------------------------- configuration


def _write(path: Path, text: str) -> Path:
    """Write a config file only when its content changes: kube-proxy exits when its file is rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def _containerd_config(pause: images.Image) -> Path:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runc = shutil.which("runc") or "runc"
    return _write(
        CONF / "containerd.toml",
        f"""version = 2
root = "{CONTAINERD_ROOT}"
state = "{CONTAINERD_STATE}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{SOCKET}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{DATA / "containerd-opt"}"

[{cri}]
  sandbox_image = "{pause.ref}"
  # No CAP_SYS_RESOURCE on these machines: without this every pod fails in runc.
  restrict_oom_score_adj = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "{PORTS.containerd_stream}"
  netns_mounts_under_state_dir = true
  enable_selinux = false

  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{CONTAINERD_STATE / "runc"}"
        SystemdCgroup = false

  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{CNI_CONF_DIR}"
    max_conf_num = 1
""",
    )


def _cni_config() -> Path:
    conflist = {
        "cniVersion": "0.4.0",
        "name": "imm-devstack",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                # The bridge already has NODE_IP; isGateway would also switch on forwarding for the
                # whole machine, and ipMasq would let pods talk to other machines: both off.
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(DATA / "cni-ipam"),
                    "ranges": [[{"subnet": str(POD_CIDR), "rangeStart": "10.87.0.10", "gateway": NODE_IP}]],
                    # Only the Service range goes through the host: there is no default route.
                    "routes": [{"dst": SERVICE_CIDR}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return _write(CNI_CONF_DIR / "10-imm-devstack.conflist", json.dumps(conflist, indent=2) + "\n")


def _kubelet_config(serving: pki.KeyPair) -> Path:
    ca = pki.ensure_ca()
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": PORTS.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": PORTS.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca.cert)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving.cert),
        "tlsPrivateKeyFile": str(serving.key),
        "containerRuntimeEndpoint": f"unix://{SOCKET}",
        "cgroupDriver": "cgroupfs",
        # These machines mount cgroup v1 (hybrid); the kubelet refuses v1 unless told.
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(POD_LOGS),
        "volumePluginDir": str(DATA / "kubelet-plugins"),
        # No cluster DNS yet, and the host's resolvers are outside this machine: pods get none.
        "resolvConf": "",
        "clusterDomain": "cluster.local",
        "registerWithTaints": [TAINT],
        "maxPods": 50,
        "serializeImagePulls": False,
        # The devstack's images come from no registry: never collect them.
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "nodefs.inodesFree": "2%",
            "imagefs.available": "2%",
            "imagefs.inodesFree": "2%",
        },
    }
    return _write(CONF / "kubelet.yaml", yaml.safe_dump(config, sort_keys=False))


def _kube_proxy_config(kubeconfig: Path) -> Path:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        # One nftables table of its own, which `kube-proxy --cleanup` removes whole.
        "mode": "nftables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "clusterCIDR": str(POD_CIDR),
        "healthzBindAddress": f"127.0.0.1:{PORTS.kube_proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{PORTS.kube_proxy_metrics}",
        "nodePortAddresses": [str(POD_CIDR)],
        # Zero leaves the machine's conntrack settings as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return _write(CONF / "kube-proxy.yaml", yaml.safe_dump(config, sort_keys=False))


# ---------------------------------------------------------------------------- parts


def check_commands() -> None:
    missing = [name for name in REQUIRED_COMMANDS if shutil.which(name) is None]
    if missing:
        raise StackError(
            f"real node: missing {', '.join(missing)}; run `IMM_DEVSTACK_REAL_NODE=1 scripts/install-system-deps.sh`"
        )


def check_running_apiserver() -> None:
    """A kube-apiserver left running from a start without the node lacks its flags: say so, do not limp on."""
    pid = recorded_pid("kube-apiserver")
    if pid is None:
        return
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return
    if f"--advertise-address={NODE_IP}" not in argv:
        raise StackError(
            "real node: kube-apiserver is running without the real node's flags (started without "
            "IMM_DEVSTACK_REAL_NODE=1); run `make devstack-down`, then start again with IMM_DEVSTACK_REAL_NODE=1"
        )


def apiserver_flags() -> list[str]:
    """How kube-apiserver reaches and is reached by the node (replaces the loopback-only defaults)."""
    ca = pki.ensure_ca()
    client = pki.issue(
        "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organizations=("system:masters",), client=True
    )
    return [
        "--bind-address=0.0.0.0",
        f"--advertise-address={NODE_IP}",
        f"--kubelet-client-certificate={client.cert}",
        f"--kubelet-client-key={client.key}",
        f"--kubelet-certificate-authority={ca.cert}",
        "--kubelet-preferred-address-types=InternalIP",
    ]


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _containerd_ready() -> bool:
    return _run([*ctr(), "version"], "ctr", check=False).returncode == 0


def parts(write_kubeconfig: Any) -> list[Part]:
    """Build (once) what the node needs, set up the host, and return containerd, kubelet, kube-proxy.

    `write_kubeconfig(user, keypair)` is the cluster's kubeconfig writer (passed in: no import cycle).
    """
    check_commands()
    node = str(binary())
    pause = images.pause()
    images.base()
    images.triton()
    images.mlserver()
    network_up()
    _record_kernel_state(_load_record())
    kubelet_client = pki.issue("user-node", f"system:node:{NODE_NAME}", organizations=("system:nodes",), client=True)
    kubelet_kubeconfig = write_kubeconfig("node", kubelet_client)
    proxy_client = pki.issue("user-kube-proxy", "system:kube-proxy", client=True)
    proxy_kubeconfig = write_kubeconfig("kube-proxy", proxy_client)
    serving = pki.issue("kubelet-serving", NODE_NAME, hosts=(NODE_IP, NODE_NAME), server=True)
    for directory in (CONTAINERD_ROOT, CONTAINERD_STATE, KUBELET_ROOT, POD_LOGS):
        directory.mkdir(parents=True, exist_ok=True)
    _cni_config()
    record = _load_record()
    record["kube_proxy"] = True
    _save_record(record)
    return [
        Part(
            "containerd",
            ["containerd", "--config", str(_containerd_config(pause))],
            ready=_containerd_ready,
        ),
        Part(
            "kubelet",
            [
                node,
                "kubelet",
                f"--config={_kubelet_config(serving)}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={KUBELET_ROOT}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={PLACEMENT_KEY}=true",
                "--v=1",
            ],
            ready=lambda: _http_ok(f"http://127.0.0.1:{PORTS.kubelet_healthz}/healthz"),
            ports=(PORTS.kubelet_healthz,),
        ),
        Part(
            "kube-proxy",
            [node, "kube-proxy", f"--config={_kube_proxy_config(proxy_kubeconfig)}", "--v=1"],
            ready=lambda: _http_ok(f"http://127.0.0.1:{PORTS.kube_proxy_healthz}/healthz"),
            ports=(PORTS.kube_proxy_healthz, PORTS.kube_proxy_metrics),
            timeout=90,
        ),
    ]


def finish(admin_kubeconfig: Path, timeout: float = 120.0) -> None:
    """Import the images and wait until the node is Ready (after the cluster bootstrap)."""
    from kubernetes import client, config

    images.ensure_imported([images.pause(), images.base(), images.triton(), images.mlserver()], ctr())
    core = client.CoreV1Api(config.new_client_from_config(str(admin_kubeconfig)))
    began = time.monotonic()
    deadline = began + timeout
    pid = recorded_pid("kubelet")
    kubelet_started = Path(f"/proc/{pid}").stat().st_ctime if pid is not None else time.time()
    while True:
        try:
            node = core.read_node(NODE_NAME)
            conditions = {c.type: c for c in (node.status.conditions or [])}
            ready = conditions.get("Ready")
            # A Ready left from the kubelet's previous run does not count: the heartbeat must be newer
            # than the running kubelet.
            fresh = ready is not None and ready.last_heartbeat_time.timestamp() >= kubelet_started - 2
            if ready is not None and ready.status == "True" and fresh:
                waited = time.monotonic() - began
                say(f"real node {NODE_NAME}: Ready ({node.status.node_info.kubelet_version}), waited {waited:.1f}s")
                return
            reason = f"{ready.reason}: {ready.message}" if ready is not None else "not reported yet"
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            reason = "not registered yet"
        if time.monotonic() > deadline:
            raise StackError(f"real node {NODE_NAME} not Ready after {timeout:.0f}s ({reason}); see {LOGS}/kubelet.log")
        time.sleep(1)


def pods_rss_kib() -> tuple[int, int]:
    """(processes, resident KiB) of everything running in the kubelet's pod cgroups (pause included)."""
    count = total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "/kubepods" not in (proc / "cgroup").read_text():
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
        count += 1
        total += int(rss)
    return count, total


def serving_images() -> str:
    """SERVING_IMAGES for the devstack: each serving the real node can run, on the image built here."""
    return json.dumps({"triton": images.triton().ref, "mlserver": images.mlserver().ref}, sort_keys=True)


def env() -> dict[str, str]:
    """What tests and tools need to place pods on the node."""
    return {
        "IMM_DEVSTACK_REAL_NODE_NAME": NODE_NAME,
        "IMM_DEVSTACK_REAL_NODE_TAINT": f"{TAINT['key']}={TAINT['value']}:{TAINT['effect']}",
        "IMM_DEVSTACK_BASE_IMAGE": images.base().ref,
        "IMM_DEVSTACK_TRITON_IMAGE": images.triton().ref,
        "IMM_DEVSTACK_MLSERVER_IMAGE": images.mlserver().ref,
        # The serving templates' images are the local builds (the platform setting, as a mirror would be).
        "SERVING_IMAGES": serving_images(),
        # The object store as pods see it (tenants' store secrets need this address, not loopback).
        "IMM_DEVSTACK_S3_CLUSTER_URL": f"http://{NODE_IP}:{PORTS.s3}",
        # ... and the product writes it into them: endpoints made through the API load their models.
        "S3_SERVING_ENDPOINT_URL": f"http://{NODE_IP}:{PORTS.s3}",
    }


def shutdown() -> list[str]:
    """Stop the node's processes, empty the runtime, unmount, and undo the host changes."""
    done: list[str] = []
    for name in ("kube-proxy", "kubelet"):
        if stop(name):
            done.append(f"{name}: stopped")
    if recorded_pid("containerd") is not None:
        node = _cached_binary()
        if node is not None:
            reset = _run([str(node), "cri-reset", f"unix://{SOCKET}"], "cri-reset", check=False)
            removed = reset.stdout.count("removed pod sandbox")
            done.append(
                f"containerd: {removed} pod sandbox(es) removed"
                + (f" ({reset.stderr.strip()})" if reset.returncode else "")
            )
    if stop("containerd"):
        done.append("containerd: stopped")
    if STATE.exists() and (unmounted := _unmount_state()):
        done.append(f"{unmounted} leftover mount(s) under {STATE} unmounted")
    undone = network_down()
    if undone:
        done.append("host changes undone: " + ", ".join(undone))
    return done
