# The generated Kubernetes models are typed with Optional fields and model bodies; this script passes dicts.
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,misc,index"
"""Create -> Ready latency of InferenceEndpoints, and the controller's cost at rest, on the devstack.

Usage (with the devstack's env sourced):

    python benchmarks/servings_ready.py --endpoints 50 [--at-rest 1000]

Figures are printed as ratios against a baseline measured in the same run on the same machine, never
as absolute pass/fail thresholds:

- latency: create -> ``Ready=True`` through the controller, against create -> available for the
  same rendered Deployments applied directly (no controller). The ratio is the controller's overhead
  on top of what Kubernetes (and kwok) need anyway (``minReadySeconds`` is in both).
- at rest: the controller's CPU (user+system seconds per minute) and resident memory while it holds
  ``--at-rest`` endpoints (0 replicas, so kwok stays idle), against the same process holding none.
  Each sample spans one resync period (``--resync-seconds``, default 60 s: five times the
  controller's default rate), so the figure includes the cost of one full resync.

It starts its own controller process (with the devstack's controller certificate and its own Lease),
and deletes everything it created.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402
from models_upload import controller_argv  # noqa: E402

from servings.catalogue import shipped_templates  # noqa: E402
from servings.controller.rendering import Platform, ServingTemplate, render_endpoint  # noqa: E402
from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body, serving_namespace_create  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wait_all(names: set[str], started: dict[str, float], ready: dict[str, float], probe: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(ready) < len(names):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {len(ready)}/{len(names)} ready")
        now = time.monotonic()
        for name in probe():
            if name in names and name not in ready:
                ready[name] = now - started[name]
        time.sleep(0.25)


def proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident KiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss


def at_rest(pid: int, seconds: float) -> tuple[float, int]:
    cpu0, _ = proc_sample(pid)
    time.sleep(seconds)
    cpu1, rss = proc_sample(pid)
    return (cpu1 - cpu0) * 60.0 / seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--at-rest", type=int, default=0, help="also measure the controller holding this many")
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=60.0,
        help="the controller's resync period; each at-rest sample spans one whole period, so includes one resync",
    )
    args = parser.parse_args()

    kubeconfig = os.environ["KUBECONFIG"]
    admin = config.new_client_from_config(kubeconfig)
    core, apps, custom = client.CoreV1Api(admin), client.AppsV1Api(admin), client.CustomObjectsApi(admin)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    serving_namespace_create(core, ns)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    env.setdefault("DATABASE_URL", "sqlite://:memory:")
    log = open(Path(tempfile.gettempdir()) / f"imm-controller-{ns}.log", "wb")  # noqa: SIM115
    controller = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [*controller_argv(os.environ), "--resync-seconds", str(args.resync_seconds)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        n = args.endpoints
        # Baseline: the same rendered Deployments, applied directly.
        template = ServingTemplate("tf-serving", shipped_templates()["tf-serving"])
        started: dict[str, float] = {}
        ready: dict[str, float] = {}
        for i in range(n):
            name = f"base{i:04d}"
            cr = copy.deepcopy(endpoint_body(name, replicas=1))
            cr["metadata"].update(namespace=ns, uid="0")
            deployment = next(
                o for o in render_endpoint(cr, template, Platform("imm.local")) if o["kind"] == "Deployment"
            )
            del deployment["metadata"]["ownerReferences"]
            started[name] = time.monotonic()
            apps.create_namespaced_deployment(ns, deployment)

        def available() -> list[str]:
            return [
                d.metadata.name
                for d in apps.list_namespaced_deployment(ns).items
                if (d.status.available_replicas or 0) >= 1
            ]

        wait_all(set(started), started, ready, available, 600)
        baseline = list(ready.values())
        for name in started:
            apps.delete_namespaced_deployment(name, ns)

        # Through the controller.
        started, ready = {}, {}
        for i in range(n):
            name = f"ep{i:04d}"
            started[name] = time.monotonic()
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, endpoint_body(name, replicas=1))

        def endpoints_ready() -> list[str]:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            return [
                i["metadata"]["name"]
                for i in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", [])
                )
            ]

        wait_all(set(started), started, ready, endpoints_ready, 600)
        measured = list(ready.values())
        print(f"create -> Ready over {n} endpoints (kwok):")
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            base, value = percentile(baseline, fraction), percentile(measured, fraction)
            print(f"  {label}: controller {value:.2f}s, plain Deployment {base:.2f}s, ratio {value / base:.2f}")
        print(f"  mean: controller {statistics.mean(measured):.2f}s, plain {statistics.mean(baseline):.2f}s")

        if args.at_rest:
            for name in started:
                custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            time.sleep(5)
            cpu0, rss0 = at_rest(controller.pid, args.resync_seconds)
            started, ready = {}, {}
            for i in range(args.at_rest):
                name = f"rest{i:05d}"
                started[name] = time.monotonic()
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, endpoint_body(name, replicas=0))
            wait_all(set(started), started, ready, endpoints_ready, 1800)
            time.sleep(args.resync_seconds)  # let the creation backlog drain first
            cpu1, rss1 = at_rest(controller.pid, args.resync_seconds)
            print(f"controller at rest ({args.resync_seconds:.0f}s samples):")
            print(f"  with 0 endpoints: {cpu0:.2f} CPU-s/min, RSS {rss0 / 1024:.0f} MiB")
            print(
                f"  with {args.at_rest} endpoints: {cpu1:.2f} CPU-s/min, RSS {rss1 / 1024:.0f} MiB"
                f" (RSS ratio {rss1 / rss0:.2f}, CPU +{cpu1 - cpu0:.2f} CPU-s/min)"
            )
    finally:
        controller.terminate()
        controller.wait(timeout=30)
        log.close()
        core.delete_namespace(ns)


if __name__ == "__main__":
    main()
