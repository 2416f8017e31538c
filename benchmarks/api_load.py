# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""Mixed API load and a memory soak on the devstack: concurrent clients, a baseline, each process's memory.

Usage (with the devstack's env sourced):

    python benchmarks/api_load.py [--clients 50] [--seconds 60]                      # make bench
    python benchmarks/api_load.py --soak [--clients 10] [--seconds 600] [--growth-limit-mib 16]  # make soak

Loopback only. It starts the API under gunicorn with the production options (the Dockerfile's
``GUNICORN_CMD_ARGS``, the Helm chart's defaults: 2 workers x 4 threads, gthread), DEBUG off, on a
PostgreSQL database of its own on the devstack's server, plus a Celery worker and the endpoints
controller (models_upload.Platform). It creates a throwaway team-a tenant with one InferenceEndpoint
(1 replica, Running on kwok) and removes both at the end, also on failure (the direct phases write only
into that tenant's bucket). After 10 s warm-ups of the mix (every worker loads what the routes need) and
of the direct calls (their connections open), phases run with the same clients, in this order:

- baseline (up to 60 s): ``GET /healthz`` (no token, no upstream): what this machine and this gunicorn
  serve, so the mix's throughput can be read as a ratio (the machine is shared and noisy);
- mix: alice's token, in turn: list tenants, models and endpoints; view the tenant and the endpoint
  (live Deployment and pod status); scale the endpoint (``PATCH .../replicas``, alternating 1 and 2:
  the controller and kwok follow); upload a 64 KiB model file by direct upload (``POST /uploads``,
  ``PUT`` to the presigned part URL, ``POST /uploads/<id>/complete``, which waits for the Celery task);
- direct 1 before the mix and direct 2 after it (``--seconds`` each; not with ``--soak``): the same steps
  in the same turn, but each as the Kubernetes and S3 calls its route makes underneath, made straight
  from this process (the official Kubernetes client with the API's kubeconfig, as the API itself or
  impersonating alice as the API does; boto3 with the API's S3 credentials). The mix/direct ratio of
  steps per second (against the mean of both directs, so both see the machine's load) is what the
  API costs on top of its upstreams (issue 22: >= 0.5). The exact calls per step (read from the routes
  and checked by logging every outbound request of the API and its Celery worker, step by step):

  - ``GET /tenants``: as the API, list namespaces ``labelSelector=created_by=platform_admin, limit=500``
    (alice is no admin: the API lists and keeps her groups' tenants);
  - ``GET /tenants/<t>``: as the API, read the namespace (every tenant route's existence check); as alice,
    read the namespace, read the ResourceQuota named after the tenant (404: none; the route takes it so),
    list InferenceEndpoints ``limit=1`` (the count); S3 ListObjectsV2 of the bucket (its usage);
  - ``GET /tenants/<t>/models``: the access check, then S3 ListObjectsV2 (prefix "");
  - ``GET /tenants/<t>/endpoints``: the namespace as the API; as alice list InferenceEndpoints ``limit=100``
    and Deployments ``labelSelector=ai.intel.com/inference-endpoint in (load)``;
  - ``GET /tenants/<t>/endpoints/<e>``: the namespace as the API; as alice get the InferenceEndpoint, list
    Deployments and pods ``labelSelector=ai.intel.com/inference-endpoint=load``, read the Service;
  - ``PATCH .../replicas``: the namespace as the API; as alice get the InferenceEndpoint and merge-patch
    its ``scale`` subresource (its resourceVersion, ``spec.replicas`` 1 or 2; on 409 read and patch
    again, up to 8 times after a growing random pause, as the route);
  - the upload: the access check; S3 CreateMultipartUpload and ListParts (``POST /uploads``), UploadPart
    of the 64 KiB (the client's presigned ``PUT``), then the completion's Celery task: ListParts,
    CompleteMultipartUpload, HeadObject, ListObjectsV2 (prefix ``load-model/1/``);
  - the access check of the model routes (``models_store.access``, cached 10 s per verb, here in one
    cache, in the API one per gunicorn worker): the namespace as the API, then as alice a
    SelfSubjectAccessReview (verb ``list`` or ``create`` on inference-endpoints.ai.intel.com in the tenant).

Prints, for each phase: API requests (upstream calls for a direct phase) and mix steps (an upload is one
step), each with throughput and p50/p95/p99 latency, errors (status >= 400 or an exception, in the API,
the store or, direct, an upstream; the target is 0) and per-route (per-call) figures; the CPU each
process used per step; the Kubernetes API server's requests per step by verb and resource, from every
client (its ``apiserver_request_total``: the same calls, plus what the controllers and kwok did in
reply); the mix/healthz and mix/direct ratios; then the resident set of
every process (gunicorn master and each worker, Celery worker, controller) sampled every second: a
timeline and start/max/end/growth. ``--soak`` runs the mix for ``--seconds`` (10 minutes) and compares
each process's mean over the last minute with its mean over the first minute after a minute of
warm-up. Exit status 1 on any error of the API (a direct phase's errors are printed, not counted), a
process that exited, or (soak) growth above the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import itertools
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import requests
import urllib3
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes import client as k8s
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from models_upload import ROOT, Platform, drop_tenant, make_tenant, rss_bytes, token
from prometheus_client.parser import text_string_to_metric_families

from tests.platform_admin import admin_s3_client, token_claims

MAX_CLIENTS = 64
MAX_SECONDS = {"load": 120, "soak": 3600}
BASELINE_SECONDS = 60.0
WARMUP_SECONDS = 10.0
WINDOW_SECONDS = 60.0  # the soak's warm-up, and each of the two windows it compares
TIMEOUT = 120  # the upload's completion waits for its Celery task
MODEL, ENDPOINT = "load-model", "load"
UPLOAD_KEYS = 8  # uploads overwrite these few files, so the model list stays the same size
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
BLOB = os.urandom(64 * 1024)
BLOB_MD5 = hashlib.md5(BLOB).hexdigest()  # noqa: S324 -- the part checksum the route asks for


@dataclass(frozen=True)
class Call:
    """One HTTP exchange; an operation (an upload) may make several."""

    route: str
    status: int
    seconds: float
    api: bool = True  # False: the object store (a presigned URL), left out of the API's figures
    expected: bool = False  # an answer >= 400 the route takes as data (a tenant without a quota: 404)


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


UPSTREAM_ERRORS = (ApiException, ClientError, BotoCoreError, urllib3.exceptions.HTTPError)
# endpoints.services: the scale route tries this often, with a random pause of up to 20 ms, 40 ms, ...
# between tries (the Django settings are not loaded here, so the values are repeated).
CONFLICT_ATTEMPTS = 8
CONFLICT_PAUSE_SECONDS = 0.02
ENDPOINT_LABEL = "ai.intel.com/inference-endpoint"
CR = ("ai.intel.com", "v1")  # group, version of InferenceEndpoint (plural "inference-endpoints")
TENANT_SELECTOR = "created_by=platform_admin"  # tenants.selectors.tenant_label_selector() on the devstack


def status_of(exc: Exception) -> int:
    """An upstream error's HTTP status (599: no answer at all)."""
    if isinstance(exc, ApiException):
        return int(exc.status or 599)
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 599))
    return 599


DIRECT_CALLS = """\
direct phases: per mix step, the calls its route makes underneath (svc: the API's own kubeconfig; alice:
the same kubeconfig impersonating alice@example.com, group team-a; s3: the API's credentials, tenant bucket):
  GET /tenants               k8s svc GET namespaces?labelSelector=created_by=platform_admin&limit=500
  GET /tenants/<t>           k8s svc GET namespace; alice GET namespace, GET resourcequota (404: none),
                             GET inference-endpoints?limit=1; s3 ListObjectsV2 (bucket usage)
  GET .../models             [access check] s3 ListObjectsV2 (prefix "")
  GET .../endpoints          k8s svc GET namespace; alice GET inference-endpoints?limit=100,
                             GET deployments?labelSelector=<endpoint label> in (load)
  GET .../endpoints/<e>      k8s svc GET namespace; alice GET inference-endpoint, GET deployments, GET pods
                             (labelSelector=<endpoint label>=load), GET service
  PATCH .../replicas         k8s svc GET namespace; alice GET inference-endpoint, PATCH .../scale
                             (merge patch: resourceVersion, spec.replicas 1|2; a 409 pauses, reads, patches again)
  upload (start, PUT, done)  [access check] s3 CreateMultipartUpload, ListParts; UploadPart (64 KiB);
                             the Celery task: ListParts, CompleteMultipartUpload, HeadObject, ListObjectsV2
  [access check] (models_store.access, cached 10 s per verb): k8s svc GET namespace; alice POST
                 selfsubjectaccessreviews (verb list | create, inference-endpoints.ai.intel.com, the tenant)"""


class Direct:
    """The mix's steps as the Kubernetes and S3 calls their routes make underneath, made from here.

    The calls and their order were read from the routes and checked by logging every outbound HTTP
    request of the API and the Celery worker while each step ran once (a ``sitecustomize`` wrapping
    urllib3's ``urlopen``). Kubernetes: the management API's own kubeconfig (``IMM_KUBECONFIG``),
    as the API itself connects, acting as itself ("svc") or as alice ("alice": ``Impersonate-User``
    alice's email, one ``Impersonate-Group`` per group of her token, as ``kube.api_client_for`` sends
    them); reads as JSON where the routes read JSON, as SDK models where they build them. S3: the
    API's own credentials (``S3_*``, ``admin_s3_client``), the tenant's bucket. The model routes' access
    check (tenant namespace + SelfSubjectAccessReview) is cached per verb for
    ``IMM_MODEL_ACCESS_CACHE_SECONDS`` (10 s) as ``models_store.access`` caches it (the API has one cache
    per gunicorn worker, so it asks at most twice as often). Connection pools hold every client, so the
    baseline is as fast as this machine lets one process be.
    """

    def __init__(self, tenant: str, bearer: str, clients: int) -> None:
        self.tenant = tenant
        found = token_claims(bearer)
        self.service = self._kube(clients)
        self.alice = self._kube(clients)
        groups = list(found.get("groups") or [])
        if len(groups) != 1:  # the SDK's default headers hold one value per name
            raise SystemExit(f"the direct phase expects alice in one group, not {groups}")
        self.alice.set_default_header("Impersonate-User", found["email"])
        self.alice.set_default_header("Impersonate-Group", groups[0])
        self.s3 = admin_s3_client(os.environ, max_pool_connections=clients)
        self.access_ttl = float(os.environ.get("IMM_MODEL_ACCESS_CACHE_SECONDS", "10"))
        self._access: dict[str, float] = {}
        self._lock = threading.Lock()
        self._scales = itertools.count()
        self.operations: list[Callable[[requests.Session, int], list[Call]]] = [
            self._step(self.tenants),
            self._step(self.tenant_view),
            self._step(self.models),
            self._step(self.endpoints),
            self._step(self.endpoint_view),
            self._step(self.scale),
            self._step(self.upload),
        ]

    @staticmethod
    def _kube(clients: int) -> Any:
        configuration = k8s.Configuration()
        config.load_kube_config(
            config_file=os.environ["IMM_KUBECONFIG"], client_configuration=configuration, persist_config=False
        )
        configuration.connection_pool_maxsize = clients
        return k8s.ApiClient(configuration)

    def __call__(self, session: requests.Session, n: int) -> list[Call]:
        return self.operations[n % len(self.operations)](session, n)

    def _step(self, body: Callable[[list[Call], int], None]) -> Callable[[requests.Session, int], list[Call]]:
        """Run one step's calls in order; the first failing call ends it (its status is counted)."""

        def step(session: requests.Session, n: int) -> list[Call]:
            made: list[Call] = []
            with contextlib.suppress(*UPSTREAM_ERRORS):
                body(made, n)
            return made

        return step

    @staticmethod
    def _call(made: list[Call], route: str, send: Callable[[], Any], accept: tuple[int, ...] = ()) -> Any:
        """Time one upstream call; a status in ``accept`` is an answer the route handles (None here)."""
        began = time.perf_counter()
        try:
            answer = send()
        except UPSTREAM_ERRORS as exc:
            status = status_of(exc)
            made.append(Call(route, status, time.perf_counter() - began, expected=status in accept))
            if made[-1].expected:
                return None
            raise
        made.append(Call(route, 200, time.perf_counter() - began))
        return answer

    def _json(self, made: list[Call], route: str, api_client: Any, api: str, method: str, *args: Any, **kw: Any) -> Any:
        """A generated method's answer as the API server's JSON (``kube.call_json``)."""

        def send() -> Any:
            answer = getattr(getattr(k8s, api)(api_client), method)(*args, _preload_content=False, **kw)
            return json.loads(answer.data or b"{}")

        return self._call(made, route, send)

    def _tenant_required(self, made: list[Call]) -> None:
        """``tenants.selectors.tenant_required``: the tenant namespace, read as the API (an SDK model)."""
        self._call(made, "k8s svc read namespace", lambda: k8s.CoreV1Api(self.service).read_namespace(self.tenant))

    def _tenant_access(self, made: list[Call], verb: str) -> None:
        """``models_store.access.tenant_access``: namespace + SelfSubjectAccessReview, cached per verb."""
        now = time.monotonic()
        with self._lock:
            fresh = now - self._access.get(verb, -1e9) < self.access_ttl
        if fresh:
            return
        self._tenant_required(made)
        attributes = {"verb": verb, "resource": "inference-endpoints", "group": CR[0], "namespace": self.tenant}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}
        review = {**body, "spec": {"resourceAttributes": attributes}}
        api = k8s.AuthorizationV1Api(self.alice)
        self._call(
            made, "k8s alice create selfsubjectaccessreview", lambda: api.create_self_subject_access_review(review)
        )
        with self._lock:
            self._access[verb] = now

    def tenants(self, made: list[Call], n: int) -> None:
        """GET /tenants (alice is no admin: the API lists tenant namespaces as itself, one chunk of 500)."""
        self._json(
            made,
            "k8s svc list namespaces",
            self.service,
            "CoreV1Api",
            "list_namespace",
            label_selector=TENANT_SELECTOR,
            limit=500,
        )

    def tenant_view(self, made: list[Call], n: int) -> None:
        """GET /tenants/<t>: namespace (svc), then as alice namespace, quota, one endpoint; bucket listing."""
        self._tenant_required(made)
        core = k8s.CoreV1Api(self.alice)
        self._call(made, "k8s alice read namespace", lambda: core.read_namespace(self.tenant))
        self._call(
            made,
            "k8s alice read resourcequota",
            lambda: core.read_namespaced_resource_quota(self.tenant, self.tenant),
            accept=(404,),
        )
        custom = k8s.CustomObjectsApi(self.alice)
        self._call(
            made,
            "k8s alice list endpoints limit=1",
            lambda: custom.list_namespaced_custom_object(*CR, self.tenant, "inference-endpoints", limit=1),
        )
        self._call(made, "s3 list objects", lambda: self.s3.list_objects_v2(Bucket=self.tenant))

    def models(self, made: list[Call], n: int) -> None:
        """GET /tenants/<t>/models: access check (list), then the bucket's objects."""
        self._tenant_access(made, "list")
        self._call(made, "s3 list objects", lambda: self.s3.list_objects_v2(Bucket=self.tenant, Prefix=""))

    def endpoints(self, made: list[Call], n: int) -> None:
        """GET /tenants/<t>/endpoints: namespace (svc); as alice a page of CRs and their Deployments."""
        self._tenant_required(made)
        self._json(
            made,
            "k8s alice list endpoints limit=100",
            self.alice,
            "CustomObjectsApi",
            "list_namespaced_custom_object",
            *CR,
            self.tenant,
            "inference-endpoints",
            limit=100,
        )
        self._deployments(made, f"{ENDPOINT_LABEL} in ({ENDPOINT})")

    def _deployments(self, made: list[Call], selector: str) -> None:
        """The endpoints' Deployments as alice, as JSON (their live status)."""
        self._json(
            made,
            "k8s alice list deployments",
            self.alice,
            "AppsV1Api",
            "list_namespaced_deployment",
            self.tenant,
            label_selector=selector,
        )

    def _endpoint_cr(self, made: list[Call]) -> Any:
        """``endpoints.selectors.endpoint_cr``: the InferenceEndpoint as alice, as JSON."""
        return self._json(
            made,
            "k8s alice get endpoint",
            self.alice,
            "CustomObjectsApi",
            "get_namespaced_custom_object",
            *CR,
            self.tenant,
            "inference-endpoints",
            ENDPOINT,
        )

    def endpoint_view(self, made: list[Call], n: int) -> None:
        """GET /tenants/<t>/endpoints/<e>: namespace (svc); as alice the CR, Deployment, pods, Service."""
        self._tenant_required(made)
        selector = f"{ENDPOINT_LABEL}={ENDPOINT}"
        self._endpoint_cr(made)
        self._deployments(made, selector)
        self._json(
            made,
            "k8s alice list pods",
            self.alice,
            "CoreV1Api",
            "list_namespaced_pod",
            self.tenant,
            label_selector=selector,
        )
        self._json(
            made, "k8s alice read service", self.alice, "CoreV1Api", "read_namespaced_service", ENDPOINT, self.tenant
        )

    def scale(self, made: list[Call], n: int) -> None:
        """PATCH .../replicas: namespace (svc); as alice the CR, then a merge patch of its scale
        subresource carrying the resourceVersion read (a 409 pauses, reads and patches again, as the route)."""
        self._tenant_required(made)
        replicas = 1 + next(self._scales) % 2
        custom = k8s.CustomObjectsApi(self.alice)
        for attempt in range(CONFLICT_ATTEMPTS):
            cr = self._endpoint_cr(made)
            patch = {"metadata": {"resourceVersion": cr["metadata"]["resourceVersion"]}, "spec": {"replicas": replicas}}
            last = attempt + 1 == CONFLICT_ATTEMPTS
            self._call(
                made,
                "k8s alice patch endpoint scale",
                functools.partial(
                    custom.patch_namespaced_custom_object_scale,
                    *CR,
                    self.tenant,
                    "inference-endpoints",
                    ENDPOINT,
                    patch,
                    _content_type="application/merge-patch+json",
                ),
                accept=() if last else (409,),  # the route reads and patches again on a conflict
            )
            if made[-1].status != 409:
                return
            if not last:
                time.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS * 2**attempt))  # noqa: S311 -- jitter

    def upload(self, made: list[Call], n: int) -> None:
        """The direct upload: POST /uploads (access check (create); create the multipart upload; its
        parts, for the plan), the part (the client's presigned PUT), then .../complete's Celery task
        (the parts, complete, head the object, list the version's objects)."""
        self._tenant_access(made, "create")
        key, s3, bucket = f"{MODEL}/1/blob{n % UPLOAD_KEYS}.bin", self.s3, self.tenant
        started = self._call(
            made, "s3 create multipart upload", lambda: s3.create_multipart_upload(Bucket=bucket, Key=key)
        )
        upload = {"Bucket": bucket, "Key": key, "UploadId": started["UploadId"]}
        self._call(made, "s3 list parts", lambda: s3.list_parts(**upload))
        part = self._call(made, "s3 upload part", lambda: s3.upload_part(**upload, PartNumber=1, Body=BLOB))
        self._call(made, "s3 list parts", lambda: s3.list_parts(**upload))
        parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
        self._call(
            made, "s3 complete multipart upload", lambda: s3.complete_multipart_upload(**upload, MultipartUpload=parts)
        )
        self._call(made, "s3 head object", lambda: s3.head_object(Bucket=bucket, Key=key))
        self._call(made, "s3 list objects", lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{MODEL}/1/"))


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Phase:
    """What the clients saw in one phase."""

    calls: list[Call]
    wall: float
    failures: list[str]  # the type names of exceptions (no answer at all)
    steps: list[tuple[float, bool]] = field(default_factory=list)  # each mix step: seconds, whether it failed
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds each process group used in the phase
    # Requests the Kubernetes API server served in the phase, by verb and resource, from every client
    # (the API, the controller, the control plane, kwok): what the phase cost the API server.
    kube: Counter[str] = field(default_factory=Counter)

    @property
    def api(self) -> list[Call]:
        return [call for call in self.calls if call.api]

    @property
    def errors(self) -> int:
        return sum(1 for call in self.calls if call.status >= 400 and not call.expected) + len(self.failures)

    @property
    def steps_per_second(self) -> float:
        return len(self.steps) / self.wall

    def summary(self, name: str, unit: str = "API requests") -> str:
        """The phase in a line: requests (API requests, or upstream calls for a direct phase) and steps."""
        latencies = sorted(call.seconds for call in self.api)
        steps = sorted(seconds for seconds, _ in self.steps)
        kinds = {f"{call.route} {call.status}" for call in self.calls if call.status >= 400 and not call.expected}
        return (
            f"{name:9} {unit}={len(latencies):6d} ({len(latencies) / self.wall:7.1f}/s) "
            f"p50={percentile(latencies, 0.50):6.1f}ms p95={percentile(latencies, 0.95):6.1f}ms "
            f"p99={percentile(latencies, 0.99):6.1f}ms | steps={len(steps):6d} ({self.steps_per_second:6.1f}/s) "
            f"p50={percentile(steps, 0.50):6.1f}ms p95={percentile(steps, 0.95):6.1f}ms "
            f"p99={percentile(steps, 0.99):6.1f}ms | errors={self.errors} {sorted(kinds | {*self.failures})[:5] or ''}"
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


def cpu_seconds(named: dict[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) every process on the machine has used, summed by name: the
    platform's own processes by role (``named``), this benchmark as "benchmark clients", every other
    by its command name (kube-apiserver, etcd, the store, PostgreSQL...; other sessions' processes too)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm == "imm-kube":  # the devstack's one binary for etcd and the control plane: name the part
            with contextlib.suppress(OSError, IndexError):
                comm = (entry / "cmdline").read_bytes().split(b"\0")[1].decode()
        fields = stat[stat.rindex(")") + 2 :].split()
        name = "benchmark clients" if pid == os.getpid() else named.get(pid, comm)
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def platform_pids(platform: Platform) -> dict[str, int]:
    """The platform's processes by label: the gunicorn master, each worker, Celery, the controller."""
    master = platform.gunicorn.pid
    found = {"gunicorn master": master}
    found.update({f"worker {pid}": pid for pid in children(master)})
    found["celery"] = platform.celery.pid
    if platform.controller is not None:
        found["controller"] = platform.controller.pid
    return found


def platform_roles(platform: Platform) -> dict[int, str]:
    """The platform's processes by role, for ``cpu_seconds``: gunicorn's master and workers as one."""
    roles = {"celery": "Celery worker", "controller": "controller"}
    return {pid: roles.get(label, "API (gunicorn)") for label, pid in platform_pids(platform).items()}


def run_phase(
    clients: int,
    seconds: float,
    operation: Callable[[requests.Session, int], list[Call]],
    named: Callable[[], dict[int, str]],
    kube: Callable[[], Counter[str]] = Counter,
) -> Phase:
    calls: list[Call] = []
    failures: list[str] = []
    steps: list[tuple[float, bool]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        session = requests.Session()
        for counter in itertools.count():
            if time.monotonic() >= deadline:
                return
            step_began = time.perf_counter()
            try:
                made = operation(session, number * 1_000_000 + counter)
                problem = ""
            except (requests.RequestException, ValueError, KeyError) as exc:
                made, problem = [], type(exc).__name__
            failed = bool(problem) or any(call.status >= 400 and not call.expected for call in made)
            with lock:
                calls.extend(made)
                steps.append((time.perf_counter() - step_began, failed))
                if problem:
                    failures.append(problem)

    roles = named()
    kube_before = kube()
    cpu_before = cpu_seconds(roles)
    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    cpu_after = cpu_seconds(roles)
    kube_used = kube() - kube_before  # a Counter's subtraction keeps only the positive counts
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    return Phase(calls, wall, failures, steps, {name: used for name, used in cpu.items() if used > 0}, kube_used)


def kube_requests(admin: Any) -> Counter[str]:
    """The API server's ``apiserver_request_total`` summed by verb and resource (watch streams left out:
    they are counted once, when opened)."""
    answer = admin.call_api("GET", f"{admin.configuration.host}/metrics")
    answer.read()
    counted: Counter[str] = Counter()
    for family in text_string_to_metric_families(answer.data.decode()):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "apiserver_request_total" or labels.get("verb") == "WATCH":
                continue
            resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            counted[f"{labels.get('verb', '?')} {resource}"] += int(sample.value)
    return counted


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
        return platform_pids(self.platform)

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
            roles = functools.partial(platform_roles, platform)
            counts = functools.partial(kube_requests, admin)
            phases = {"warm-up": run_phase(clients, WARMUP_SECONDS, mix, roles)}
            direct = None if args.soak else Direct(tenant, auth["Authorization"].split()[1], clients)
            if direct is not None:  # the direct clients open their connections
                phases["warm-up direct"] = run_phase(clients, WARMUP_SECONDS, direct, roles)

            def baseline(session: requests.Session, n: int) -> list[Call]:
                return [timed("GET /healthz", lambda: session.get(f"{platform.base}/healthz", timeout=TIMEOUT))[0]]

            load_before = os.getloadavg()[0]
            with ProcessMemory(platform) as memory:
                phases["baseline"] = run_phase(clients, min(seconds, BASELINE_SECONDS), baseline, roles, counts)
                if direct is not None:  # before and after the mix, so that both see the machine's load
                    phases["direct 1"] = run_phase(clients, seconds, direct, roles, counts)
                mix_began = time.monotonic() - memory.began
                phases["mix"] = run_phase(clients, seconds, mix, roles, counts)
                mix_window = (mix_began, time.monotonic() - memory.began)
                if direct is not None:
                    phases["direct 2"] = run_phase(clients, seconds, direct, roles, counts)
            print(f"{mode}: clients={clients} mix seconds={seconds:.0f}; gunicorn {' '.join(gunicorn)} (gthread)")
            if direct is not None:
                print(DIRECT_CALLS)
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
        print(
            phase.summary(name, "upstream calls" if name.startswith(("direct", "warm-up direct")) else "API requests")
        )
    for name in ("mix", "direct 1", "direct 2"):
        if name in phases:
            print(f"  {name}, by route or call:")
            for line in phases[name].routes():
                print(line)
    print("CPU seconds per step, by process (all processes on the machine; the largest first):")
    for name in ("mix", "direct 1", "direct 2"):
        if name in phases:
            phase = phases[name]
            steps = max(1, len(phase.steps))
            ranked = sorted(phase.cpu.items(), key=lambda item: -item[1])
            shown = ", ".join(f"{label} {1000 * used / steps:.1f}" for label, used in ranked[:8])
            total = sum(phase.cpu.values())
            print(f"  {name:9} {1000 * total / steps:6.1f} ms in all ({total / phase.wall:.2f} CPUs busy): {shown} ms")
    # The same calls should cost the API server the same in every phase; what differs is what the
    # platform does in reply (the controller, the Deployment and ReplicaSet controllers, kwok): a
    # slower phase sees fewer replica changes coalesced, so more of that work per step.
    print("Kubernetes API server requests per step, every client (writes: POST, PUT, PATCH, APPLY, DELETE):")
    for name in ("mix", "direct 1", "direct 2"):
        if name in phases:
            phase = phases[name]
            steps = max(1, len(phase.steps))
            writes = sum(count for key, count in phase.kube.items() if key.split()[0] in WRITE_VERBS)
            shown = ", ".join(
                f"{key} {count / steps:.3f}" for key, count in phase.kube.most_common() if count / steps >= 0.005
            )
            print(f"  {name:9} {sum(phase.kube.values()) / steps:.2f} in all, {writes / steps:.2f} writes: {shown}")
    mix, baseline = phases["mix"], phases["baseline"]
    ratio = (len(mix.api) / mix.wall) / (len(baseline.api) / baseline.wall)
    print(f"mix/baseline (GET /healthz) API throughput ratio={ratio:.3f}")
    directs = [phases[name] for name in ("direct 1", "direct 2") if name in phases]
    if directs:
        each = " ".join(f"{p.steps_per_second:.1f}" for p in directs)
        direct_rate = statistics.fmean(p.steps_per_second for p in directs)
        calls_rate = statistics.fmean(len(p.api) / p.wall for p in directs)
        print(
            f"mix steps/s={mix.steps_per_second:.1f} (API requests/s={len(mix.api) / mix.wall:.1f}); direct steps/s="
            f"{direct_rate:.1f} (each phase: {each}; upstream calls/s={calls_rate:.1f})"
        )
        print(
            f"mix/direct throughput ratio (steps/s, the mean of both directs)={mix.steps_per_second / direct_rate:.3f}"
            f" (target >= 0.5); against the slower direct "
            f"{mix.steps_per_second / min(p.steps_per_second for p in directs):.3f}"
        )
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
    # The target (0) is the API's: a direct phase's errors are the baseline's, printed above and here.
    errors = sum(phase.errors for name, phase in phases.items() if "direct" not in name)
    if errors:
        failed.append(f"{errors} errors of the API (the target is 0)")
    direct_errors = {name: phase.errors for name, phase in phases.items() if "direct" in name and phase.errors}
    if direct_errors:
        print(
            f"errors of the direct calls (not the API's; a direct scale fails when 8 read+patch rounds conflict): "
            f"{direct_errors}"
        )
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
