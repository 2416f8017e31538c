"""The API's added latency from Prometheus metrics, at p50: the same run with metrics on and off.

Usage (no devstack needed: the routes measured touch no upstream):

    python benchmarks/metrics_overhead.py [--requests 1500] [--rounds 3]

Starts the API under gunicorn with the production options (the Dockerfile's GUNICORN_CMD_ARGS: 2
workers x 4 threads, gthread, the shipped gunicorn.conf.py and so prometheus-client's multiprocess
mode), DEBUG off, once with ``IMM_METRICS_ENABLED=false`` and once with it on, alternating for
``--rounds`` rounds so that the machine's noise falls on both alike. One client on a kept-alive
connection sends, in turn, ``GET /healthz`` (200), ``GET /tasks`` without a token (401 through DRF's
authentication and the one error handler) and ``GET /no/such/route`` (the JSON 404): the cheapest
routes, so the ratio is the worst case (a route that calls Kubernetes spends milliseconds there).
Prints p50 and p95 per mode and round, and the ratio of the medians of the p50s (on / off).

The shared machine's noise is larger than the effect, so it also times the metrics middleware
itself in one process (in multiprocess mode, as under gunicorn): the cost per request in
microseconds, without the network and the rest of Django.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ("/healthz", "/tasks", "/no/such/route")
EXPECTED = {"/healthz": 200, "/tasks": 401, "/no/such/route": 404}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(enabled: bool, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PROMETHEUS_", "IMM_METRICS_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "benchmark-only-" + "k" * 40,
            "IMM_METRICS_ENABLED": "true" if enabled else "false",
            "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{port} --workers=2 --threads=4 --timeout=300 --no-control-socket",
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "inferencemgmt.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("gunicorn did not start")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _measure(port: int, count: int) -> list[float]:
    with requests.Session() as session:
        return _timed(session, port, count)


def _timed(session: requests.Session, port: int, count: int) -> list[float]:
    base = f"http://127.0.0.1:{port}"
    for route in ROUTES * 50:  # warm-up: both workers import and cache what the routes need
        session.get(base + route, timeout=10)
    took = []
    for index in range(count):
        route = ROUTES[index % len(ROUTES)]
        began = time.perf_counter()
        answer = session.get(base + route, timeout=10)
        took.append(time.perf_counter() - began)
        if answer.status_code != EXPECTED[route]:
            raise SystemExit(f"{route}: HTTP {answer.status_code}, expected {EXPECTED[route]}")
    return took


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _micro(count: int) -> None:
    """In this process (PROMETHEUS_MULTIPROC_DIR set by the caller): the middleware's own cost."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from inferencemgmt.metrics import MetricsMiddleware

    request = RequestFactory().get("/tenants/t1/endpoints/e1")
    request.resolver_match = resolve("/tenants/t1/endpoints/e1")
    answer = HttpResponse(status=200)
    middleware = MetricsMiddleware(lambda _: answer)
    for _ in range(1000):
        middleware(request)
    began = time.perf_counter()
    for _ in range(count):
        middleware(request)
    with_metrics = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(count):
        answer if request else None  # noqa: B018 -- the bare call the middleware wraps, for the baseline
    bare = time.perf_counter() - began
    print(f"middleware alone (multiprocess mode): {(with_metrics - bare) / count * 1e6:.1f} us per request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--micro", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.micro:
        _micro(args.micro)
        return 0
    p50s: dict[bool, list[float]] = {False: [], True: []}
    for round_number in range(1, args.rounds + 1):
        for enabled in (False, True):
            port = _free_port()
            server = _start(enabled, port)
            try:
                took = _measure(port, args.requests)
            finally:
                _stop(server)
            p50, p95 = _quantile(took, 0.5), _quantile(took, 0.95)
            p50s[enabled].append(p50)
            mode = "on " if enabled else "off"
            print(f"round {round_number} metrics {mode}: p50 {p50 * 1000:.3f} ms  p95 {p95 * 1000:.3f} ms")
    off, on = statistics.median(p50s[False]), statistics.median(p50s[True])
    print(f"p50 median of rounds: off {off * 1000:.3f} ms, on {on * 1000:.3f} ms")
    print(f"added latency at p50: {(on - off) * 1e6:.0f} us; ratio on/off {on / off:.3f}")
    with tempfile.TemporaryDirectory(prefix="imm-bench-metrics-micro-") as directory:
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": directory,
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "true",
        }
        subprocess.run([sys.executable, __file__, "--micro", "20000"], env=env, cwd=ROOT, check=True)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main())
