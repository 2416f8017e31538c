# The generated Kubernetes models are typed with Optional fields and model bodies; this script passes dicts.
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,misc,index"
"""Scale curves: the time of ONE page of each list as the total grows (issue 22).

Usage (with the devstack's env sourced):

    python benchmarks/scale_curves.py [--tenants 10,100,1000] [--endpoints 10,100,1000,10000] [--samples 15]

Measured in-process (Django's test client: token check, the route, the JSON or HTML answer; no HTTP
server in front), p50 of ``--samples`` requests of the first page at each size. Every route is asked
for pages of ``--page`` items (``?limit=``, default 10, the smallest size), so that each size gives a
full page and the curve shows what the total costs, not how many items the page holds:

- tenants at 10, 100 and 1,000 benchmark tenants (on top of whatever the shared cluster holds):
  ``GET /tenants`` as admin and as alice (team-a; one benchmark tenant in ten is team-a's, the others
  another group's, so her page is filtered), the console dashboard as admin, ``GET /tasks`` as admin and
  the admin's console tasks page (one ``tenants.create`` operation per tenant in the database);
- endpoints at 10, 100, 1,000 and 10,000 in one tenant: ``GET /tenants/<t>/endpoints`` as alice and the
  tenant's console page as alice.

Objects are made fast with the platform identity, not through the API: tenant namespaces (labelled
as provisioning labels them, with the scope annotation) and, for the endpoint tenant, its Role,
RoleBinding and ResourceQuota; the InferenceEndpoint CRs at 0 replicas naming a serving template that
does not exist, so that a controller running on the shared platform renders nothing for them (it only
notes the missing template). Operation rows go straight into the benchmark's own SQLite database.
Everything is deleted at the end, and the 10,000 CRs as soon as their size is measured; the run waits
until the namespaces are gone, and a run first removes (and waits out) what an earlier one left, so
that no run measures beside the namespace controller deleting a thousand namespaces.

It prints a table, writes the curves to docs/scale-curves.png (``--plot``) and exits non-zero when
a curve's largest/smallest p50 exceeds ``--target`` (1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_WORKDIR = Path(tempfile.mkdtemp(prefix="imm-bench-scale-"))
os.environ["DJANGO_SETTINGS_MODULE"] = "inferencemgmt.settings"
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ["DATABASE_URL"] = f"sqlite:///{_WORKDIR / 'db.sqlite3'}"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from inferencemgmt.auth.identity import SESSION_KEY  # noqa: E402
from inferencemgmt.operations.models import Operation  # noqa: E402
from tenants import manifests  # noqa: E402
from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body  # noqa: E402

# Names sort first ("a..."), so a page starts at the benchmark's live tenants and not at another
# run's tenants still terminating (deleting 1,000 namespaces takes the namespace controller minutes).
PREFIX = f"a0sc{uuid.uuid4().hex[:4]}"
#: Any run's benchmark namespace (the tenants, and the endpoints' tenant ``-ep``), this one's or an
#: earlier, interrupted or still terminating one.
BENCH_TENANT = re.compile(r"a0sc[0-9a-f]{4}-(t\d{5}|ep)")
GONE_TIMEOUT_SECONDS = 900.0
#: A template no cluster has: a controller on the shared platform renders nothing for these CRs.
NO_TEMPLATE = "bench-no-such-template"
THREADS = 8


def token(user: str) -> str:
    out = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "devstack.token", user], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def browser(username: str, groups: list[str]) -> Client:
    """A console session as the OIDC login would have stored it."""
    session_client = Client()
    user, _ = get_user_model().objects.get_or_create(username=username)
    session_client.force_login(user)
    session = session_client.session
    session[SESSION_KEY] = {"username": username, "groups": groups}
    session.save()
    return session_client


def p50(samples: int, call: Callable[[], Any]) -> float:
    call()  # warm once, outside the figure
    seconds = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def ok(response: Any) -> Any:
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    return response


def parallel(function: Callable[[int], Any], indexes: range) -> None:
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(function, indexes))


class Objects:
    """What the benchmark makes, made and removed with the platform identity."""

    def __init__(self, admin: client.ApiClient) -> None:
        self.admin = admin
        self.core = client.CoreV1Api(admin)
        self.tenants: list[str] = []

    def add_tenants(self, total: int) -> None:
        start = len(self.tenants)

        def one(index: int) -> None:
            name = f"{PREFIX}-t{index:05d}"
            scope = ["team-a"] if index % 10 == 0 else ["team-bench"]
            self.core.create_namespace(manifests.namespace(name, scope, {}, "benchmark", "platform_admin"))
            Operation.objects.create(
                kind="tenants.create",
                target=name,
                state=Operation.State.SUCCEEDED,
                requested_by="admin@example.com",
                requested_identity={"username": "admin@example.com", "groups": ["admin"]},
            )

        parallel(one, range(start, total))
        self.tenants.extend(f"{PREFIX}-t{index:05d}" for index in range(start, total))

    def settle(self, timeout: float = 300) -> float:
        """Wait until the controller manager has done its per-namespace work for every benchmark tenant.

        A new namespace gets a ``default`` ServiceAccount and a ``kube-root-ca.crt`` ConfigMap from the
        controller manager, two writes each, so 1,000 new namespaces keep the API server busy for
        seconds after their creates return. Measuring in that churn timed the churn (a step of about
        85 ms that landed on whichever size was being measured). Returns the seconds waited.
        """
        started = time.monotonic()
        wanted = set(self.tenants)
        while True:
            found = {
                (kind, item.metadata.namespace)
                for kind, items in (
                    (
                        "cm",
                        self.core.list_config_map_for_all_namespaces(field_selector="metadata.name=kube-root-ca.crt"),
                    ),
                    ("sa", self.core.list_service_account_for_all_namespaces(field_selector="metadata.name=default")),
                )
                for item in items.items
                if str(item.metadata.namespace) in wanted
            }
            if len(found) == 2 * len(wanted):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the controller manager had not settled the benchmark namespaces in {timeout:.0f} s")
            time.sleep(0.5)

    def endpoint_tenant(self) -> str:
        name = f"{PREFIX}-ep"
        rbac = client.RbacAuthorizationV1Api(self.admin)
        self.core.create_namespace(manifests.namespace(name, ["team-a"], {}, "benchmark", "platform_admin"))
        self.tenants.append(name)
        rbac.create_namespaced_role(name, manifests.role(name))
        rbac.create_namespaced_role_binding(name, manifests.role_binding(name, ["team-a"]))
        self.core.create_namespaced_resource_quota(name, manifests.resource_quota(name, {"maxEndpoints": 20_000}))
        deadline = time.monotonic() + 60
        while not (self.core.read_namespaced_resource_quota(name, name).status.hard or {}):
            if time.monotonic() > deadline:
                raise SystemExit(f"the quota controller did not count {name} within 60 s")
            time.sleep(0.2)
        return name

    def add_endpoints(self, tenant: str, start: int, total: int) -> None:
        custom = client.CustomObjectsApi(self.admin)

        def one(index: int) -> None:
            body = endpoint_body(f"ep{index:05d}", replicas=0, servingName=NO_TEMPLATE)
            custom.create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, body)

        parallel(one, range(start, total))

    def remove_endpoints(self, tenant: str) -> None:
        """All of the tenant's CRs in one collection delete, waited for (the shared etcd gets them back).

        With 10,000 the API server's request times out (504) while the deletion goes on: then wait."""
        custom = client.CustomObjectsApi(self.admin)
        try:
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL)
        except ApiException as exc:
            if exc.status not in (500, 503, 504):
                raise
            print(f"the collection delete answered {exc.status}; the API server goes on deleting", flush=True)
        deadline = time.monotonic() + 600
        while custom.list_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, limit=1)["items"]:
            if time.monotonic() > deadline:
                print(f"warning: {tenant} still has endpoints after 10 min; its namespace deletion will take them")
                return
            time.sleep(1)

    def bench_namespaces(self) -> set[str]:
        """Every benchmark tenant namespace the cluster still holds (of any run), terminating or not."""
        found: set[str] = set()
        token: str | None = None
        while True:
            page = self.core.list_namespace(label_selector="created_by=platform_admin", limit=500, _continue=token)
            found.update(item.metadata.name for item in page.items if BENCH_TENANT.fullmatch(item.metadata.name))
            token = page.metadata.var_continue
            if not token:
                return found

    def wait_gone(self, names: set[str], what: str) -> None:
        """Wait (printing progress) until none of ``names`` exists: a run measured beside the namespace
        controller deleting a thousand namespaces measures that controller's load, not the routes."""
        began = time.monotonic()
        left = names & self.bench_namespaces()
        while left:
            waited = time.monotonic() - began
            if waited > GONE_TIMEOUT_SECONDS:
                print(f"warning: {len(left)} {what} still terminating after {waited:.0f} s", flush=True)
                return
            print(f"waiting for {len(left)} {what} to be gone ({waited:.0f} s)", flush=True)
            time.sleep(15)
            left &= self.bench_namespaces()
        print(f"{len(names)} {what} gone after {time.monotonic() - began:.0f} s", flush=True)

    def remove_earlier_runs(self) -> None:
        """Delete what an earlier run left (an interrupted run leaves namespaces that are not even
        terminating) and wait for it to go, so that this run measures on a quiet cluster. Two runs at
        once on one cluster would measure each other anyway: a second run removes the first one's."""
        earlier = self.bench_namespaces()
        if earlier:
            self.remove(earlier)
            self.wait_gone(earlier, "namespaces of an earlier run")

    def remove_all(self) -> None:
        self.remove(set(self.tenants))

    def remove(self, names: set[str]) -> None:
        def one(name: str) -> None:
            try:
                self.core.delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    print(f"warning: could not delete namespace {name}: {exc.status}")

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            list(pool.map(one, sorted(names)))


