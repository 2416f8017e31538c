# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""Mixed API load on the devstack: concurrent clients for a bounded time, with a baseline.

Usage (with the devstack's env sourced):

    python benchmarks/api_load.py [--clients 8] [--seconds 20]

Loopback only. It starts its own gunicorn (one sync worker) and Celery worker (the set-up
of models_upload.py), creates a throwaway team-a tenant and removes it at the end. Two phases run
with the same clients for the same time:

- baseline: ``GET /healthz`` (no token, no upstream): what this machine and this gunicorn serve;
- mix: alice's token on ``GET /tenants`` (list), ``GET /tenants/<t>`` (view),
  ``GET /tenants/<t>/models`` (list models), ``GET /servings``, and ``POST /tenants/<t>/upload/dir``
  (a small write to the store). Endpoint scaling joins the mix once the endpoint routes are merged.

Prints, for each phase: requests, throughput, p50/p95/p99 latency, errors (any status >= 400 or
exception; the target is 0), and the mix's throughput as a ratio of the baseline's; then the
resident set of the gunicorn worker(s) sampled every second (growth over the run is the signal).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3
import requests
from botocore.config import Config
from kubernetes import config
from models_upload import Platform, drop_tenant, make_tenant, rss_bytes, token

MAX_CLIENTS = 64
MAX_SECONDS = 120
READS = [
    ("GET /tenants", "/tenants"),
    ("GET /tenants/<t>", "/tenants/{tenant}"),
    ("GET /tenants/<t>/models", "/tenants/{tenant}/models"),
    ("GET /servings", "/servings"),
]


def run_phase(
    clients: int, seconds: float, request: Callable[[requests.Session, int], tuple[str, int]]
) -> dict[str, Any]:
    latencies: list[float] = []
    by_route: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        session = requests.Session()
        counter = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                route, status = request(session, number * 1_000_000 + counter)
                problem = f"HTTP {status}" if status >= 400 else ""
            except requests.RequestException as exc:
                route, problem = "exception", type(exc).__name__
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                by_route.setdefault(route, []).append(elapsed)
                if problem:
                    errors.append(problem)
            counter += 1

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "throughput": len(latencies) / wall,
        "p50": percentile(0.50),
        "p95": percentile(0.95),
        "p99": percentile(0.99),
        "mean": statistics.fmean(latencies) * 1000 if latencies else 0.0,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "routes": {
            route: (len(values), statistics.median(values) * 1000, sorted(values)[int(0.95 * len(values))] * 1000)
            for route, values in sorted(by_route.items())
        },
    }


def worker_pids(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


class RssSampler:
    """The gunicorn workers' resident set (MiB, summed) once a second."""

    def __init__(self, master: int) -> None:
        self.master, self._stop = master, threading.Event()
        self.samples: list[float] = []

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(sum(rss_bytes(pid) for pid in worker_pids(self.master)) / 2**20)
            self._stop.wait(1.0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def report(name: str, figures: dict[str, Any]) -> None:
    print(
        f"{name:9} requests={figures['requests']:6d} throughput={figures['throughput']:8.1f}/s "
        f"p50={figures['p50']:7.1f}ms p95={figures['p95']:7.1f}ms p99={figures['p99']:7.1f}ms "
        f"errors={figures['errors']} {figures['error_kinds'] or ''}"
    )
    for route, (count, p50, p95) in figures["routes"].items():
        print(f"    {route:26} n={count:6d} p50={p50:7.1f}ms p95={p95:7.1f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    clients = max(1, min(args.clients, MAX_CLIENTS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))

    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}),
    )
    admin = config.new_client_from_config(os.environ["KUBECONFIG"])
    platform = Platform(Path(tempfile.mkdtemp(prefix="imm-bench-load-")))
    tenant = make_tenant(admin, s3)
    auth = {"Authorization": f"Bearer {token('alice')}"}
    base = platform.base
    try:
        platform.start()

        def baseline(session: requests.Session, n: int) -> tuple[str, int]:
            return "GET /healthz", session.get(f"{base}/healthz", timeout=30).status_code

        def mix(session: requests.Session, n: int) -> tuple[str, int]:
            kind = n % 5
            if kind == 4:
                body = {"modelName": "load-model", "modelVersion": 1, "key": f"d{n}"}
                url = f"{base}/tenants/{tenant}/upload/dir"
                return "POST upload/dir", session.post(url, json=body, headers=auth, timeout=30).status_code
            label, path = READS[kind]
            return label, session.get(base + path.format(tenant=tenant), headers=auth, timeout=30).status_code

        # Warm-up: JWKS, Kubernetes clients, access cache.
        for _ in range(5):
            mix(requests.Session(), 0)
        with RssSampler(platform.gunicorn.pid) as rss:
            base_figures = run_phase(clients, seconds, baseline)
            mix_figures = run_phase(clients, seconds, mix)
        print(f"clients={clients} seconds={seconds:.0f} one gunicorn sync worker")
        report("baseline", base_figures)
        report("mix", mix_figures)
        ratio = mix_figures["throughput"] / base_figures["throughput"] if base_figures["throughput"] else 0.0
        print(f"mix/baseline throughput ratio={ratio:.3f}")
        if rss.samples:
            print(
                f"gunicorn workers RSS MiB: start={rss.samples[0]:.1f} max={max(rss.samples):.1f} "
                f"end={rss.samples[-1]:.1f} growth={rss.samples[-1] - rss.samples[0]:+.1f}"
            )
        if mix_figures["errors"] or base_figures["errors"]:
            raise SystemExit("errors under load (the target is 0)")
    finally:
        platform.stop()
        drop_tenant(admin, s3, tenant)


if __name__ == "__main__":
    main()
