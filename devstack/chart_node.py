"""`make helm-e2e`: the Helm chart installed with the product's own image onto the devstack's REAL node.

What kwok cannot prove, this does: the image built by devstack.images.product (the Dockerfile's
build, from the local Debian base) runs as the chart ships it (read-only root filesystem, non-root
user, every capability dropped), the probes answer on the right port, the migration hook Job
migrates, and a request flow goes through the in-cluster API: a tenant created by the admin, a
model uploaded by alice, an endpoint created and its console page rendered after a real OIDC login.
Then an upgrade to a second image tag with a changed setting rolls out, and `helm uninstall` leaves
nothing but the CRD.

The release lives in a namespace of its own, with a database of its own (created in the devstack's
PostgreSQL, dropped at the end) and a Redis database number of its own, so the devstack's own
product processes and other engineers' tests are not disturbed. Pods on the real node reach this
host at the bridge address (10.87.0.1) only, while the devstack's PostgreSQL, Redis and Dex listen
on loopback; for the run's duration this module therefore relays PostgreSQL and Redis from the
bridge address to loopback, and runs a second Dex (same directory, same clients) whose issuer is on
the bridge address, so that the pods and this host see the same issuer URL. Nothing of the shared
devstack is restarted or reconfigured.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import secrets
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack import chart, chart_e2e, idp, images, pki, realnode
from devstack.build import go_binary
from devstack.layout import CHART, PORTS
from devstack.proc import StackError, say

# The product image's name in the node's containerd: a registry name no registry serves (the
# chart's global.imageRegistry), outside the devstack's own `imm.local/devstack/` images, which
# `devstack up` prunes.
REGISTRY = "imm.local"
REPOSITORY = "imm"
REAL_NODE_LABEL = {realnode.PLACEMENT_KEY: "true"}
REAL_NODE_TOLERATION = {"key": realnode.PLACEMENT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
COMPONENTS = ("api", "worker", "beat", "controller")
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: pods have no cluster DNS here


# --- relays and a Dex the pods can reach --------------------------------------------------------------


class Relay:
    """TCP from NODE_IP:<free port> to 127.0.0.1:<target>, in a thread, for the run's duration."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.server = socket.create_server((realnode.NODE_IP, 0))
        self.port: int = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"relay-{target}")
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.5)
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(timeout=5)


