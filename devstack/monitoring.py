"""Prometheus for the devstack (Debian's `prometheus` package), scraping what runs on the machine.

Targets:
- the product's processes under `make dev`: the API's `GET /metrics` (with the scrape token this
  module makes, which `.devstack/env` hands to the API as IMM_METRICS_SCRAPE_TOKEN_FILE), and the
  worker's and the controller's metrics ports (their IMM_METRICS_PORT, set by scripts/dev.sh);
- with the real node: every pod of an InferenceEndpoint there that declares a container port named
  `metrics` (Triton's :8002), listed by `devstack.podtargets` (a part of its own: Debian's build has
  no Kubernetes discovery) into a file_sd file, labelled `namespace` (the tenant) and `endpoint`
  (the controller's endpoint label), the two labels the endpoint traffic route queries by.

The configuration is written at each `up`; a running Prometheus whose configuration changed is told
to reload it (its lifecycle API on loopback), so `up` never restarts it.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml

from devstack import podtargets, realnode
from devstack.layout import CONF, DATA, PORTS, ROOT, STATE
from devstack.proc import Part, StackError, recorded_pid

NAME = "prometheus"
URL = f"http://127.0.0.1:{PORTS.prometheus}"
CONFIG = CONF / "prometheus.yml"
TOKEN = STATE / "prometheus" / "scrape-token"
#: Short, so a test sees a request a few seconds after sending it; the targets are few.
SCRAPE_INTERVAL = "5s"


def scrape_token() -> str:
    """The bearer token Prometheus presents to the API's /metrics (made once, kept with the state)."""
    TOKEN.parent.mkdir(parents=True, exist_ok=True)
    if not TOKEN.exists() or not TOKEN.read_text().strip():
        TOKEN.write_text(secrets.token_urlsafe(32) + "\n")
        TOKEN.chmod(0o600)
    return TOKEN.read_text().strip()


def configuration() -> dict[str, Any]:
    scrape_token()
    jobs: list[dict[str, Any]] = [
        {
            "job_name": "imm-api",
            "metrics_path": "/metrics",
            "authorization": {"type": "Bearer", "credentials_file": str(TOKEN)},
            "static_configs": [{"targets": ["127.0.0.1:8000"]}],
        },
        {"job_name": "imm-worker", "static_configs": [{"targets": [f"127.0.0.1:{PORTS.worker_metrics}"]}]},
        {"job_name": "imm-controller", "static_configs": [{"targets": [f"127.0.0.1:{PORTS.controller_metrics}"]}]},
    ]
    if realnode.active():
        # Debian's prometheus has no Kubernetes discovery: devstack.podtargets writes this file.
        jobs.append(
            {
                "job_name": "serving-pods",
                "file_sd_configs": [{"files": [str(podtargets.TARGETS)], "refresh_interval": "30s"}],
            }
        )
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "30s", "scrape_timeout": "4s"},
        "scrape_configs": jobs,
    }


def _ready() -> bool:
    with urllib.request.urlopen(f"{URL}/-/ready", timeout=2) as answer:
        return bool(answer.status == 200)


def write_config() -> bool:
    """Write the configuration; True when it changed."""
    CONF.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(configuration(), sort_keys=False)
    if CONFIG.exists() and CONFIG.read_text() == text:
        return False
    partial = CONFIG.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(CONFIG)
    return True


def reload() -> None:
    request = urllib.request.Request(f"{URL}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise StackError(f"prometheus: could not reload its configuration: {exc}") from exc


def part() -> Part:
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError("prometheus: not installed (Debian package prometheus)")
    data = DATA / "prometheus"
    data.mkdir(parents=True, exist_ok=True)
    return Part(
        NAME,
        [
            binary,
            f"--config.file={CONFIG}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=3d",
            f"--web.listen-address=127.0.0.1:{PORTS.prometheus}",
            "--web.enable-lifecycle",
        ],
        ready=_ready,
        ports=[PORTS.prometheus],
        timeout=60.0,
    )


def start() -> Part:
    """Write the configuration and start Prometheus, or reload a running one whose config changed."""
    changed = write_config()
    running = recorded_pid(NAME) is not None
    found = part()
    if running and changed:
        reload()
    return found


TARGETS_NAME = "prometheus-targets"


def targets_part() -> Part:
    """The loop that lists the real node's serving pods for Prometheus (only with the real node)."""
    return Part(
        TARGETS_NAME,
        [sys.executable, "-m", "devstack.podtargets"],
        ready=podtargets.TARGETS.exists,
        cwd=ROOT,
        timeout=30.0,
    )


def env() -> dict[str, str]:
    return {
        "PROMETHEUS_URL": URL,
        "IMM_METRICS_SCRAPE_TOKEN_FILE": str(TOKEN),
        # scripts/dev.sh gives these to the worker and the controller as their IMM_METRICS_PORT.
        "IMM_DEVSTACK_WORKER_METRICS_PORT": str(PORTS.worker_metrics),
        "IMM_DEVSTACK_CONTROLLER_METRICS_PORT": str(PORTS.controller_metrics),
    }
