"""The shipped gunicorn configuration (gunicorn.conf.py) with several worker processes: a scrape
sums every worker's counts (prometheus-client's multiprocess mode), whichever worker answers it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "multiprocess-scrape-token-" + "y" * 20
REQUESTS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 -- loopback, our own server
        return bytes(answer.read())


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "imm_api_requests_total" and sample.labels.get("route") == "healthz":
                return sample.value
    return 0.0


def test_every_gunicorn_worker_counts_into_one_scrape(tmp_path: Path) -> None:
    port = _free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("PROMETHEUS_", "IMM_METRICS_"))},
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
        "IMM_METRICS_SCRAPE_TOKEN_FILE": str(token_file),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{port} --workers=3 --threads=2 --no-control-socket",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "inferencemgmt.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # ready: the scrape route answers (another route than the one counted below)
            try:
                _get(f"http://127.0.0.1:{port}/metrics", TOKEN)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    raise AssertionError(f"gunicorn did not start: {server.communicate()[1][-2000:]!r}") from None
                time.sleep(0.2)
        # Requests until more than one worker has served some (on a busy machine the others boot late).
        sent, deadline = 0, time.monotonic() + 60
        while True:
            for _ in range(REQUESTS):
                _get(f"http://127.0.0.1:{port}/healthz")
            sent += REQUESTS
            written = list((tmp_path / "prometheus").glob("*.db"))
            processes = {path.name.rsplit("_", 1)[-1] for path in written}
            if len(processes) >= 2 or time.monotonic() > deadline:
                break
        assert len(processes) >= 2  # files of more than one process
        # Each scrape may be answered by any of the three workers: all must see all the requests.
        counts = {_healthz_count(_get(f"http://127.0.0.1:{port}/metrics", TOKEN).decode()) for _ in range(6)}
        assert counts == {sent}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)  # quick shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker stuck in its shutdown: the scrape was checked already
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
