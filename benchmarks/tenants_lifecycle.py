# The generated Kubernetes models are typed with Optional fields; this script passes dicts.
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""Tenant create and delete latency through the API, against the same raw calls made directly.

Usage (with the devstack's env sourced):

    python benchmarks/tenants_lifecycle.py [--tenants 20]

For each of ``--tenants`` rounds, taking turns so both see the same machine load:

- API: ``POST /tenants`` as admin (token check, validation, the Operation row, the Celery hand-off to
  a real worker, the eleven-step saga as the admin through impersonation, the synchronous wait), then
  ``DELETE /tenants/<name>`` (endpoints, host claims, namespace deletion waited for, identity, uploads,
  objects, bucket).
- raw: the same calls (``Raw``: the same objects from ``tenants.manifests``, the same identity and key
  calls), made straight from this process as the same user (the management API's kubeconfig
  impersonating the admin, boto3 with the platform's key), waiting for the namespace to go.

It prints p50 / p95 of each and the ratio API / raw: the price of the saga's bookkeeping (the Operation
row, a progress write per step), the queue hop and the route. The raw calls were taken as the cluster's
administrator before 2026-12-06 (no escalation check, about 0.3 s less) and without the identity calls
and the robot Roles; the figures in the README say which. The worker and the database are the
benchmark's own (a temporary SQLite file, Redis database 12), so nothing else on the machine takes its
tasks.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BROKER_DB = 12
_WORKDIR = Path(tempfile.mkdtemp(prefix="imm-bench-tenants-"))
os.environ["DJANGO_SETTINGS_MODULE"] = "inferencemgmt.settings"
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ["DATABASE_URL"] = f"sqlite:///{_WORKDIR / 'db.sqlite3'}"
os.environ["REDIS_URL"] = os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{BROKER_DB}"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from endpoints import hosts  # noqa: E402
from inferencemgmt import objectstore  # noqa: E402
from tenants import manifests  # noqa: E402
from tests.certificates import ca_certificate_pem  # noqa: E402
from tests.platform_admin import admin_iam_client, admin_s3_client, token_claims  # noqa: E402


def certificate() -> str:
    return base64.b64encode(ca_certificate_pem("bench-ca")).decode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Raw:
    """The saga's calls, made directly as the same user: the floor the API is compared with.

    The same Kubernetes writes and reads as ``tenants.provisioning`` (namespace, three Secrets after
    reading the platform's TLS Secret, ResourceQuota, the tenant Role and the two robot Roles,
    RoleBinding, NetworkPolicy; deletion: the endpoints collection, the host-claim Leases, the
    namespace waited for), the same object-store calls (bucket; the tenant's IAM user, its policy, its
    keys listed and one made; deletion: keys, policy and user, uploads, objects, bucket), with the
    management API's kubeconfig impersonating the admin, as the API sends them. The user matters:
    the cluster's own administrator skips RBAC's escalation check, which for the admin lists
    bindings with a consistent read and costs about 100 ms per Role or RoleBinding on this API server.
    """

    def __init__(self, cert: str, admin: dict[str, Any]) -> None:
        api = config.new_client_from_config(os.environ["IMM_KUBECONFIG"])
        api.set_default_header("Impersonate-User", admin["email"])
        groups = list(admin.get("groups") or [])
        if len(groups) != 1:  # the SDK's default headers hold one value per name
            raise SystemExit(f"the raw calls expect the admin in one group, not {groups}")
        api.set_default_header("Impersonate-Group", groups[0])
        self.service = client.CoreV1Api(config.new_client_from_config(os.environ["IMM_KUBECONFIG"]))
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(self.service.api_client)
        self.s3 = admin_s3_client(os.environ)
        self.iam = admin_iam_client(os.environ)
        self.cert = cert

    def create(self, name: str) -> None:
        quota = {"requests.cpu": "2", "maxEndpoints": 3}
        self.core.create_namespace(manifests.namespace(name, ["team-a"], quota, "bench", "platform_admin"))
        self.s3.create_bucket(Bucket=name)
        user = objectstore.tenant_identity_name(name)
        self.iam.create_user(UserName=user)
        self.iam.put_user_policy(
            UserName=user,
            PolicyName=objectstore.TENANT_POLICY_NAME,
            PolicyDocument=json.dumps(objectstore.tenant_policy(name)),
        )
        self.core.create_namespaced_secret(name, manifests.ca_secret(name, self.cert))
        self.iam.list_access_keys(UserName=user)
        key = self.iam.create_access_key(UserName=user)["AccessKey"]
        self.core.create_namespaced_secret(
            name,
            manifests.store_secret(
                name,
                access_key=key["AccessKeyId"],
                secret_key=key["SecretAccessKey"],
                endpoint_url=os.environ["S3_ENDPOINT_URL"],
                region=os.environ["S3_REGION"],
            ),
        )
        tls = self.service.read_namespaced_secret("tls-secret", "imm-system")
        self.core.create_namespaced_secret(name, manifests.tls_secret(name, {"type": tls.type, "data": tls.data}))
        self.core.create_namespaced_resource_quota(name, manifests.resource_quota(name, quota))
        self.rbac.create_namespaced_role(name, manifests.role(name))
        for body in manifests.robot_roles(name):
            self.rbac.create_namespaced_role(name, body)
        self.rbac.create_namespaced_role_binding(name, manifests.role_binding(name, ["team-a"]))
        self.net.create_namespaced_network_policy(name, manifests.network_policy(name, "ingress-nginx"))

    def delete(self, name: str) -> None:
        self.custom.delete_collection_namespaced_custom_object("ai.intel.com", "v1", name, "inference-endpoints")
        self.coordination.delete_collection_namespaced_lease(
            "imm-system", label_selector=f"{hosts.CLAIM_LABEL}=true,{hosts.TENANT_LABEL}={name}"
        )
        self.core.delete_namespace(name)
        while True:
            try:
                self.core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(1.0)  # the same poll interval as the saga's
        user = objectstore.tenant_identity_name(name)
        for item in self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            self.iam.delete_access_key(UserName=user, AccessKeyId=item["AccessKeyId"])
        self.iam.delete_user_policy(UserName=user, PolicyName=objectstore.TENANT_POLICY_NAME)
        self.iam.delete_user(UserName=user)
        self.s3.list_multipart_uploads(Bucket=name)
        self.s3.list_objects_v2(Bucket=name)
        self.s3.delete_bucket(Bucket=name)


def token(user: str) -> str:
    done = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "devstack.token", user], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "celery", "-A", "inferencemgmt", "worker", "--pool=solo",
         "-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=dict(os.environ), stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=20)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    worker = start_worker(_WORKDIR / "worker.log")
    cert = certificate()
    bearer = token("admin")
    raw = Raw(cert, token_claims(bearer))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {bearer}", HTTP_HOST="localhost")
    seconds: dict[str, list[float]] = {"api create": [], "api delete": [], "raw create": [], "raw delete": []}

    def timed(label: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = call()
        seconds[label].append(time.perf_counter() - start)
        return result

    try:
        for round_number in range(args.tenants):
            name = f"bench-{uuid.uuid4().hex[:8]}"
            body = {"name": name, "cert": cert, "scope": "team-a", "quota": {"requests.cpu": "2", "maxEndpoints": 3}}
            payload = json.dumps(body)
            created = timed("api create", lambda: api.post("/tenants", payload, content_type="application/json"))  # noqa: B023
            if created.status_code != 200:
                print(f"create failed: {created.status_code} {created.content[:300]!r}", file=sys.stderr)
                return 1
            deleted = timed("api delete", lambda: api.delete(f"/tenants/{name}"))  # noqa: B023
            if deleted.status_code != 200:
                print(f"delete failed: {deleted.status_code} {deleted.content[:300]!r}", file=sys.stderr)
                return 1
            other = f"bench-{uuid.uuid4().hex[:8]}"
            timed("raw create", lambda: raw.create(other))  # noqa: B023
            timed("raw delete", lambda: raw.delete(other))  # noqa: B023
            print(f"round {round_number + 1}/{args.tenants}", file=sys.stderr)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)

    print(f"{'':12} {'p50 s':>8} {'p95 s':>8} {'mean s':>8}")
    for label, values in seconds.items():
        print(
            f"{label:12} {percentile(values, 0.5):8.2f} {percentile(values, 0.95):8.2f} {statistics.mean(values):8.2f}"
        )
    for step in ("create", "delete"):
        ratio = percentile(seconds[f"api {step}"], 0.5) / percentile(seconds[f"raw {step}"], 0.5)
        print(f"{step}: API / raw (p50) = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