def tenant_curves(objects: Objects, sizes: list[int], samples: int, page: int) -> dict[str, dict[int, float]]:
    api = Client()
    admin_headers = {"HTTP_AUTHORIZATION": f"Bearer {token('admin')}"}
    alice_headers = {"HTTP_AUTHORIZATION": f"Bearer {token('alice')}"}
    console = browser("admin@example.com", ["admin"])
    routes: dict[str, Callable[[], Any]] = {
        "GET /tenants (admin)": lambda: ok(api.get(f"/tenants?limit={page}", **admin_headers)),
        "GET /tenants (member)": lambda: ok(api.get(f"/tenants?limit={page}", **alice_headers)),
        "console dashboard (admin)": lambda: ok(console.get(f"/console/?limit={page}")),
        "GET /tasks (admin)": lambda: ok(api.get(f"/tasks?limit={page}", **admin_headers)),
        "console tasks page (admin)": lambda: ok(console.get(f"/console/tasks/?limit={page}")),
    }
    curves: dict[str, dict[int, float]] = {label: {} for label in routes}
    for size in sizes:
        started = time.perf_counter()
        objects.add_tenants(size)
        added = time.perf_counter() - started
        waited = objects.settle()
        print(f"{size} benchmark tenants ready ({added:.1f} s to add, {waited:.1f} s to settle)", flush=True)
        for label, call in routes.items():
            curves[label][size] = p50(samples, call)
            print(f"  {label:<28} p50 {curves[label][size] * 1000:8.1f} ms", flush=True)
    return curves