@dataclass
class NodeDex:
    """A Dex for the run whose issuer is on the bridge address; the directory and clients are the devstack's."""

    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"https://{realnode.NODE_IP}:{self.port}/dex"

    def start(self, redirect_uris: list[str]) -> None:
        with socket.create_server((realnode.NODE_IP, 0)) as probe:
            self.port = probe.getsockname()[1]
        tls = pki.issue("dex-real-node", "dex", hosts=(realnode.NODE_IP,), server=True)
        config = idp.dex_config()
        config["issuer"] = self.issuer
        config["web"] = {"https": f"{realnode.NODE_IP}:{self.port}", "tlsCert": str(tls.cert), "tlsKey": str(tls.key)}
        config["storage"] = {"type": "sqlite3", "config": {"file": str(self.workdir / "dex.db")}}
        api_client = next(c for c in config["staticClients"] if c["id"] == idp.API_CLIENT_ID)
        api_client["redirectURIs"] = [*api_client["redirectURIs"], *redirect_uris]
        path = self.workdir / "dex.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        dex = go_binary("dex", "github.com/dexidp/dex/cmd/dex", "dex")
        log = (self.workdir / "dex.log").open("wb")
        self.process = subprocess.Popen([str(dex), "serve", str(path)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                discovery = _https_json(f"{self.issuer}/.well-known/openid-configuration")
                if discovery.get("issuer") == self.issuer:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise StackError(f"the real node's Dex did not start; see {self.workdir / 'dex.log'}")

    def token(self, user: str) -> str:
        """An id_token of a directory user by the password grant (as devstack.token does)."""
        form = {
            "grant_type": "password",
            "username": user,
            "password": idp.demo_password(user),
            "scope": " ".join(idp.SCOPES),
        }
        basic = f"{idp.API_CLIENT_ID}:{idp.secrets_file()['api_client_secret']}".encode()
        request = urllib.request.Request(
            f"{self.issuer}/token",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": "Basic " + base64.b64encode(basic).decode(), "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, context=_ca_context(), timeout=15) as response:
            return str(json.load(response)["id_token"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _ca_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(idp.ca_file()))


def _https_json(url: str) -> Any:
    with urllib.request.urlopen(url, context=_ca_context(), timeout=3) as response:
        return json.load(response)


# --- the image on the node ------------------------------------------------------------------------------


def import_product_image(image: images.Image, tags: list[str]) -> list[str]:
    """Import the product image into the real node's containerd as imm.local/imm:<key> plus `tags`."""
    ctr = realnode.ctr()
    base = f"{REGISTRY}/{REPOSITORY}"
    listed = subprocess.run([*ctr, "images", "list", "-q"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise StackError(f"the real node's containerd: {listed.stderr.strip()}")
    present = listed.stdout.split()
    # Earlier builds of the product (another commit) only take the node's disk: drop them.
    stale = [
        ref
        for ref in present
        if re.fullmatch(rf"{re.escape(base)}:[0-9a-f]{{16}}", ref) and ref != f"{base}:{image.key}"
    ]
    if stale:
        subprocess.run([*ctr, "images", "rm", *stale], capture_output=True, check=False)
    if f"{base}:{image.key}" not in present:
        began = time.monotonic()
        result = subprocess.run(
            [*ctr, "images", "import", "--base-name", base, str(image.archive)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise StackError(f"import of {image.archive}: {result.stderr.strip()}")
        say(f"image {base}:{image.key} imported into the real node in {time.monotonic() - began:.0f}s")
    for tag in tags:
        subprocess.run([*ctr, "images", "tag", "--force", f"{base}:{image.key}", f"{base}:{tag}"], check=True,
                       capture_output=True)  # fmt: skip
    return [f"{base}:{tag}" for tag in tags]


def remove_image_tags(refs: list[str]) -> None:
    subprocess.run([*realnode.ctr(), "images", "rm", *refs], capture_output=True, check=False)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class NodeReport:
    namespace: str
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok


def node_values(devstack: dict[str, str], tag: str, issuer: str, database_url_secret: str) -> dict[str, Any]:
    """Chart values for the real node: the e2e values, the image by the one registry value, placement."""
    values = chart_e2e.e2e_values(devstack, "admin")
    placement = {"nodeSelector": REAL_NODE_LABEL, "tolerations": [REAL_NODE_TOLERATION]}
    values.update(
        {
            "global": {"imageRegistry": REGISTRY},
            "image": {"repository": REPOSITORY, "tag": tag, "pullPolicy": "IfNotPresent"},
            "servingImages": serving_images(devstack),
            "ingress": {"enabled": False},
            "kubernetes": {"server": f"https://{KUBERNETES_SERVICE_IP}"},
            "api": {**placement, "replicas": 2, "workers": 1, "threads": 4},
            "worker": {**placement, "concurrency": 1},
            "beat": dict(placement),
            "controller": {**placement, "replicas": 1},
            "migrations": dict(placement),
            "inferenceTlsSecret": "tls-secret",
        }
    )
    values["objectStore"]["endpointUrl"] = devstack["IMM_DEVSTACK_S3_CLUSTER_URL"]
    values["objectStore"]["servingEndpointUrl"] = devstack["IMM_DEVSTACK_S3_CLUSTER_URL"]
    values["oidc"]["issuer"] = issuer
    values["database"] = {"url": {"existingSecret": database_url_secret}}
    return values


def serving_images(devstack: dict[str, str]) -> dict[str, str]:
    """The devstack's serving runtime builds (its SERVING_IMAGES) as chart values: without the registry,
    which the chart puts back in front. Without them the release's controller would render the
    templates' default images (`imm.local/nvidia/tritonserver:...`), which no registry serves."""
    prefix = f"{REGISTRY}/"
    built = json.loads(devstack.get("SERVING_IMAGES") or "{}")
    images = {serving: str(ref).removeprefix(prefix) for serving, ref in built.items() if str(ref).startswith(prefix)}
    if "triton" not in images:
        raise StackError(f"the devstack's SERVING_IMAGES names no triton build under {prefix}: {built}")
    return images


def _psql(database_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(statement)


def _with_host(url: str, host: str, port: int, path: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{host}:{port}" if "@" in parts.netloc else f"{host}:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, path=parts.path if path is None else path))


def e2e_real_node(devstack: dict[str, str], keep: bool = False, inference: bool = True) -> NodeReport:
    """Install, exercise, upgrade and uninstall the chart on the real node; return what was seen.

    `inference`: also wait for the endpoint's Triton pod, rendered by the release's controller, to
    answer an inference (on by default; 17-28 s, and 5 s more to delete the tenant). Off only to save
    that time: the release's controller reconciles every endpoint of the cluster, so on a shared
    devstack crowded with other sessions' endpoints ours can wait minutes in its queue."""
    from kubernetes import client, dynamic

    if not devstack.get("IMM_DEVSTACK_REAL_NODE_NAME"):
        raise StackError("helm-e2e needs the real node: start the devstack with IMM_DEVSTACK_REAL_NODE=1")
    began = time.monotonic()
    suffix = secrets.token_hex(3)
    namespace = release = f"imm-node-e2e-{suffix}"
    report = NodeReport(namespace)
    helm = chart.Helm(chart.helm_binary(), devstack.get("KUBECONFIG") or chart.admin_kubeconfig())
    api_client = chart._api_client(helm.kubeconfig)
    api = dynamic.DynamicClient(api_client)
    core = client.CoreV1Api(api_client)
    work = Path(tempfile.mkdtemp(prefix="imm-node-e2e-"))
    step = time.monotonic()
    image = images.product()
    first, second = f"e2e-{suffix}-1", f"e2e-{suffix}-2"
    refs = import_product_image(image, [first, second])
    digests = image_digests(image)
    report.timings["image"] = time.monotonic() - step
    database = f"imm_e2e_{suffix}"
    admin_db = devstack["IMM_DEVSTACK_DATABASE_URL"]
    relays = [Relay(PORTS.postgres), Relay(PORTS.redis)]
    dex = NodeDex(work)
    installed = False
    tenant = f"node-e2e-{suffix}"
    try:
        _psql(admin_db, f'CREATE DATABASE "{database}"')
        pods_db = _with_host(admin_db, realnode.NODE_IP, relays[0].port, f"/{database}")
        pods_redis = _with_host(devstack["REDIS_URL"], realnode.NODE_IP, relays[1].port, "/7")
        dex.start(["http://localhost/oidc/callback/"])
        values_file = work / "values.yaml"
        values_file.write_text(yaml.safe_dump(node_values(devstack, first, dex.issuer, "imm-database")))
        env = {**devstack, "REDIS_URL": pods_redis, "IMM_DEVSTACK_DATABASE_URL": pods_db}
        for manifest in chart_e2e._e2e_prerequisites(namespace, env):
            resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
            resource.create(body=manifest, namespace=manifest["metadata"].get("namespace"))
        source = core.read_namespaced_secret("tls-secret", "imm-system")
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name="tls-secret"), type=source.type, data=source.data),
        )

        step = time.monotonic()
        helm.run(
            "install", release, str(CHART), f"--namespace={namespace}", f"--values={values_file}",
            "--wait", "--timeout=480s", timeout=540,
        )  # fmt: skip
        installed = True
        report.timings["install"] = time.monotonic() - step
        _check_pods(report, core, namespace, release, refs[0], devstack["IMM_DEVSTACK_REAL_NODE_NAME"], digests)
        _check_migrated(report, _with_host(admin_db, "127.0.0.1", PORTS.postgres, f"/{database}"))

        step = time.monotonic()
        service = core.read_namespaced_service(release, namespace)
        base_url = f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"
        endpoint_created = _flow(report, base_url, dex, tenant)
        report.timings["flow"] = time.monotonic() - step
        if inference and endpoint_created:
            step = time.monotonic()
            _inference(report, core, tenant, namespace, release, f"{REGISTRY}/{serving_images(devstack)['triton']}")
            report.timings["inference"] = time.monotonic() - step
        # Started now, so that the namespace's slow removal overlaps the upgrade; followed after it.
        step = time.monotonic()
        task_url = _start_tenant_deletion(report, base_url, dex, tenant)
        report.timings["deletion"] = time.monotonic() - step

        step = time.monotonic()
        helm.run(
            "upgrade", release, str(CHART), f"--namespace={namespace}", f"--values={values_file}",
            f"--set=image.tag={second}", "--set=django.logLevel=DEBUG", "--wait", "--timeout=480s", timeout=540,
        )  # fmt: skip
        # `helm upgrade --wait` returns once the new pods are ready, before the old ReplicaSets are
        # scaled down: the roll is finished when no pod of the first image is left.
        _wait_rolled_out(client.AppsV1Api(api_client), namespace, release)
        report.timings["upgrade"] = time.monotonic() - step
        _check_pods(report, core, namespace, release, refs[1], devstack["IMM_DEVSTACK_REAL_NODE_NAME"], digests)
        for name in (f"{release}-{component}" for component in COMPONENTS):
            deployment = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
            status = deployment.status
            report.expect(
                status.observed_generation == deployment.metadata.generation
                and status.updated_replicas == deployment.spec.replicas == status.ready_replicas,
                f"{name}: the upgrade did not roll out ({status.updated_replicas}/{deployment.spec.replicas} updated)",
            )
            env_values = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
            report.expect(env_values.get("DJANGO_LOG_LEVEL") == "DEBUG", f"{name}: DJANGO_LOG_LEVEL not DEBUG")
        if task_url is not None:
            step = time.monotonic()
            _finish_tenant_deletion(report, base_url, dex, tenant, task_url)
            report.timings["deletion"] += time.monotonic() - step  # what was left of it after the upgrade

        step = time.monotonic()
        helm.run("uninstall", release, f"--namespace={namespace}", "--wait", "--timeout=180s", timeout=240)
        installed = False
        deadline = time.monotonic() + 120
        while (left := chart_e2e._leftovers(api, release, namespace)) and time.monotonic() < deadline:
            time.sleep(2)
        report.timings["uninstall"] = time.monotonic() - step
        report.expect(not left, f"helm uninstall left behind: {left}")
        crd = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
        report.expect(crd.get(name=chart.CRD_NAME).metadata.name == chart.CRD_NAME, "the CRD must survive")
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                core.delete_namespace(tenant)
            with contextlib.suppress(Exception):
                _remove_bucket(devstack, tenant)
            if installed:
                helm.run("uninstall", release, f"--namespace={namespace}", "--wait", check=False, timeout=240)
            with contextlib.suppress(Exception):
                chart_e2e._cleanup(api, release, namespace)
            dex.stop()
            for relay in relays:
                relay.close()
            with contextlib.suppress(Exception):
                _psql(admin_db, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            remove_image_tags(refs)
            shutil.rmtree(helm.home, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        report.timings["total"] = time.monotonic() - began
    return report


def _remove_bucket(devstack: dict[str, str], bucket: str) -> None:
    """The tenant's bucket, when the run stopped before the admin's DELETE /tenants removed it."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=devstack["S3_ENDPOINT_URL"],
        aws_access_key_id=devstack["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=devstack["S3_SECRET_ACCESS_KEY"],
        region_name=devstack.get("S3_REGION", "us-east-1"),
    )
    if not any(item["Name"] == bucket for item in s3.list_buckets()["Buckets"]):
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=bucket)


def _container_processes() -> dict[str, int]:
    """containerd task id -> host PID of the real node's running containers."""
    listed = subprocess.run([*realnode.ctr(), "tasks", "list"], capture_output=True, text=True, check=False)
    found = {}
    for line in listed.stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 3 and words[2] == "RUNNING":
            found[words[0]] = int(words[1])
    return found


def image_digests(image: images.Image) -> set[str]:
    """The image's manifest and config digests (a container's imageID names one of them)."""
    with tarfile.open(image.archive) as archive:
        manifest_digest = json.loads(images.blob_of(archive, "./index.json"))["manifests"][0]["digest"]
        manifest = json.loads(images.blob_of(archive, f"./blobs/sha256/{manifest_digest.removeprefix('sha256:')}"))
    return {manifest_digest, manifest["config"]["digest"]}


def _check_pods(
    report: NodeReport, core: Any, namespace: str, release: str, image_ref: str, node: str, digests: set[str]
) -> None:
    """Every product pod Running and Ready on the real node, from the expected image, and its process
    as the kernel sees it: uid 10001, no effective capability, a read-only root mount."""
    pods = [
        pod
        for pod in core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={release}").items
        if pod.metadata.deletion_timestamp is None and pod.status.phase != "Succeeded"
    ]
    by_component: dict[str, int] = {}
    processes = _container_processes()
    for pod in pods:
        component = pod.metadata.labels.get("app.kubernetes.io/component", "?")
        by_component[component] = by_component.get(component, 0) + 1
        where = f"pod {pod.metadata.name}"
        report.expect(pod.spec.node_name == node, f"{where} is on {pod.spec.node_name}, not the real node")
        report.expect(pod.status.phase == "Running", f"{where} is {pod.status.phase}")
        for status in pod.status.container_statuses or []:
            report.expect(status.ready, f"{where}: container {status.name} not ready")
            # containerd names one tag of a digest in status.image; the digest is what runs.
            report.expect(
                any(digest in (status.image_id or "") for digest in digests), f"{where} runs {status.image_id}"
            )
            pid = processes.get((status.container_id or "").removeprefix("containerd://"))
            if not report.expect(pid is not None, f"{where}: no running process for {status.name}"):
                continue
            proc = Path(f"/proc/{pid}")
            fields = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
            report.expect(fields["Uid"].split()[:2] == ["10001", "10001"], f"{where}: runs as uid {fields['Uid']}")
            report.expect(int(fields["CapEff"].strip(), 16) == 0, f"{where}: effective capabilities {fields['CapEff']}")
            report.expect(int(fields["CapBnd"].strip(), 16) == 0, f"{where}: bounding set {fields['CapBnd']}")
            report.expect(fields["NoNewPrivs"].strip() == "1", f"{where}: may gain privileges")
            root = next(line for line in (proc / "mountinfo").read_text().splitlines() if line.split()[4] == "/")
            report.expect("ro" in root.split()[5].split(","), f"{where}: root filesystem mounted {root.split()[5]}")
        for container in pod.spec.containers:
            report.expect(container.image == image_ref, f"{where}: image {container.image}, not {image_ref}")
            probe = container.readiness_probe
            if component == "api":
                report.expect(
                    probe is not None and probe.http_get.path == "/readyz", f"{where}: readiness probe not /readyz"
                )
    expected = {"api": 2, "worker": 1, "beat": 1, "controller": 1}
    report.expect(by_component == expected, f"product pods by component {by_component}, expected {expected}")
    report.seen.append(f"{len(pods)} pods on {node} from {image_ref}")


def _check_migrated(report: NodeReport, database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url) as connection:
        count = connection.execute("SELECT count(*) FROM django_migrations").fetchone()
    report.expect(bool(count and count[0] > 10), f"the migration hook did not migrate ({count})")


# --- the flow through the in-cluster API ------------------------------------------------------------------


def _request(
    base_url: str,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:
    """One API call as the console's Host; a connection failure or timeout is status 0 (reported, not raised)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Host": "localhost", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{base_url}{path}", data=data, headers=sent, method=method)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError as exc:
        return 0, {}, f"{type(exc).__name__}: {exc}".encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _flow(report: NodeReport, base_url: str, dex: NodeDex, tenant: str) -> bool:
    """Tenant, model, endpoint and console page through the in-cluster API; whether the endpoint was created."""
    admin, alice = dex.token("admin"), dex.token("alice")
    # The tenant's client CA (any CA certificate does): the devstack's own, public part.
    cert = base64.b64encode(pki.ensure_ca().cert.read_bytes()).decode()
    status, _, body = _request(
        base_url, "POST", "/tenants", admin, {"name": tenant, "cert": cert, "scope": "team-a", "quota": {}}
    )
    if not report.expect(status == 200, f"admin's POST /tenants: {status} {body[:300]!r}"):
        return False
    report.seen.append(f"tenant {tenant} created by admin")
    # A python-backend model (Y = sum of X) uploaded by alice through the API's multipart upload.
    for file_name, content in (("config.pbtxt", ADDER_CONFIG), ("model.py", ADDER_MODEL)):
        if not _upload(report, base_url, alice, tenant, file_name, content.encode()):
            return False
    status, _, body = _request(base_url, "GET", f"/tenants/{tenant}/models", alice)
    report.expect(status == 200 and b'"adder"' in body, f"alice's model list: {status} {body[:300]!r}")
    report.seen.append("model adder uploaded by alice and listed")
    endpoint = {"endpointName": "adder", "modelName": "adder", "subjectName": "client", "servingName": "triton",
                "replicas": 1}  # fmt: skip
    status, _, body = _request(base_url, "POST", f"/tenants/{tenant}/endpoints", alice, endpoint)
    if not report.expect(status == 200, f"alice's POST endpoints: {status} {body[:300]!r}"):
        return False
    report.seen.append("triton endpoint adder created by alice")
    _console(report, base_url, dex, f"/console/tenants/{tenant}/endpoints/adder/", "adder")
    return True


# Y = X[0] + X[1], in Triton's python backend (the real node's `triton` image).
ADDER_CONFIG = """name: "adder"
backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 2 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
ADDER_MODEL = """import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", np.array([x.sum()], dtype=np.float32))]))
        return out
"""


def _upload(report: NodeReport, base_url: str, token: str, tenant: str, file_name: str, content: bytes) -> bool:
    """One file of model adder version 1 through start / part / done."""
    model = {"modelName": "adder", "modelVersion": 1, "fileName": file_name}
    status, _, body = _request(base_url, "POST", f"/tenants/{tenant}/upload/start", token, model)
    if not report.expect(status == 200, f"upload start of {file_name}: {status} {body[:300]!r}"):
        return False
    upload_id = json.loads(body)["data"]["uploadId"]
    query = urllib.parse.urlencode({**model, "uploadId": upload_id, "partNumber": "1"})
    status, _, body = _request(
        base_url, "PUT", f"/tenants/{tenant}/upload?{query}", token, raw=content,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    if not report.expect(status == 200, f"upload part of {file_name}: {status} {body[:300]!r}"):
        return False
    parts = [{"ETag": json.loads(body)["data"]["ETag"], "PartNumber": 1}]
    done = {**model, "uploadId": upload_id, "parts": parts}
    status, _, body = _request(base_url, "POST", f"/tenants/{tenant}/upload/done", token, done)
    return report.expect(status == 200, f"upload done of {file_name}: {status} {body[:300]!r}")


def _inference(
    report: NodeReport, core: Any, tenant: str, namespace: str, release: str, image: str, timeout: float = 300
) -> None:
    """The endpoint answers V2 inference through its Service, from pods the release's controller rendered.

    On a shared cluster other controllers (other checkouts' test controllers) reconcile every endpoint
    too, under the same field manager, so an answer alone does not prove the release's controller
    works. It is proved by the release controller's own log saying the endpoint is Ready (it applies
    again any Deployment whose generation is not the one its own apply produced, so it says Ready only
    about its own render) and by the endpoint's pods running the image the release's values name."""
    from kubernetes import client

    from inferencemgmt.resources import ENDPOINT_LABEL, GROUP, PLURAL, VERSION

    body = json.dumps({"inputs": [{"name": "X", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}]}).encode()
    began = time.monotonic()
    deadline = began + timeout
    answer: Any = None
    answered = ready = 0.0
    ready_line = f"reconciled {tenant}/adder: Ready"
    controller_ready = False
    last = "nothing asked yet"
    while time.monotonic() < deadline and (answer is None or not controller_ready):
        if answer is None:
            try:
                service = core.read_namespaced_service("adder", tenant)
                url = f"http://{service.spec.cluster_ip}:8000/v2/models/adder/infer"
                with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
                    answer = json.load(response)
                answered = time.monotonic() - began
            except Exception as exc:  # not ready yet (no Service, refused, 4xx/5xx, bad body): asked again
                last = f"{type(exc).__name__}: {exc}"
        if answer is not None and not controller_ready:
            controller_ready = ready_line in _controller_log(core, namespace, release, time.monotonic() - began + 60)
            ready = time.monotonic() - began
        if answer is None or not controller_ready:
            time.sleep(1)
    if answer is None:
        state = "unknown"
        with contextlib.suppress(Exception):
            cr: Any = client.CustomObjectsApi(core.api_client).get_namespaced_custom_object(
                GROUP, VERSION, tenant, PLURAL, "adder"
            )
            status = cr.get("status") or {}
            state = f"{status.get('state')}: {status.get('message', '')}"[:400]
        report.failures.append(
            f"the triton endpoint did not answer inference in {timeout:.0f}s: {last} (endpoint status {state})"
        )
        return
    outputs = answer.get("outputs") or [{}]
    if not report.expect(outputs[0].get("data") == [3.75], f"inference answered {answer}"):
        return
    report.seen.append(
        f"triton endpoint adder answered inference on the real node: {outputs[0]['data']} after {answered:.0f}s"
        f" (Ready in the release controller's log after {ready:.0f}s)"
    )
    report.expect(controller_ready, f"the release's controller never logged {ready_line!r}")
    pods = core.list_namespaced_pod(tenant, label_selector=f"{ENDPOINT_LABEL}=adder").items
    images = {
        c.image
        for pod in pods
        if pod.metadata.deletion_timestamp is None
        for c in [*pod.spec.containers, *(pod.spec.init_containers or [])]
    }
    if report.expect(images == {image}, f"the endpoint's pods run {images}, not the release's {image}"):
        report.seen.append(f"endpoint adder rendered by the release's controller, on {image}")


def _controller_log(core: Any, namespace: str, release: str, seconds: float) -> str:
    """The last `seconds` of the release's controller pods' logs ("" when none can be read yet)."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=controller"
    text = []
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        with contextlib.suppress(Exception):
            text.append(core.read_namespaced_pod_log(pod.metadata.name, namespace, since_seconds=int(seconds) + 1))
    return "\n".join(text)


def _wait_rolled_out(apps: Any, namespace: str, release: str, timeout: float = 120) -> None:
    """Until every Deployment of the release has only pods of its current template (or `timeout`;
    the checks after it then say what is left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployments = apps.list_namespaced_deployment(namespace, label_selector=f"app.kubernetes.io/instance={release}")
        if all(
            d.status.observed_generation == d.metadata.generation
            and d.status.replicas == d.status.updated_replicas == d.status.ready_replicas == d.spec.replicas
            for d in deployments.items
        ):
            return
        time.sleep(1)


def _console(report: NodeReport, base_url: str, dex: NodeDex, page_path: str, expected: str) -> None:
    """Log in to the console as alice through the real OIDC redirect dance and render `page_path`."""
    cookies: dict[str, str] = {}

    def remember(raw_headers: list[str]) -> None:
        for value in raw_headers:
            name, _, rest = value.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]

    def get(path: str) -> tuple[int, dict[str, str], bytes]:
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        request = urllib.request.Request(f"{base_url}{path}", headers={"Host": "localhost", "Cookie": cookie})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            response = opener.open(request, timeout=60)
        except urllib.error.HTTPError as exc:
            response = exc
        remember(response.headers.get_all("Set-Cookie") or [])
        return response.status, dict(response.headers), response.read()

    status, headers, _ = get(f"/oidc/authenticate/?{urllib.parse.urlencode({'next': page_path})}")
    location = headers.get("Location", "")
    if not report.expect(status == 302 and location.startswith(dex.issuer), f"console login: {status} {location}"):
        return
    # Dex: follow to its login form, post alice's password, follow back with the code.
    context = _ca_context()
    dex_cookies: dict[str, str] = {}
    url = location
    for _ in range(10):
        request = urllib.request.Request(url, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in dex_cookies.items())})
        try:
            response = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context)).open(
                request, timeout=30
            )
        except urllib.error.HTTPError as exc:
            response = exc
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            dex_cookies[name.strip()] = rest.split(";", 1)[0]
        page = response.read().decode(errors="replace")
        if response.status in (302, 303):
            url = urllib.parse.urljoin(url, response.headers["Location"])
            if url.startswith("http://localhost/"):
                break
            continue
        form = re.search(r'<form[^>]*action="([^"]*)"', page)
        if response.status == 200 and form and 'name="password"' in page:
            data = urllib.parse.urlencode({"login": "alice", "password": idp.demo_password("alice")}).encode()
            post = urllib.request.Request(
                urllib.parse.urljoin(url, html.unescape(form.group(1))), data=data,
                headers={"Cookie": "; ".join(f"{k}={v}" for k, v in dex_cookies.items())},
            )  # fmt: skip
            try:
                answer = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context)).open(
                    post, timeout=30
                )
            except urllib.error.HTTPError as exc:
                answer = exc
            url = urllib.parse.urljoin(url, answer.headers.get("Location", ""))
            if url.startswith("http://localhost/"):
                break
            continue
        report.failures.append(f"console login: unexpected Dex page at {url} ({response.status})")
        return
    if not report.expect(url.startswith("http://localhost/oidc/callback/"), f"console login ended at {url}"):
        return
    status, headers, _ = get(url.removeprefix("http://localhost"))
    if not report.expect(status == 302, f"console callback: {status}"):
        return
    target = headers.get("Location", "/")
    status, _, page = get(target if target.startswith("/") else urllib.parse.urlsplit(target).path)
    text = page.decode(errors="replace")
    report.expect(
        target == page_path and status == 200 and expected in text, f"console page {target}: {status} {text[:300]!r}"
    )
    report.seen.append(f"console page {target} rendered for alice")


def _start_tenant_deletion(report: NodeReport, base_url: str, dex: NodeDex, tenant: str) -> str | None:
    """The admin's DELETE /tenants; the operation's URL when the API hands it to the worker (202)."""
    status, _, body = _request(base_url, "DELETE", "/tenants", dex.token("admin"), {"name": tenant}, timeout=300)
    if status == 202:
        return str(json.loads(body)["data"]["task"]["url"])
    if report.expect(status == 200, f"admin's DELETE /tenants: {status} {body[:300]!r}"):
        report.seen.append(f"tenant {tenant} deleted by admin")
    return None


def _finish_tenant_deletion(report: NodeReport, base_url: str, dex: NodeDex, tenant: str, task_url: str) -> None:
    """Follow the deletion, run by the release's worker pod, to its end. Its last step waits for the
    namespace to go, which kube-controller-manager does: minutes on a busy shared cluster."""
    admin = dex.token("admin")
    deadline = time.monotonic() + 420
    state, body = "RUNNING", b""
    while state in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        status, _, body = _request(base_url, "GET", task_url, admin)
        state = json.loads(body)["data"]["state"] if status == 200 else f"HTTP {status}"
        if state in ("PENDING", "RUNNING"):
            time.sleep(1)
    if report.expect(state == "SUCCEEDED", f"admin's tenant deletion ended {state}: {body[:400]!r}"):
        report.seen.append(f"tenant {tenant} deleted by admin (the operation finished by the worker pod)")


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m devstack.chart_node", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the namespace and database for inspection")
    parser.add_argument(
        "--inference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the endpoint's Triton, rendered by the release's controller, to answer (default: on)",
    )
    args = parser.parse_args(argv)
    # A CI job's timeout or a `kill` sends SIGTERM: as an exception it runs the cleanup (uninstall,
    # tenant, database, relays, the run's Dex) that the default action would skip.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        report = e2e_real_node(chart_e2e._devstack_env(), keep=args.keep, inference=args.inference)
    except StackError as exc:
        print(f"[helm-e2e] {exc}", file=sys.stderr)
        return 1
    timings = ", ".join(f"{key} {value:.0f}s" for key, value in report.timings.items())
    for line in report.seen:
        say(f"helm-e2e: {line}")
    if report.failures:
        print("[helm-e2e] FAILED:\n  " + "\n  ".join(report.failures), file=sys.stderr)
        print(f"[helm-e2e] {timings}", file=sys.stderr)
        return 1
    say(f"helm-e2e on the real node passed in namespace {report.namespace}: {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
