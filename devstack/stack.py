"""Start, reuse, stop and wipe the whole devstack, and write `.devstack/env` for its clients.

Order matters: the broker and the object store need nothing; the identity provider must be up
before kube-apiserver so the API server can trust its issuer; the cluster comes up from etcd to
kwok, then the bootstrap manifests (namespaces, CRD, RBAC, fake nodes) are applied. `up` returns
only when every part answers its readiness check, so "ready" is never a guess.

An identity-provider module `devstack.idp`, when present, contributes three things:
`parts() -> list[Part]`, `apiserver_flags() -> list[str]` and `env() -> dict[str, str]`.
"""

from __future__ import annotations

import importlib
import shlex
import shutil
import time
from pathlib import Path
from types import ModuleType

from devstack import cluster, database, metrics, monitoring, pki, realnode, storage
from devstack.layout import ENV_FILE, PLATFORM_DOMAIN, SERVINGS_NAMESPACE, STATE, SYSTEM_NAMESPACE
from devstack.proc import Part, recorded_pid, say, stop

# Every part's name, in start order; `down` goes in reverse.
ORDER = [
    "redis", "postgres", "s3", "slapd", "dex",
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus",
]  # fmt: skip


def _idp() -> ModuleType | None:
    try:
        return importlib.import_module("devstack.idp")
    except ModuleNotFoundError as exc:
        if exc.name != "devstack.idp":
            raise
        return None


def environment() -> dict[str, str]:
    """The variables that clients of the devstack (the product, tests, scripts) need."""
    access, secret = storage.s3_credentials()
    env = {
        "KUBECONFIG": str(cluster.kubeconfig_path("admin")),
        "IMM_KUBECONFIG": str(cluster.kubeconfig_path("management-api")),
        "IMM_CONTROLLER_KUBECONFIG": str(cluster.kubeconfig_path("controller")),
        "IMM_DEVSTACK_CA_FILE": str(pki.ensure_ca().cert),
        "IMM_SYSTEM_NAMESPACE": SYSTEM_NAMESPACE,
        "SERVING_TEMPLATES_NAMESPACE": SERVINGS_NAMESPACE,
        "PLATFORM_DOMAIN": PLATFORM_DOMAIN,
        "S3_ENDPOINT_URL": storage.S3_URL,
        "S3_ACCESS_KEY_ID": access,
        "S3_SECRET_ACCESS_KEY": secret,
        "S3_REGION": "us-east-1",
        # SeaweedFS serves the IAM API on its S3 port; the platform's identity holds `Admin` there.
        "S3_IAM_ENDPOINT_URL": storage.S3_URL,
        "IMM_STORE_IDENTITY_BACKEND": "aws-iam",
        "REDIS_URL": storage.REDIS_URL,
        # Not DATABASE_URL: the product stays on SQLite unless told otherwise (see the README).
        "IMM_DEVSTACK_DATABASE_URL": database.url(),
    }
    idp = _idp()
    if idp is not None:
        env.update(idp.env())
    if realnode.active():
        env.update(realnode.env())
    env.update(monitoring.env())
    return env


def write_env() -> None:
    lines = ["# Written by `make devstack`; source it with `set -a; . .devstack/env; set +a`."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in environment().items()]
    partial = ENV_FILE.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.chmod(0o600)
    partial.replace(ENV_FILE)


def up() -> None:
    began = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    idp = _idp()
    parts: list[Part] = [storage.redis_part(), database.part(), storage.s3_part()]
    if idp is not None:
        parts += idp.parts()
    node = realnode.active()
    if node:
        realnode.check_running_apiserver()
    if node and not realnode.ENABLED:
        say("real node: still running from an IMM_DEVSTACK_REAL_NODE=1 start; kept (make devstack-down stops it)")
    parts += cluster.parts(
        idp.apiserver_flags() if idp is not None else [], realnode.apiserver_flags() if node else None
    )
    if node:
        parts += realnode.parts(cluster.write_kubeconfig)
    for part in parts:
        reused = recorded_pid(part.name) is not None
        waited = part.start()
        say(f"{part.name}: {'already running' if reused else 'started'}, ready in {waited:.1f}s")
    database.ensure_database()
    cluster.bootstrap()
    cluster.wait_established()
    if node:
        realnode.finish(cluster.kubeconfig_path("admin"))
        metrics.up(cluster.kubeconfig_path("admin"), cluster.write_kubeconfig)
    elif metrics.unregister(cluster.kubeconfig_path("admin")):
        say(f"{metrics.NAME}: unregistered {metrics.API_SERVICE} (no real node, so no metrics-server)")
    # Last: Prometheus scrapes the serving pods of the cluster, which must be up.
    for part in ([monitoring.targets_part()] if node else []) + [monitoring.start()]:
        reused = recorded_pid(part.name) is not None
        waited = part.start()
        say(f"{part.name}: {'already running' if reused else 'started'}, ready in {waited:.1f}s")
    write_env()
    say(f"ready in {time.monotonic() - began:.0f}s; clients: source {ENV_FILE}")


def down() -> None:
    if metrics.down():
        say(f"{metrics.NAME}: stopped")
    # The real node first: its kubelet still talks to the API server while it stops.
    if stop(monitoring.TARGETS_NAME):
        say(f"{monitoring.TARGETS_NAME}: stopped")
    for line in realnode.shutdown():
        say(line)
    for name in reversed(ORDER):
        if stop(name):
            say(f"{name}: stopped")


def clean() -> None:
    down()
    database.wipe()
    if STATE.exists():
        shutil.rmtree(STATE)
        say(f"removed {STATE}")


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its direct children (SeaweedFS runs as one process)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(status.parent.name) == pid or fields.get("PPid", "").strip() == str(pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


def status() -> int:
    """Print each part's PID and memory; exit code 0 only when all are running."""
    missing = 0
    total = 0
    names = [*ORDER, *realnode.PARTS, metrics.NAME, monitoring.TARGETS_NAME] if realnode.active() else ORDER
    for name in names:
        pid = recorded_pid(name)
        if pid is None:
            missing += 1
            print(f"{name:26} stopped")
            continue
        rss = _rss_kib(pid)
        total += rss
        print(f"{name:26} pid {pid:<8} rss {rss / 1024:7.1f} MiB")
    if realnode.active():
        processes, rss = realnode.pods_rss_kib()
        total += rss
        print(f"{'real-node pods':26} {f'{processes} procs':12} rss {rss / 1024:7.1f} MiB")
    print(f"{'total':26} {'':12} rss {total / 1024:7.1f} MiB")
    return 1 if missing else 0
