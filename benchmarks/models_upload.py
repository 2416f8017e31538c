# The generated Kubernetes models are typed with Optional fields; this script passes dicts.
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""Upload throughput and the API server's memory while parts stream through it, on the devstack.

Usage (with the devstack's env sourced):

    python benchmarks/models_upload.py [--size-mib 1024] [--part-mib 64] [--memory-part-mib 64]

Figures are ratios against baselines measured in the same run on the same machine, never absolute
pass/fail thresholds:

- throughput: the same bytes uploaded (a) through the original multipart routes of the API
  (``upload/start``, ``PUT upload`` per part, ``upload/done``) and (b) by direct upload (start,
  PUT to presigned URLs, verified completion in a Celery task), each against a plain boto3 multipart
  upload to the same store with the same part size. Targets: (a) >= 0.8, (b) >= 0.95.
- memory: peak resident-set growth of the API's gunicorn worker while one part of
  ``--memory-part-mib`` goes through ``PUT upload``, against the growth for a 1 MiB part. Flat
  streaming means both are about the server's fixed buffers (the target is growth < 64 MiB for any
  part size; a buffering server would grow by the part size).

It starts its own gunicorn (one sync worker) and Celery worker on a fresh SQLite database and a
Redis database of its own, creates a throwaway tenant (scope team-a) and removes it at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from kubernetes import client, config  # noqa: E402

from tests.platform_admin import admin_s3_client, team_a_tenant_create  # noqa: E402

MIB = 1024 * 1024
BENCH_REDIS_DB = 14


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Samples a process's resident set every few milliseconds while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self) -> PeakRss:
        self.start = rss_bytes(self.pid)
        self.peak = self.start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def token(user: str) -> str:
    result = subprocess.run(  # noqa: S603 -- a fixed argv: this interpreter and a module
        [sys.executable, "-m", "devstack.token", user], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


ONE_SYNC_WORKER = ("--workers", "1", "--worker-class", "sync", "--timeout", "600")


def controller_argv(env: Mapping[str, str]) -> list[str]:
    """``run_controller`` with the devstack's controller certificate (so its ClusterRole is what runs)
    and a Lease of its own, so that it leads at once beside any controller already on the platform."""
    kubeconfig = env.get("IMM_CONTROLLER_KUBECONFIG") or str(Path(env["KUBECONFIG"]).parent / "controller.kubeconfig")
    return [sys.executable, "manage.py", "run_controller", "--kubeconfig", kubeconfig,
            "--lease-name", f"imm-controller-bench-{uuid.uuid4().hex[:6]}", "--lease-seconds", "6"]  # fmt: skip


class Platform:
    """The API (gunicorn), a Celery worker and, on request, the endpoints controller, on a database
    and a Redis database of their own; ``gunicorn`` options and ``env`` overrides pick the set-up."""

    def __init__(
        self, workdir: Path, gunicorn: Sequence[str] = ONE_SYNC_WORKER, env: Mapping[str, str] | None = None
    ) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "true",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "REDIS_URL": os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}",
            "IMM_OPERATION_PROGRESS_INTERVAL_SECONDS": "0.5",
            **(env or {}),
        }
        self.gunicorn_options = list(gunicorn)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.controller: subprocess.Popen[bytes] | None = None

    def start(self, controller: bool = False) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        self.gunicorn = self._spawn(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "inferencemgmt.wsgi", *self.gunicorn_options,
             "-b", f"127.0.0.1:{self.port}"],
        )  # fmt: skip
        self.celery = self._spawn(
            "celery",
            [sys.executable, "-m", "celery", "-A", "inferencemgmt", "worker", "--pool=solo", "-n",
             f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        )  # fmt: skip
        if controller:
            self.controller = self._spawn("controller", controller_argv(self.env))
        wait_http(f"{self.base}/healthz")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 -- argv built above from fixed words
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def make_tenant(admin: client.ApiClient, s3: Any) -> str:
    name = f"bench-m{uuid.uuid4().hex[:8]}"
    team_a_tenant_create(admin, s3, name, "benchmark")
    return name


def drop_tenant(admin: client.ApiClient, s3: Any, name: str) -> None:
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)
    client.CoreV1Api(admin).delete_namespace(name)


def parts_of(data: memoryview, part: int) -> list[memoryview]:
    return [data[i : i + part] for i in range(0, len(data), part)] or [data[:0]]


def upload_boto3(s3: Any, bucket: str, key: str, data: memoryview, part: int) -> float:
    began = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, chunk in enumerate(parts_of(data, part), start=1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(chunk))
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    return time.perf_counter() - began