def endpoint_curves(objects: Objects, sizes: list[int], samples: int, page: int) -> dict[str, dict[int, float]]:
    api = Client()
    alice_headers = {"HTTP_AUTHORIZATION": f"Bearer {token('alice')}"}
    console = browser("alice@example.com", ["team-a"])
    tenant = objects.endpoint_tenant()
    routes: dict[str, Callable[[], Any]] = {
        "GET /tenants/<t>/endpoints": lambda: ok(api.get(f"/tenants/{tenant}/endpoints?limit={page}", **alice_headers)),
        "console tenant page": lambda: ok(console.get(f"/console/tenants/{tenant}/?limit={page}")),
    }
    curves: dict[str, dict[int, float]] = {label: {} for label in routes}
    made = 0
    try:
        for size in sizes:
            started = time.perf_counter()
            objects.add_endpoints(tenant, made, size)
            made = size
            print(f"{size} endpoints ready ({time.perf_counter() - started:.1f} s to add)", flush=True)
            for label, call in routes.items():
                curves[label][size] = p50(samples, call)
                print(f"  {label:<28} p50 {curves[label][size] * 1000:8.1f} ms", flush=True)
    finally:
        started = time.perf_counter()
        objects.remove_endpoints(tenant)
        print(f"{made} endpoints deleted ({time.perf_counter() - started:.1f} s)", flush=True)
    return curves


