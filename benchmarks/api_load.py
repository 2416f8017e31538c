# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""Mixed API load and a memory soak on the devstack: concurrent clients, a baseline, each process's memory.

Usage (with the devstack's env sourced):

    python benchmarks/api_load.py [--clients 50] [--seconds 60]                      # make bench
    python benchmarks/api_load.py --soak [--clients 10] [--seconds 600] [--growth-limit-mib 16]  # make soak

Loopback only. It starts the API under gunicorn with the production options (the Dockerfile's
``GUNICORN_CMD_ARGS``, the Helm chart's defaults: 2 workers x 4 threads, gthread), DEBUG off, on a
PostgreSQL database of its own on the devstack's server, plus a Celery worker and the endpoints
controller (models_upload.Platform). It creates a throwaway team-a tenant with one InferenceEndpoint
(1 replica, Running on kwok) and removes both at the end, also on failure. After a 10 s warm-up of the
mix (every worker loads what the routes need), two phases run with the same clients:

- baseline (up to 60 s): ``GET /healthz`` (no token, no upstream): what this machine and this gunicorn
  serve, so the mix's throughput can be read as a ratio (the machine is shared and noisy);
- mix: alice's token, in turn: list tenants, models and endpoints; view the tenant and the endpoint
  (live Deployment and pod status); scale the endpoint (``PATCH .../replicas``, alternating 1 and 2:
  the controller and kwok follow); upload a 64 KiB model file by direct upload (``POST /uploads``,
  ``PUT`` to the presigned part URL, ``POST /uploads/<id>/complete``, which waits for the Celery task).

Prints, for each phase: API requests, throughput, p50/p95/p99 latency, errors (status >= 400 or an
exception, in the API or the store; the target is 0) and per-route figures; then the resident set of
every process (gunicorn master and each worker, Celery worker, controller) sampled every second: a
timeline and start/max/end/growth. ``--soak`` runs the mix for ``--seconds`` (10 minutes) and compares
each process's mean over the last minute with its mean over the first minute after a minute of
warm-up. Exit status 1 on any error, a process that exited, or (soak) growth above the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import requests
from kubernetes import config
from models_upload import ROOT, Platform, drop_tenant, make_tenant, rss_bytes, token

from tests.platform_admin import admin_s3_client

MAX_CLIENTS = 64
MAX_SECONDS = {"load": 120, "soak": 3600}
BASELINE_SECONDS = 60.0
WARMUP_SECONDS = 10.0
WINDOW_SECONDS = 60.0  # the soak's warm-up, and each of the two windows it compares
TIMEOUT = 120  # the upload's completion waits for its Celery task
MODEL, ENDPOINT = "load-model", "load"
UPLOAD_KEYS = 8  # uploads overwrite these few files, so the model list stays the same size
BLOB = os.urandom(64 * 1024)
BLOB_MD5 = hashlib.md5(BLOB).hexdigest()  # noqa: S324 -- the part checksum the route asks for


@dataclass(frozen=True)
class Call:
    """One HTTP exchange; an operation (an upload) may make several."""

    route: str
    status: int
    seconds: float
    api: bool = True  # False: the object store (a presigned URL), left out of the API's figures


def production_gunicorn() -> list[str]:
    """The Dockerfile's ``GUNICORN_CMD_ARGS`` (the chart renders the same defaults) without the bind
    address, so that the benchmark measures the configuration that ships and follows it when it changes."""
    found = re.search(r'GUNICORN_CMD_ARGS="([^"]+)"', (ROOT / "Dockerfile").read_text())
    if found is None:
        raise SystemExit("GUNICORN_CMD_ARGS not found in the Dockerfile")
    return [option for option in found.group(1).split() if not option.startswith("--bind")]


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A database of our own on the devstack's PostgreSQL (what production runs: several gunicorn
    workers and Celery writing at once), dropped at the end."""
    server = os.environ["IMM_DEVSTACK_DATABASE_URL"]
    name = f"imm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def timed(route: str, send: Callable[[], requests.Response], api: bool = True) -> tuple[Call, requests.Response]:
    """The exchange's figures and the answer itself (the upload reads its plan from it)."""
    began = time.perf_counter()
    answer = send()
    return Call(route, answer.status_code, time.perf_counter() - began, api), answer


class Mix:
    """One operation per call, in turn: the reads, a scale and an upload, all as alice."""

    def __init__(self, base: str, tenant: str, auth: dict[str, str]) -> None:
        self.tenant_url = f"{base}/tenants/{tenant}"
        self.endpoint_url = f"{self.tenant_url}/endpoints/{ENDPOINT}"
        self.auth = auth
        reads = [
            ("GET /tenants", f"{base}/tenants"),
            ("GET /tenants/<t>", self.tenant_url),
            ("GET /tenants/<t>/models", f"{self.tenant_url}/models"),
            ("GET /tenants/<t>/endpoints", f"{self.tenant_url}/endpoints"),
            ("GET /tenants/<t>/endpoints/<e>", self.endpoint_url),
        ]
        self.operations: list[Callable[[requests.Session, int], list[Call]]] = [
            *(self._read(label, url) for label, url in reads),
            self.scale,
            self.upload,
        ]
        self._scales = itertools.count()

    def __call__(self, session: requests.Session, n: int) -> list[Call]:
        return self.operations[n % len(self.operations)](session, n)

    def _read(self, label: str, url: str) -> Callable[[requests.Session, int], list[Call]]:
        return lambda session, n: [timed(label, lambda: session.get(url, headers=self.auth, timeout=TIMEOUT))[0]]

    def scale(self, session: requests.Session, n: int) -> list[Call]:
        """1 and 2 replicas in turn across all clients, so the controller and kwok follow every other scale."""
        body = {"replicas": 1 + next(self._scales) % 2}
        url = f"{self.endpoint_url}/replicas"
        send = lambda: session.patch(url, json=body, headers=self.auth, timeout=TIMEOUT)  # noqa: E731
        return [timed("PATCH .../replicas", send)[0]]

    def upload(self, session: requests.Session, n: int) -> list[Call]:
        body = {"modelName": MODEL, "modelVersion": 1, "path": f"blob{n % UPLOAD_KEYS}.bin", "size": len(BLOB)}
        url = f"{self.tenant_url}/uploads"
        start, answer = timed("POST /uploads", lambda: session.post(url, json=body, headers=self.auth, timeout=TIMEOUT))
        if start.status >= 400:
            return [start]
        plan = answer.json()["data"]
        (part,) = plan["missing"]
        put, _ = timed("PUT part (store)", lambda: session.put(part["url"], data=BLOB, timeout=TIMEOUT), api=False)
        if put.status >= 400:
            return [start, put]
        done_url = f"{url}/{plan['uploadId']}/complete"
        parts = {"parts": [{"partNumber": 1, "md5": BLOB_MD5}]}
        done, _ = timed(
            "POST /uploads/<id>/complete",
            lambda: session.post(done_url, json=parts, headers=self.auth, timeout=TIMEOUT),
        )
        return [start, put, done]


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Phase:
    """What the clients saw in one phase."""

    calls: list[Call]
    wall: float
    failures: list[str]  # the type names of exceptions (no answer at all)

    @property
    def api(self) -> list[Call]:
        return [call for call in self.calls if call.api]

    @property
    def errors(self) -> int:
        return sum(1 for call in self.calls if call.status >= 400) + len(self.failures)

    def summary(self, name: str) -> str:
        latencies = sorted(call.seconds for call in self.api)
        kinds = {f"{call.route} {call.status}" for call in self.calls if call.status >= 400} | set(self.failures)
        return (
            f"{name:9} API requests={len(latencies):6d} throughput={len(latencies) / self.wall:7.1f}/s "
            f"p50={percentile(latencies, 0.50):7.1f}ms p95={percentile(latencies, 0.95):7.1f}ms "
            f"p99={percentile(latencies, 0.99):7.1f}ms errors={self.errors} {sorted(kinds)[:5] or ''}"
        )

    def routes(self) -> Iterator[str]:
        by_route: dict[str, list[Call]] = {}
        for call in self.calls:
            by_route.setdefault(call.route, []).append(call)
        for route, calls in sorted(by_route.items()):
            latencies = sorted(call.seconds for call in calls)
            counted = sorted(Counter(call.status for call in calls).items())
            statuses = " ".join(f"{status}x{count}" for status, count in counted)
            yield (
                f"    {route:30} n={len(calls):6d} p50={percentile(latencies, 0.5):7.1f}ms "
                f"p95={percentile(latencies, 0.95):7.1f}ms p99={percentile(latencies, 0.99):7.1f}ms  {statuses}"
            )


def run_phase(clients: int, seconds: float, operation: Callable[[requests.Session, int], list[Call]]) -> Phase:
    calls: list[Call] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        session = requests.Session()
        for counter in itertools.count():
            if time.monotonic() >= deadline:
                return
            try:
                made = operation(session, number * 1_000_000 + counter)
                problem = ""
            except (requests.RequestException, ValueError, KeyError) as exc:
                made, problem = [], type(exc).__name__
            with lock:
                calls.extend(made)
                if problem:
                    failures.append(problem)

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Phase(calls, time.monotonic() - began, failures)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class ProcessMemory:
    """Every platform process's resident set (MiB) once a second, each worker on its own.

    A gunicorn worker that is replaced (killed on timeout, out of memory) shows as a new column and
    its predecessor in ``gone``: either is a failure of the run, not just a figure.
    """

    def __init__(self, platform: Platform, interval: float = 1.0) -> None:
        self.platform, self.interval = platform, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.gone: set[str] = set()
        self._stop = threading.Event()

    def pids(self) -> dict[str, int]:
        master = self.platform.gunicorn.pid
        found = {"gunicorn master": master}
        found.update({f"worker {pid}": pid for pid in children(master)})
        found["celery"] = self.platform.celery.pid
        if self.platform.controller is not None:
            found["controller"] = self.platform.controller.pid
        return found

    def __enter__(self) -> ProcessMemory:
        self.began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now, sample = time.monotonic() - self.began, {}
            try:
                pids = self.pids()
            except FileNotFoundError:  # the gunicorn master is gone: every label counts as gone below
                pids = {}
            for label, pid in pids.items():
                try:
                    sample[label] = rss_bytes(pid) / 2**20
                except (FileNotFoundError, ProcessLookupError):
                    self.gone.add(label)
            self.samples.append((now, sample))
            self.gone.update(label for label in self.labels() if label not in sample)
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def labels(self) -> list[str]:
        return list(dict.fromkeys(label for _, sample in self.samples for label in sample))

    def series(self, label: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [sample[label] for at, sample in self.samples if since <= at < until and label in sample]

    def timeline(self, every: float) -> Iterator[str]:
        """One row every ``every`` seconds, and the last sample."""
        labels = self.labels()
        yield "      t  " + "".join(f"{label:>16}" for label in labels)
        next_at = 0.0
        for index, (at, sample) in enumerate(self.samples):
            last = index == len(self.samples) - 1
            if at >= next_at or last:
                yield f"{at:6.0f}s  " + "".join(f"{sample.get(label, float('nan')):16.1f}" for label in labels)
                next_at += every


def soak_growth(memory: ProcessMemory, mix_began: float, mix_ended: float) -> dict[str, tuple[float, float]]:
    """Per process: (mean over the first minute after the warm-up minute, mean over the last minute)."""
    first = (mix_began + WINDOW_SECONDS, mix_began + 2 * WINDOW_SECONDS)
    last = (mix_ended - WINDOW_SECONDS, mix_ended)
    means = {}
    for label in memory.labels():
        early, late = memory.series(label, *first), memory.series(label, *last)
        if early and late:
            means[label] = (statistics.fmean(early), statistics.fmean(late))
    return means


def wait_running(session: requests.Session, url: str, auth: dict[str, str], timeout: float = 300) -> None:
    """Until the endpoint's Deployment has its pod available (the controller rendered it, kwok ran it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = session.get(url, headers=auth, timeout=TIMEOUT).json()["data"]["endpoints"]
        if any(entry["name"] == ENDPOINT and entry["status"] == "available" for entry in entries):
            return
        time.sleep(1)
    raise SystemExit(f"endpoint {ENDPOINT} was not available within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", action="store_true", help="the 10-minute memory soak (fewer clients)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 50; 10 with --soak)")
    parser.add_argument("--seconds", type=float, help="length of the mix (default 60; 600 with --soak)")
    parser.add_argument(
        "--growth-limit-mib",
        type=float,
        default=16.0,
        help="soak: fail when any process's last-minute mean exceeds its first-minute mean by more (MiB)",
    )
    args = parser.parse_args()
    mode = "soak" if args.soak else "load"
    clients = max(1, min(args.clients or (10 if args.soak else 50), MAX_CLIENTS))
    seconds = max(1.0, min(args.seconds or (600.0 if args.soak else 60.0), MAX_SECONDS[mode]))
    if args.soak and seconds < 3 * WINDOW_SECONDS:
        raise SystemExit(f"--soak needs --seconds >= {3 * WINDOW_SECONDS:.0f}: a warm-up minute and two to compare")

    s3 = admin_s3_client(os.environ)
    admin = config.new_client_from_config(os.environ["KUBECONFIG"])
    gunicorn = production_gunicorn()
    workdir = Path(tempfile.mkdtemp(prefix="imm-bench-load-"))
    auth = {"Authorization": f"Bearer {token('alice')}"}
    with bench_database() as database:
        settings = {"DATABASE_URL": database, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": uuid.uuid4().hex}
        platform = Platform(workdir, gunicorn, settings)
        tenant = make_tenant(admin, s3)
        try:
            platform.start(controller=True)
            mix = Mix(platform.base, tenant, auth)
            session = requests.Session()
            body = {"endpointName": ENDPOINT, "modelName": MODEL, "subjectName": "client", "replicas": 1}
            created = session.post(f"{mix.tenant_url}/endpoints", json=body, headers=auth, timeout=TIMEOUT)
            if created.status_code >= 400:
                raise SystemExit(f"creating the endpoint: HTTP {created.status_code} {created.text}")
            wait_running(session, f"{mix.tenant_url}/endpoints", auth)
            # Warm-up, concurrent so that every gunicorn worker imports and connects what the routes
            # need (JWKS, Kubernetes and store clients, database connections) before memory counts.
            phases = {"warm-up": run_phase(clients, WARMUP_SECONDS, mix)}

            def baseline(session: requests.Session, n: int) -> list[Call]:
                return [timed("GET /healthz", lambda: session.get(f"{platform.base}/healthz", timeout=TIMEOUT))[0]]

            load_before = os.getloadavg()[0]
            with ProcessMemory(platform) as memory:
                phases["baseline"] = run_phase(clients, min(seconds, BASELINE_SECONDS), baseline)
                mix_began = time.monotonic() - memory.began
                phases["mix"] = run_phase(clients, seconds, mix)
                mix_window = (mix_began, time.monotonic() - memory.began)
            print(f"{mode}: clients={clients} mix seconds={seconds:.0f}; gunicorn {' '.join(gunicorn)} (gthread)")
            print(  # the machine may be shared: say how busy it was
                f"machine: {os.cpu_count()} CPUs, load average (1 min) {load_before:.1f} before the baseline, "
                f"{os.getloadavg()[0]:.1f} after the mix"
            )
            failed = report(phases, memory, mix_window, args.growth_limit_mib if args.soak else None)
            print(f"logs: {workdir}")
            if failed:
                raise SystemExit("FAILED: " + "; ".join(failed))
        finally:
            platform.stop()
            drop_tenant(admin, s3, tenant)


def report(
    phases: dict[str, Phase], memory: ProcessMemory, mix_window: tuple[float, float], growth_limit: float | None
) -> list[str]:
    """Print the figures; return what failed the run (empty: passed). ``growth_limit``: the soak's."""
    for name, phase in phases.items():
        print(phase.summary(name))
    for line in phases["mix"].routes():
        print(line)
    mix, baseline = phases["mix"], phases["baseline"]
    ratio = (len(mix.api) / mix.wall) / (len(baseline.api) / baseline.wall)
    print(f"mix/baseline API throughput ratio={ratio:.3f}")
    print(f"resident set (MiB), sampled every {memory.interval:.0f} s; the mix from t={mix_window[0]:.0f}s:")
    for line in memory.timeline(every=10.0 if mix_window[1] - mix_window[0] <= 120 else 60.0):
        print(line)
    for label in memory.labels():
        values = memory.series(label)
        print(
            f"  {label:16} start={values[0]:7.1f} max={max(values):7.1f} end={values[-1]:7.1f} "
            f"growth={values[-1] - values[0]:+6.1f}"
        )
    failed = []
    errors = sum(phase.errors for phase in phases.values())
    if errors:
        failed.append(f"{errors} errors (the target is 0)")
    if memory.gone:
        failed.append(f"processes exited during the run: {sorted(memory.gone)}")
    if growth_limit is not None:
        print(
            f"soak growth: mean of the last minute - mean of the first minute after a {WINDOW_SECONDS:.0f} s "
            f"warm-up (limit {growth_limit:.0f} MiB per process):"
        )
        for label, (early, late) in soak_growth(memory, *mix_window).items():
            verdict = "ok" if late - early <= growth_limit else "GROWS"
            print(f"  {label:16} first={early:7.1f} last={late:7.1f} growth={late - early:+6.1f} {verdict}")
            if verdict != "ok":
                failed.append(f"{label} grew {late - early:.1f} MiB")
    return failed


if __name__ == "__main__":
    main()