def upload_compat(session: requests.Session, base: str, model: str, data: memoryview, part: int) -> float:
    file = {"modelName": model, "modelVersion": 1, "fileName": "blob.bin", "key": None}
    began = time.perf_counter()
    answer = session.post(f"{base}/upload/start", json=file, timeout=60)
    answer.raise_for_status()
    upload_id = answer.json()["data"]["uploadId"]
    parts = []
    for number, chunk in enumerate(parts_of(data, part), start=1):
        query = {**file, "key": "", "partNumber": number, "uploadId": upload_id}
        sent = session.put(f"{base}/upload", params=query, data=bytes(chunk), timeout=600)
        sent.raise_for_status()
        parts.append({"ETag": sent.json()["data"]["ETag"], "PartNumber": number})
    session.post(
        f"{base}/upload/done", json={**file, "uploadId": upload_id, "parts": parts}, timeout=600
    ).raise_for_status()
    return time.perf_counter() - began


def upload_direct(session: requests.Session, base: str, model: str, data: memoryview, part: int) -> float:
    chunks = parts_of(data, part)
    began = time.perf_counter()
    checksums = [hashlib.md5(chunk).hexdigest() for chunk in chunks]  # noqa: S324 -- the part ETag is an MD5
    body = {"modelName": model, "modelVersion": 1, "path": "blob.bin", "size": len(data), "partSize": part}
    answer = session.post(f"{base}/uploads", json=body, timeout=60)
    answer.raise_for_status()
    plan = answer.json()["data"]
    plain = requests.Session()
    for entry in plan["missing"]:
        plain.put(entry["url"], data=bytes(chunks[entry["partNumber"] - 1]), timeout=600).raise_for_status()
    parts = [{"partNumber": n, "md5": md5} for n, md5 in enumerate(checksums, start=1)]
    done = session.post(f"{base}/uploads/{plan['uploadId']}/complete", json={"parts": parts}, timeout=600)
    done.raise_for_status()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--memory-part-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for each way of uploading")
    args = parser.parse_args()

    s3 = admin_s3_client(os.environ)
    admin = config.new_client_from_config(os.environ["KUBECONFIG"])
    workdir = Path(tempfile.mkdtemp(prefix="imm-bench-models-"))
    platform = Platform(workdir)
    tenant = make_tenant(admin, s3)
    try:
        platform.start()
        session = requests.Session()
        session.headers["Authorization"] = token("alice")  # the bare form, as the original client sends
        base = f"{platform.base}/tenants/{tenant}"
        data = memoryview(os.urandom(args.size_mib * MIB))
        part = args.part_mib * MIB

        pid = worker_pid(platform.gunicorn.pid)
        upload_compat(session, base, "warmup", memoryview(os.urandom(MIB)), part)  # imports, connections
        growth = {}
        for size in (1, args.memory_part_mib):
            with PeakRss(pid) as sample:
                upload_compat(session, base, f"mem{size}", memoryview(os.urandom(size * MIB)), size * MIB)
            growth[size] = sample.growth

        timings: dict[str, float] = {}
        whole = 0
        for round_number in range(args.rounds):
            timings["boto3"] = min(
                timings.get("boto3", float("inf")),
                upload_boto3(s3, tenant, f"boto3/{round_number}/blob.bin", data, part),
            )
            with PeakRss(pid) as sample:
                elapsed = upload_compat(session, base, f"compat{round_number}", data, part)
            whole = max(whole, sample.growth)
            timings["compat"] = min(timings.get("compat", float("inf")), elapsed)
            timings["direct"] = min(
                timings.get("direct", float("inf")), upload_direct(session, base, f"direct{round_number}", data, part)
            )

        mib = args.size_mib
        print(f"upload of {mib} MiB in {args.part_mib} MiB parts, best of {args.rounds}:")
        for name in ("boto3", "compat", "direct"):
            print(f"  {name:7s} {timings[name]:7.2f} s  {mib / timings[name]:8.1f} MiB/s")
        print(f"  ratio compat/boto3 throughput: {timings['boto3'] / timings['compat']:.2f} (target >= 0.8)")
        print(f"  ratio direct/boto3 throughput: {timings['boto3'] / timings['direct']:.2f} (target >= 0.95)")
        print("API worker peak RSS growth while parts stream through PUT upload:")
        for size, grown in growth.items():
            print(f"  one {size:5d} MiB part: {grown / MIB:6.1f} MiB")
        print(f"  the whole {mib} MiB upload: {whole / MIB:6.1f} MiB (target < 64 MiB)")
        extra = (growth[args.memory_part_mib] - growth[1]) / max((args.memory_part_mib - 1) * MIB, 1)
        print(
            f"  ratio (growth {args.memory_part_mib} MiB part - growth 1 MiB part) / part size difference: "
            f"{extra:.3f} (flat streaming ~0, a buffering server ~1 or more)"
        )
    finally:
        platform.stop()
        drop_tenant(admin, s3, tenant)


if __name__ == "__main__":
    main()
