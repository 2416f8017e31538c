"""The real node's host-facing configuration keeps pods on this machine and builds stay cached.

Unit tests of what `devstack.realnode` and `devstack.images` write, without starting anything:
the pod network has no way off the machine, the guard table is valid nftables, the Debian mirror
comes from the machine's own apt sources, and version stamps are part of a build's cache key.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack import build, images, realnode
from devstack.layout import PORTS
from devstack.proc import StackError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realnode, "CNI_CONF_DIR", tmp_path / "cni")
    monkeypatch.setattr(realnode, "CONF", tmp_path / "conf")


def test_pods_get_no_route_off_the_machine() -> None:
    conflist = json.loads(realnode._cni_config().read_text())
    bridge = conflist["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == realnode.BRIDGE
    # isGateway would switch on forwarding machine-wide; ipMasq would NAT pods onto eth0.
    assert bridge["isGateway"] is False
    assert bridge["ipMasq"] is False
    routes = [ipaddress.ip_network(route["dst"]) for route in bridge["ipam"]["routes"]]
    assert routes == [ipaddress.ip_network(realnode.SERVICE_CIDR)]
    assert not any(net.prefixlen == 0 for net in routes)
    (subnet,) = bridge["ipam"]["ranges"][0]
    assert ipaddress.ip_address(subnet["gateway"]) in ipaddress.ip_network(subnet["subnet"])
    assert ipaddress.ip_address(subnet["rangeStart"]) > ipaddress.ip_address(realnode.NODE_IP)


def test_guard_table_drops_forwarding_off_the_bridge_and_guards_the_ports() -> None:
    rules = realnode._nft_rules()
    assert f'iifname "{realnode.BRIDGE}" oifname != "{realnode.BRIDGE}" counter drop' in rules
    assert f'oifname "{realnode.BRIDGE}" iifname != "{realnode.BRIDGE}" counter drop' in rules
    assert f"tcp dport {{ {PORTS.apiserver}, {PORTS.kubelet} }}" in rules
    assert f'iifname != {{ "lo", "{realnode.BRIDGE}" }}' in rules
    # The one address translation: pods' connections to the bridge address's S3 port, to loopback.
    assert rules.count("dnat") == 1
    match = f'iifname "{realnode.BRIDGE}" ip daddr {realnode.NODE_IP} tcp dport {PORTS.s3}'
    assert f"{match} counter dnat ip to 127.0.0.1:{PORTS.s3}" in rules


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed (IMM_DEVSTACK_REAL_NODE=1 installs it)")
def test_guard_table_is_valid_nftables() -> None:
    # --check parses and validates against the kernel without changing the ruleset.
    result = subprocess.run(["nft", "--check", "-f", "-"], input=realnode._nft_rules(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_kubelet_and_kube_proxy_stay_on_loopback_and_the_bridge(tmp_path: Path) -> None:
    import yaml

    from devstack import pki

    serving = pki.KeyPair(tmp_path / "s.crt", tmp_path / "s.key")
    kubelet = yaml.safe_load(realnode._kubelet_config(serving).read_text())
    assert kubelet["address"] == realnode.NODE_IP
    assert kubelet["healthzBindAddress"] == "127.0.0.1"
    assert kubelet["readOnlyPort"] == 0
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authorization"]["mode"] == "Webhook"
    assert kubelet["resolvConf"] == ""
    assert kubelet["registerWithTaints"] == [realnode.TAINT]
    proxy = yaml.safe_load(realnode._kube_proxy_config(tmp_path / "kubeconfig").read_text())
    assert proxy["mode"] == "nftables"
    assert proxy["nodePortAddresses"] == [str(realnode.POD_CIDR)]
    assert proxy["healthzBindAddress"].startswith("127.0.0.1:")
    assert proxy["metricsBindAddress"].startswith("127.0.0.1:")
    assert proxy["conntrack"]["maxPerCore"] == 0


def test_debian_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert images.debian_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_debian_mirror_is_read_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://mirror.invalid/src bookworm main\n"
        "deb [arch=amd64] http://mirror.invalid/debian bookworm main contrib\n"
    )
    assert images.debian_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_no_debian_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(StackError, match="no Debian source for bookworm"):
        images.debian_mirror(tmp_path)


def test_version_stamps_are_part_of_the_cache_key_and_none_keeps_old_keys(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example\n")
    (tmp_path / "main.go").write_text("package main\n")
    plain = build.module_key(tmp_path)
    assert build.module_key(tmp_path, ()) == plain
    stamped = build.module_key(tmp_path, realnode.VERSION_LDFLAGS)
    assert stamped != plain
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in realnode.VERSION_LDFLAGS


def test_stop_removes_sockets_and_empty_directories_but_keeps_other_files(tmp_path: Path) -> None:
    import socket

    root = tmp_path / "run-containerd"
    (root / "s").mkdir(parents=True)
    (root / "runc" / "k8s.io").mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(root / "s" / "shim.sock"))
    assert realnode._remove_tree_of_sockets_and_empty_dirs(root) is True
    assert not root.exists()

    kept = tmp_path / "var-lib-kubelet"
    (kept / "device-plugins").mkdir(parents=True)
    (kept / "device-plugins" / "someone-elses.json").write_text("{}")
    assert realnode._remove_tree_of_sockets_and_empty_dirs(kept) is False
    assert (kept / "device-plugins" / "someone-elses.json").read_text() == "{}"