def table(curves: dict[str, dict[int, float]], target: float) -> tuple[str, bool]:
    lines = ["| route | p50 of one page, by size | largest / smallest |", "|---|---|---|"]
    flat = True
    for label, points in curves.items():
        sizes = sorted(points)
        ratio = points[sizes[-1]] / points[sizes[0]]
        flat = flat and ratio <= target
        cells = ", ".join(f"{size:,}: {points[size] * 1000:.1f} ms" for size in sizes)
        lines.append(f"| {label} | {cells} | {ratio:.2f} |")
    return "\n".join(lines), flat


def plot(panels: dict[str, dict[str, dict[int, float]]], path: Path, page: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = {title: curves for title, curves in panels.items() if curves}
    figure, axes_row = plt.subplots(1, len(shown), figsize=(6 * len(shown), 5), squeeze=False)
    for axes, (title, curves) in zip(axes_row[0], shown.items(), strict=True):
        for label, points in curves.items():
            sizes = sorted(points)
            axes.plot(sizes, [points[size] * 1000 for size in sizes], marker="o", label=label)
        axes.set_xscale("log")
        axes.set_xlabel(title)
        axes.set_ylabel(f"p50 of one page of {page} items (ms)")
        axes.set_ylim(bottom=0)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8, loc="lower right")
    figure.suptitle("One page of each list as the total grows (benchmarks/scale_curves.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", default="10,100,1000")
    parser.add_argument("--endpoints", default="10,100,1000,10000")
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument(
        "--page", type=int, default=10, help="items per page asked of every list (?limit=): the smallest size"
    )
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scale-curves.png")
    parser.add_argument("--save", type=Path, help="write this run's points as JSON")
    parser.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="points of an earlier run (--save) to plot and tabulate with this one's (this run's win)",
    )
    args = parser.parse_args()
    tenant_sizes = [int(size) for size in args.tenants.split(",") if size]
    endpoint_sizes = [int(size) for size in args.endpoints.split(",") if size]

    setup_test_environment()
    call_command("migrate", verbosity=0)
    admin = config.new_client_from_config(os.environ["KUBECONFIG"])
    objects = Objects(admin)
    objects.remove_earlier_runs()
    panels: dict[str, dict[str, dict[int, float]]] = {"benchmark tenants": {}, "endpoints in the tenant": {}}
    try:
        if endpoint_sizes:
            panels["endpoints in the tenant"] = endpoint_curves(objects, endpoint_sizes, args.samples, args.page)
        if tenant_sizes:
            panels["benchmark tenants"] = tenant_curves(objects, tenant_sizes, args.samples, args.page)
    finally:
        objects.remove_all()
        objects.wait_gone(set(objects.tenants), "benchmark namespaces")
    if args.save:
        args.save.write_text(json.dumps(panels, indent=1) + "\n")
    for earlier in args.merge:
        for title, curves in json.loads(earlier.read_text()).items():
            for label, points in curves.items():
                merged = {int(size): float(value) for size, value in points.items()}
                panels.setdefault(title, {}).setdefault(label, {})
                panels[title][label] = {**merged, **panels[title][label]}
    text, flat = table({**panels["benchmark tenants"], **panels["endpoints in the tenant"]}, args.target)
    print(text)
    if args.plot:
        plot(panels, args.plot, args.page)
    if not flat:
        raise SystemExit(f"a curve's largest/smallest p50 is over {args.target}")


if __name__ == "__main__":
    main()
