"""What the devstack's Prometheus is told to scrape, without starting it: the configuration (checked
by Debian's `promtool` when installed) and the serving-pod targets devstack.podtargets writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from devstack import monitoring, podtargets, realnode
from devstack.layout import PORTS

pytestmark = pytest.mark.unit


def _pod(name: str, ip: str | None, phase: str = "Running", port: str = "metrics", endpoint: str = "adder") -> Any:
    container = SimpleNamespace(
        ports=[SimpleNamespace(name="http", container_port=8000), SimpleNamespace(name=port, container_port=8002)]
    )
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, namespace="trf-1", labels={podtargets.ENDPOINT_LABEL: endpoint}),
        status=SimpleNamespace(pod_ip=ip, phase=phase),
        spec=SimpleNamespace(containers=[container]),
    )


def test_targets_are_the_metrics_ports_of_running_pods_labelled_for_the_traffic_route() -> None:
    pods = [
        _pod("adder-1", "10.87.0.9"),
        _pod("adder-2", None),  # no address yet
        _pod("adder-3", "10.87.0.10", phase="Pending"),
        _pod("other-1", "10.87.0.11", port="grpc"),  # no port named metrics
    ]
    assert podtargets.targets(pods) == [
        {"targets": ["10.87.0.9:8002"], "labels": {"namespace": "trf-1", "endpoint": "adder", "pod": "adder-1"}}
    ]


def test_configuration_scrapes_the_products_processes_with_the_scrape_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(monitoring, "TOKEN", tmp_path / "token")
    monkeypatch.setattr(realnode, "active", lambda: True)
    config = monitoring.configuration()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"imm-api", "imm-worker", "imm-controller", "serving-pods"}
    assert jobs["imm-api"]["authorization"] == {"type": "Bearer", "credentials_file": str(tmp_path / "token")}
    assert (tmp_path / "token").read_text().strip()
    assert (tmp_path / "token").stat().st_mode & 0o077 == 0
    assert jobs["imm-worker"]["static_configs"] == [{"targets": [f"127.0.0.1:{PORTS.worker_metrics}"]}]
    assert jobs["serving-pods"]["file_sd_configs"][0]["files"] == [str(podtargets.TARGETS)]
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
