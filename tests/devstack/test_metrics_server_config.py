"""metrics-server's devstack configuration, without starting anything: it scrapes only the real node
(kwok's node addresses lead off the machine), on loopback, and the aggregation layer reaches it at
localhost through an ExternalName Service, verifying it against the devstack CA."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from devstack import metrics, pki
from devstack.layout import PORTS

pytestmark = pytest.mark.unit


@pytest.fixture
def argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(pki, "PKI", tmp_path / "pki")
    monkeypatch.setattr(metrics, "binary", lambda: tmp_path / "metrics-server")
    written: dict[str, Any] = {}

    def write_kubeconfig(user: str, pair: pki.KeyPair) -> Path:
        written[user] = pair
        return tmp_path / f"{user}.kubeconfig"

    part = metrics.part(write_kubeconfig)
    assert part.name == "metrics-server"
    assert part.ports == (PORTS.metrics_server,)
    assert set(written) == {"metrics-server"}
    return list(part.argv)


def test_it_scrapes_only_the_real_node_over_verified_tls(argv: list[str]) -> None:
    assert "--node-selector=imm.ai.intel.com/real-node=true" in argv
    assert f"--kubelet-port={PORTS.kubelet}" in argv
    assert any(arg.startswith("--kubelet-certificate-authority=") for arg in argv)
    assert not any("insecure" in arg for arg in argv)
    assert "--bind-address=127.0.0.1" in argv


def test_the_aggregator_reaches_it_at_localhost_with_the_devstack_ca(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pki, "PKI", tmp_path / "pki")
    service, api_service = metrics.registration_manifests()
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"name": "https", "port": PORTS.metrics_server, "protocol": "TCP"}],
    }
    spec = api_service["spec"]
    assert (spec["group"], spec["version"]) == ("metrics.k8s.io", "v1beta1")
    assert spec["service"] == {"name": "metrics-server", "namespace": "kube-system", "port": PORTS.metrics_server}
    assert base64.b64decode(spec["caBundle"]) == pki.ensure_ca().cert.read_bytes()
    assert "insecureSkipTLSVerify" not in spec


def test_its_rights_are_read_only() -> None:
    for manifest in metrics.rbac_manifests():
        for rule in manifest.get("rules", []):
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
