"""What the audit trail adds to a mutating request, at p50: the same requests with auditing on and
off, taking turns in the same run (the machine's load drifts; alternating cancels it).

Usage (no platform needed; with the devstack's env sourced, ``--postgres`` uses its PostgreSQL, as
production does, in a database of the benchmark's own that it drops at the end):

    python benchmarks/audit_overhead.py [--samples 400] [--postgres]

The requests go through the whole Django and DRF stack (middleware, authentication, routing, the
view, the error handler) and are refused by the view's own validation before any upstream call,
so the figure is the audit's cost against the cheapest request it can be added to (a request that
reaches Kubernetes or the object store takes milliseconds more, and the ratio shrinks with it):

- ``scale``: ``PATCH /tenants/<t>/endpoints/<e>/replicas`` with a bad count (400): route lookup,
  identity, one INSERT;
- ``robot``: ``POST /tenants/<t>/robots`` with a bad name (400): the same plus reading the JSON body
  for the target's name.

The database is a SQLite file in a temporary directory (migrated first), so each INSERT is a real
commit to disk (an fsync: the slow case), or PostgreSQL. Prints p50 and p95 per variant and the p50
ratio on/off.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_POSTGRES = "--postgres" in sys.argv
_BENCH_DATABASE = "imm_audit_bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
if _POSTGRES:
    _SERVER = os.environ["IMM_DEVSTACK_DATABASE_URL"]
    os.environ["DATABASE_URL"] = _SERVER.rsplit("/", 1)[0] + f"/{_BENCH_DATABASE}"
else:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='imm-audit-bench-')}/bench.sqlite3"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from audit.models import AuditRecord  # noqa: E402
from inferencemgmt.auth.identity import Identity  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _server_database(statement: str) -> None:
    """CREATE / DROP the benchmark's database, from the server's default one."""
    import psycopg

    with psycopg.connect(_SERVER, autocommit=True) as connection:
        connection.execute(statement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--postgres", action="store_true", help="the devstack's PostgreSQL (env sourced)")
    arguments = parser.parse_args()
    if _POSTGRES:
        _server_database(f"DROP DATABASE IF EXISTS {_BENCH_DATABASE}")
        _server_database(f"CREATE DATABASE {_BENCH_DATABASE}")
    try:
        measure(arguments.samples)
    finally:
        if _POSTGRES:
            from django.db import connections

            connections.close_all()
            _server_database(f"DROP DATABASE IF EXISTS {_BENCH_DATABASE}")


def measure(samples: int) -> None:
    logging.disable(logging.WARNING)  # each 400 would log a line: the same cost on both sides, noise
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    api = APIClient()
    api.force_authenticate(Identity(username="alice@example.com", groups=("team-a",)))  # type: ignore[arg-type]
    requests: dict[str, Callable[[], Any]] = {
        "scale": lambda: api.patch(
            "/tenants/bench/endpoints/e1/replicas", data=json.dumps({"replicas": -1}), content_type="application/json"
        ),
        "robot": lambda: api.post(
            "/tenants/bench/robots",
            data=json.dumps({"name": "Bad Name", "description": "x"}),
            content_type="application/json",
        ),
    }
    seconds: dict[tuple[str, bool], list[float]] = {(name, on): [] for name in requests for on in (True, False)}
    for call in requests.values():  # warm-up outside the figures
        for on in (True, False):
            settings.IMM_AUDIT_ENABLED = on
            assert call().status_code == 400
    before = AuditRecord.objects.count()
    for _ in range(samples):
        for name, call in requests.items():
            for on in (True, False):
                settings.IMM_AUDIT_ENABLED = on
                start = time.perf_counter()
                answer = call()
                seconds[(name, on)].append(time.perf_counter() - start)
                assert answer.status_code == 400
    recorded = AuditRecord.objects.count() - before
    assert recorded == samples * len(requests), recorded  # on: one record each; off: none
    for name in requests:
        audited, plain = seconds[(name, True)], seconds[(name, False)]
        for label, values in (("on ", audited), ("off", plain)):
            p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
            print(f"{name:6} audit {label} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
        ratio = statistics.median(audited) / statistics.median(plain)
        added = (statistics.median(audited) - statistics.median(plain)) * 1000
        print(f"{name:6} p50 ratio on/off {ratio:.2f} (+{added:.2f} ms)")


if __name__ == "__main__":
    main()
