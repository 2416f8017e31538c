"""The one door to Kubernetes: the only module that imports ``kubernetes``.

Every call made for a user runs AS that user. The management API authenticates with its own
narrowly-scoped identity (``IMM_KUBECONFIG``) and adds ``Impersonate-User`` / ``Impersonate-Group``
taken from the verified token, so Kubernetes RBAC is the real authorisation and Celery tasks keep
working after the user's token expired. Names are sent only as ``auth/names.py`` allows: a token
claiming ``system:masters`` (in any spelling, with any white space) must not become cluster-admin,
and a user name that is not a plain identity is refused. In ``passthrough`` mode the user's own token is
sent instead (for clusters that trust the identity provider directly).

Clients are cached per identity for a short time (bounded LRU + TTL): a client per request costs a
TLS handshake, an unbounded cache (the original's) leaks memory and keeps tokens alive.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import urllib3
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.util.retry import Retry

from inferencemgmt import resources
from inferencemgmt.auth.identity import Identity
from inferencemgmt.auth.names import passable_groups, service_account_groups, service_account_of, username_problem
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import (
    KUBERNETES,
    BadRequest,
    Conflict,
    Forbidden,
    ImmError,
    NotFound,
    UpstreamError,
    UpstreamUnavailable,
)
from inferencemgmt.metrics import upstream_call

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def impersonation_groups(identity: Identity) -> list[str]:
    """Groups sent to Kubernetes: only names ``auth/names.py`` lets pass (never a ``system:`` group).

    Identities built from tokens, sessions and records are already filtered; this is the last
    check, at the door, for every Identity however it was made. A robot (``identity.service_account``)
    is sent exactly its namespace's two service-account groups, derived from its user name.
    """
    if identity.service_account:
        found = service_account_of(identity.username)
        return list(service_account_groups(found[0])) if found else []
    return list(passable_groups(identity.groups))


def impersonation_user(identity: Identity) -> str:
    """The ``Impersonate-User`` value: a plain identity, or a 403 before anything is sent.

    The one exception (names.py): a robot identity is sent as its service account, and only in the
    exact form ``system:serviceaccount:<namespace>:<name>``.
    """
    if identity.service_account:
        if service_account_of(identity.username) is None:
            raise Forbidden(
                "Not allowed",
                "The robot's name is not a service account of a namespace.",
                code="impersonation_refused",
            )
        return identity.username
    problem = username_problem(identity.username)
    if problem is not None:
        raise Forbidden(
            "Not allowed",
            f"The user name cannot be passed on to Kubernetes: {problem}.",
            code="impersonation_refused",
        )
    return identity.username


# --- errors -----------------------------------------------------------------------------------------
def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc.reason or "no reason given")


def _retry_after(exc: ApiException) -> int:
    seconds = ascii_int((exc.headers or {}).get("Retry-After", ""), max_digits=6)
    return 5 if seconds is None else seconds


class Expired(ImmError):
    """410 from the API server: a list's continue token (or a watch's version) outlived its history."""

    default_status = 410
    default_code = "continue_expired"
    default_title = "Continue token expired"

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            description="The list changed too much since this page was given; start again without continue."
            + (f" ({detail})" if detail else "")
        )


def translate(exc: ApiException) -> ImmError:
    """Kubernetes API errors as domain errors (the original turned 404/409/422 into 400)."""
    status = exc.status or 0
    message = _status_message(exc)
    if status == 401:
        return UpstreamError(
            KUBERNETES, "the management API's credentials were rejected", code="kubernetes_unauthorized"
        )
    if status == 403:
        return Forbidden(f"K8s forbidden: {exc.reason or 'Forbidden'}", message, code="kubernetes_forbidden")
    if status == 404:
        return NotFound(description=message, code="kubernetes_not_found")
    if status == 409:
        return Conflict(description=message, code="kubernetes_conflict")
    if status in (400, 422):
        return BadRequest("Invalid parameter", message, code="kubernetes_invalid")
    if status == 410:
        # A list's continue token outlived the API server's history (minutes): start the list again.
        return Expired(message)
    if status == 0 or status in TRANSIENT_STATUSES:
        return UpstreamUnavailable(KUBERNETES, message, retry_after=_retry_after(exc))
    return UpstreamError(KUBERNETES, f"HTTP {status}: {message}", upstream_status=status)


# A restarted API server serves requests a moment before its RBAC authorizer has loaded the roles,
# and meanwhile refuses everyone (403). Told apart from a real refusal by asking its /readyz; a
# ready answer is remembered briefly so that ordinary 403s (outsiders) cost one probe at most
# every few seconds, and forgotten whenever the server could not be reached.
READY_REMEMBERED_SECONDS = 5.0
_ready_until = 0.0


def _api_server_ready() -> bool:
    global _ready_until
    now = time.monotonic()
    if now < _ready_until:
        return True
    api_client = service_api_client()
    method, url, headers, _, _ = api_client.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
    try:
        answer = api_client.call_api(
            method, url, header_params=headers, _request_timeout=settings.IMM_READINESS_TIMEOUT_SECONDS
        )
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        return False
    if answer.status != 200:
        return False
    _ready_until = now + READY_REMEMBERED_SECONDS
    return True


@contextmanager
def kube_errors(*, starting_is_unavailable: bool = False, observed: bool = True) -> Iterator[None]:
    """Map the SDK's errors to domain errors around SDK calls (the typed functions, watch streams).

    ``starting_is_unavailable``: a 403 from an API server that is not ready yet is the 503 it
    really is (for calls through the management API's kubeconfig, which the probe uses).
    ``observed``: count and time the block as one Kubernetes call (metrics); off for the reading of a
    watch stream, which lasts minutes and yields to its consumer.
    """
    if not observed:
        with _kube_errors(starting_is_unavailable):
            yield
        return
    with upstream_call(KUBERNETES), _kube_errors(starting_is_unavailable):
        yield


@contextmanager
def _kube_errors(starting_is_unavailable: bool) -> Iterator[None]:
    global _ready_until
    try:
        yield
    except ApiException as exc:
        if exc.status == 403 and starting_is_unavailable and not _api_server_ready():
            raise UpstreamUnavailable(
                KUBERNETES,
                "the API server is starting (it refuses every request until its authorizer has loaded)",
                retry_after=2,
            ) from None
        raise translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        _ready_until = 0.0
        raise UpstreamUnavailable(KUBERNETES, f"{type(exc).__name__}: cannot reach the API server") from None


class _Translated:
    """An API object whose every method maps SDK errors to domain errors."""

    def __init__(self, api: Any, *, starting_is_unavailable: bool = False) -> None:
        self._api = api
        self._starting_is_unavailable = starting_is_unavailable

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._api, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with kube_errors(starting_is_unavailable=self._starting_is_unavailable):
                return attribute(*args, **kwargs)

        return call


# --- configuration and clients ----------------------------------------------------------------------
def _header_value(name: str) -> Any:
    """A name as header bytes: UTF-8, which the API server reads names as.

    Python's HTTP client would encode a str as Latin-1: ``jöhn`` would reach Kubernetes as a
    different (invalid UTF-8) name, and a name outside Latin-1 would fail before being sent.
    """
    return name if name.isascii() else name.encode("utf-8")


class _IdentityRESTClient(k8s.rest.RESTClientObject):
    """Adds the impersonation headers (one ``Impersonate-Group`` line per group) and default timeouts.

    The generated client flattens headers into a dict, which cannot hold a repeated header, so the
    headers are added here, at the last step before urllib3.
    """

    def __init__(self, configuration: Any, user: str | None, groups: list[str], timeout: tuple[float, float]) -> None:
        super().__init__(configuration)
        self._user = user
        self._groups = groups
        self._timeout = timeout

    def request(self, method: str, url: str, headers: Any = None, *args: Any, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        if self._user is not None:
            merged["Impersonate-User"] = _header_value(self._user)
            for group in self._groups:
                merged.add("Impersonate-Group", _header_value(group))
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = self._timeout
        return super().request(method, url, merged, *args, **kwargs)  # type: ignore[no-untyped-call]


class _ClientCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[str, ...], tuple[float, Any]] = OrderedDict()
        self._base: tuple[float, Any] | None = None

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()
            self._base = None

    def _base_configuration(self, now: float) -> Any:
        ttl = settings.IMM_KUBE_CLIENT_CACHE_TTL_SECONDS
        if self._base is None or now - self._base[0] > ttl:
            if not settings.IMM_KUBECONFIG:
                raise UpstreamUnavailable(
                    KUBERNETES, "IMM_KUBECONFIG is not configured", code="kubernetes_not_configured"
                )
            configuration = k8s.Configuration()
            try:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=settings.IMM_KUBECONFIG,
                    context=settings.IMM_KUBE_CONTEXT or None,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (k8s_config.ConfigException, OSError, ValueError) as exc:
                raise UpstreamUnavailable(
                    KUBERNETES,
                    f"IMM_KUBECONFIG cannot be loaded: {type(exc).__name__}",
                    code="kubernetes_not_configured",
                ) from None
            configuration.retries = _retries()
            self._base = (now, configuration)
        return self._base[1]

    def get(self, key: tuple[str, ...], build: Callable[[Any], Any]) -> Any:
        now = time.monotonic()
        ttl = settings.IMM_KUBE_CLIENT_CACHE_TTL_SECONDS
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None and now - cached[0] <= ttl:
                self._clients.move_to_end(key)
                return cached[1]
            api_client = build(self._base_configuration(now))
            self._clients[key] = (now, api_client)
            self._clients.move_to_end(key)
            while len(self._clients) > settings.IMM_KUBE_CLIENT_CACHE_SIZE:
                self._clients.popitem(last=False)
            return api_client


_cache = _ClientCache()


@receiver(setting_changed)
def _forget_clients(**kwargs: Any) -> None:
    if str(kwargs.get("setting", "")).startswith("IMM_KUBE"):
        _cache.clear()


def _retries() -> Retry:
    """Transient statuses and connection errors are retried with backoff, honouring Retry-After."""
    return Retry(
        total=settings.IMM_KUBE_RETRIES,
        backoff_factor=0.3,
        status_forcelist=TRANSIENT_STATUSES,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def _timeouts() -> tuple[float, float]:
    return (settings.IMM_KUBE_CONNECT_TIMEOUT_SECONDS, settings.IMM_KUBE_READ_TIMEOUT_SECONDS)


def _build(base: Any, user: str | None, groups: list[str], bearer: str | None) -> Any:
    configuration = copy.deepcopy(base)
    if bearer is not None:
        # Pass-through: the user's token is the only credential; drop the service identity's.
        configuration.cert_file = configuration.key_file = None
        configuration.api_key = {"authorization": f"Bearer {bearer}"}
    api_client = k8s.ApiClient(configuration)
    api_client.rest_client = _IdentityRESTClient(configuration, user, groups, _timeouts())
    return api_client


def api_client_for(identity: Identity) -> Any:
    """The raw ``ApiClient`` acting as ``identity`` (cached); product code calls the typed functions below."""
    if settings.IMM_KUBE_AUTH_MODE == "passthrough":
        if not identity.token:
            raise UpstreamUnavailable(
                KUBERNETES,
                "pass-through mode needs the user's token, which this request lacks",
                code="kubernetes_no_user_token",
            )
        token = identity.token
        digest = hashlib.sha256(token.encode()).hexdigest()
        return _cache.get(("passthrough", digest), lambda base: _build(base, None, [], token))
    user = impersonation_user(identity)
    groups = impersonation_groups(identity)
    key = ("impersonate", user, *groups)
    return _cache.get(key, lambda base: _build(base, user, groups, None))


def service_api_client() -> Any:
    """The management API's own identity, for provisioning and health checks only."""
    return _cache.get(("service",), lambda base: _build(base, None, [], None))


def service_api(name: str) -> Any:
    """A generated API acting as the management API's own identity."""
    return _Translated(getattr(k8s, name)(service_api_client()), starting_is_unavailable=True)


def self_subject_review(identity: Identity) -> tuple[str, list[str]]:
    """Ask Kubernetes who ``identity`` is to it: proves impersonation end to end."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = _json_as(identity, "AuthenticationV1Api", "create_self_subject_review", body=body)
    user_info = (review.get("status") or {}).get("userInfo") or {}
    return str(user_info.get("username")), list(user_info.get("groups") or [])


#: The generated API classes this module calls (``tests`` check the list against the calls).
API_CLASSES = (
    "AppsV1Api",
    "AuthenticationV1Api",
    "AuthorizationV1Api",
    "CoordinationV1Api",
    "CoreV1Api",
    "CustomObjectsApi",
    "NetworkingV1Api",
    "RbacAuthorizationV1Api",
    "VersionApi",
)


def load_api_classes() -> None:
    """Import the generated API classes now, at process start, not on the first request that needs one.

    The client loads them lazily, and the first use of one builds its pydantic validators: about 1.7 s
    of CPU for the nine (0.9 s for ``CoreV1Api`` alone) on the development machine, which otherwise lands
    on the first request each gunicorn worker serves after a start or a rollout.
    """
    for name in API_CLASSES:
        getattr(k8s, name)


def ping() -> None:
    """Readiness: the API server answers the management API's own identity."""
    service_api("VersionApi").get_code(_request_timeout=settings.IMM_READINESS_TIMEOUT_SECONDS)


# --- the typed façade: one function per resource and verb, acting AS a user ---------------------------
# Product code asks for what it means (``read_config_map``), never for an SDK class by name, and gets
# the API server's JSON as plain dicts (camelCase keys, timestamps as RFC 3339 strings), never the
# generated models: one shape everywhere, the same the controller and the lists already read. Every
# function maps SDK errors to domain errors (``translate``), and a 403 from an API server that is still
# starting is the 503 it really is. Lists return the List object (``items`` and ``metadata.continue``).
def _raw_json(
    api_client: Any, api_name: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, starting: bool
) -> dict[str, Any]:
    """One generated call, its body unread by the SDK and parsed as JSON (no models are built)."""
    with kube_errors(starting_is_unavailable=starting):
        response = getattr(getattr(k8s, api_name)(api_client), method)(*args, _preload_content=False, **kwargs)
        body: dict[str, Any] = json.loads(response.data or b"{}")
    return body


def _json_as(identity: Identity, api_name: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a generated method AS ``identity`` and return the response body as the API's JSON."""
    return _raw_json(api_client_for(identity), api_name, method, args, kwargs, starting=True)


def _list_arguments(label_selector: str, limit: int | None, continue_token: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if label_selector:
        arguments["label_selector"] = label_selector
    if limit is not None:
        arguments["limit"] = limit
    if continue_token:
        arguments["_continue"] = continue_token
    return arguments


def timestamp_iso(value: object) -> str | None:
    """An API timestamp (``2024-01-02T03:04:05Z``) as ``datetime.isoformat()`` writes it (``+00:00``),
    the form the API's answers have always carried; None for an absent one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return value


# namespaces
def read_namespace(identity: Identity, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "read_namespace", name)


def create_namespace(identity: Identity, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "create_namespace", body=body)


def patch_namespace(identity: Identity, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "patch_namespace", name, patch)


def delete_namespace(identity: Identity, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "delete_namespace", name)


def namespaces(
    identity: Identity, *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
) -> dict[str, Any]:
    """Namespaces (matching ``label_selector``) as the caller lists them: one page of the List object."""
    return _json_as(identity, "CoreV1Api", "list_namespace", **_list_arguments(label_selector, limit, continue_token))


# secrets (written only: nobody reads a tenant's secrets through the API)
def create_secret(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "create_namespaced_secret", namespace, body)


def replace_secret(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "replace_namespaced_secret", name, namespace, body)


def delete_secret(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "delete_namespaced_secret", name, namespace)


# resource quotas
def read_resource_quota(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "read_namespaced_resource_quota", name, namespace)


def create_resource_quota(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "create_namespaced_resource_quota", namespace, body)


def replace_resource_quota(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "replace_namespaced_resource_quota", name, namespace, body)


def delete_resource_quota(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "delete_namespaced_resource_quota", name, namespace)


def resource_quotas(identity: Identity, namespace: str) -> dict[str, Any]:
    """The namespace's ResourceQuotas (the List object)."""
    return _json_as(identity, "CoreV1Api", "list_namespaced_resource_quota", namespace)


# config maps
def config_maps(
    identity: Identity,
    namespace: str,
    *,
    label_selector: str = "",
    limit: int | None = None,
    continue_token: str | None = None,
) -> dict[str, Any]:
    return _json_as(
        identity,
        "CoreV1Api",
        "list_namespaced_config_map",
        namespace,
        **_list_arguments(label_selector, limit, continue_token),
    )


def read_config_map(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "read_namespaced_config_map", name, namespace)


def create_config_map(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "create_namespaced_config_map", namespace, body)


def replace_config_map(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "replace_namespaced_config_map", name, namespace, body)


def delete_config_map(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "delete_namespaced_config_map", name, namespace)


# service accounts
def service_accounts(
    identity: Identity,
    namespace: str,
    *,
    label_selector: str = "",
    limit: int | None = None,
    continue_token: str | None = None,
) -> dict[str, Any]:
    return _json_as(
        identity,
        "CoreV1Api",
        "list_namespaced_service_account",
        namespace,
        **_list_arguments(label_selector, limit, continue_token),
    )


def read_service_account(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "read_namespaced_service_account", name, namespace)


def create_service_account(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "create_namespaced_service_account", namespace, body)


def delete_service_account(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "delete_namespaced_service_account", name, namespace)


# an endpoint's children: Deployments, ReplicaSets, pods, Services, events (read only)
def deployments(identity: Identity, namespace: str, *, label_selector: str = "") -> dict[str, Any]:
    """The namespace's Deployments matching ``label_selector`` (the List object)."""
    return _json_as(
        identity, "AppsV1Api", "list_namespaced_deployment", namespace, **_list_arguments(label_selector, None, None)
    )


def read_deployment(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "AppsV1Api", "read_namespaced_deployment", name, namespace)


def replica_sets(identity: Identity, namespace: str, *, label_selector: str = "") -> dict[str, Any]:
    """The namespace's ReplicaSets matching ``label_selector`` (the List object)."""
    return _json_as(
        identity, "AppsV1Api", "list_namespaced_replica_set", namespace, **_list_arguments(label_selector, None, None)
    )


def pods(identity: Identity, namespace: str, *, label_selector: str = "") -> dict[str, Any]:
    """The namespace's pods matching ``label_selector`` (the List object)."""
    return _json_as(
        identity, "CoreV1Api", "list_namespaced_pod", namespace, **_list_arguments(label_selector, None, None)
    )


def read_service(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "CoreV1Api", "read_namespaced_service", name, namespace)


def events(identity: Identity, namespace: str, *, field_selector: str = "") -> dict[str, Any]:
    """The namespace's events matching ``field_selector`` (events carry no labels: they are found by the
    object they are about, ``involvedObject.name=<name>``)."""
    arguments = {"field_selector": field_selector} if field_selector else {}
    return _json_as(identity, "CoreV1Api", "list_namespaced_event", namespace, **arguments)


# pods
def pod_log(identity: Identity, namespace: str, name: str, *, container: str, tail_lines: int) -> str:
    """The last ``tail_lines`` lines of one container's log, as text."""
    api_client = api_client_for(identity)
    with kube_errors(starting_is_unavailable=True):
        # Unread (``_preload_content=False``): the raw urllib3 answer, whatever the stubs say it returns.
        response: Any = k8s.CoreV1Api(api_client).read_namespaced_pod_log(
            name, namespace, container=container, tail_lines=tail_lines, _preload_content=False
        )
        data = response.data or b""
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)


# roles, role bindings, network policies
def create_role(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "create_namespaced_role", namespace, body)


def replace_role(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "replace_namespaced_role", name, namespace, body)


def delete_role(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "delete_namespaced_role", name, namespace)


def read_role_binding(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "read_namespaced_role_binding", name, namespace)


def create_role_binding(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "create_namespaced_role_binding", namespace, body)


def replace_role_binding(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "replace_namespaced_role_binding", name, namespace, body)


def delete_role_binding(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "RbacAuthorizationV1Api", "delete_namespaced_role_binding", name, namespace)


def create_network_policy(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "NetworkingV1Api", "create_namespaced_network_policy", namespace, body)


def replace_network_policy(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(identity, "NetworkingV1Api", "replace_namespaced_network_policy", name, namespace, body)


def delete_network_policy(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(identity, "NetworkingV1Api", "delete_namespaced_network_policy", name, namespace)


# InferenceEndpoint custom objects
def endpoints(
    identity: Identity, namespace: str, *, limit: int | None = None, continue_token: str | None = None
) -> dict[str, Any]:
    """The namespace's InferenceEndpoints (the List object: ``items`` and ``metadata``)."""
    return _json_as(
        identity,
        "CustomObjectsApi",
        "list_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        **_list_arguments("", limit, continue_token),
    )


def endpoints_everywhere(identity: Identity) -> dict[str, Any]:
    """Every namespace's InferenceEndpoints (platform admins; others get the API server's 403)."""
    return _json_as(
        identity, "CustomObjectsApi", "list_cluster_custom_object", resources.GROUP, resources.VERSION, resources.PLURAL
    )


def read_endpoint(identity: Identity, namespace: str, name: str) -> dict[str, Any]:
    return _json_as(
        identity,
        "CustomObjectsApi",
        "get_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        name,
    )


def create_endpoint(identity: Identity, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_as(
        identity,
        "CustomObjectsApi",
        "create_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        body,
    )


def patch_endpoint(
    identity: Identity, namespace: str, name: str, patch: Any, *, content_type: str = MERGE_PATCH
) -> dict[str, Any]:
    """Patch the CR: a merge patch (a dict) or, with ``content_type=JSON_PATCH``, a list of operations."""
    return _json_as(
        identity,
        "CustomObjectsApi",
        "patch_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        name,
        patch,
        _content_type=content_type,
    )


def scale_endpoint(identity: Identity, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch the CR's scale subresource (``spec.replicas``, guarded by ``metadata.resourceVersion``)."""
    return _json_as(
        identity,
        "CustomObjectsApi",
        "patch_namespaced_custom_object_scale",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        name,
        patch,
        _content_type=MERGE_PATCH,
    )


def delete_endpoint(
    identity: Identity, namespace: str, name: str, *, propagation_policy: str = "Background"
) -> dict[str, Any]:
    return _json_as(
        identity,
        "CustomObjectsApi",
        "delete_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        name,
        propagation_policy=propagation_policy,
    )


def delete_endpoints(identity: Identity, namespace: str) -> dict[str, Any]:
    """Delete every InferenceEndpoint of the namespace (one collection delete)."""
    return _json_as(
        identity,
        "CustomObjectsApi",
        "delete_collection_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
    )


# --- the typed façade, as the management API's own identity -------------------------------------------
# Only for what no user may do or see (provisioning's copy of the platform's TLS secret, the tenant
# rule's "is this a tenant" read, quota recounts): the same shape, the same error translation.
def _json_platform(api_name: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a generated method as the management API itself and return the response body as JSON."""
    return _raw_json(service_api_client(), api_name, method, args, kwargs, starting=True)


def platform_read_namespace(name: str) -> dict[str, Any]:
    return _json_platform("CoreV1Api", "read_namespace", name)


def platform_namespaces(
    *, label_selector: str = "", limit: int | None = None, continue_token: str | None = None
) -> dict[str, Any]:
    """Namespaces (matching ``label_selector``) as one List object: all of them, or a page with ``limit``."""
    return _json_platform("CoreV1Api", "list_namespace", **_list_arguments(label_selector, limit, continue_token))


def platform_deployments_everywhere(*, label_selector: str = "") -> dict[str, Any]:
    """Every namespace's Deployments matching ``label_selector`` (the usage sampler's count of replicas)."""
    return _json_platform(
        "AppsV1Api", "list_deployment_for_all_namespaces", **_list_arguments(label_selector, None, None)
    )


def platform_resource_quotas_everywhere() -> dict[str, Any]:
    """Every namespace's ResourceQuotas (the usage sampler's limits)."""
    return _json_platform("CoreV1Api", "list_resource_quota_for_all_namespaces")


def platform_read_secret(namespace: str, name: str) -> dict[str, Any]:
    return _json_platform("CoreV1Api", "read_namespaced_secret", name, namespace)


def platform_replace_resource_quota_status(namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_platform("CoreV1Api", "replace_namespaced_resource_quota_status", name, namespace, body)


def platform_read_endpoint(namespace: str, name: str) -> dict[str, Any]:
    return _json_platform(
        "CustomObjectsApi",
        "get_namespaced_custom_object",
        resources.GROUP,
        resources.VERSION,
        namespace,
        resources.PLURAL,
        name,
    )


# The inference host claims (endpoints/hosts.py): Leases the management API keeps as itself.
def platform_create_lease(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _json_platform("CoordinationV1Api", "create_namespaced_lease", namespace, body)


def platform_read_lease(namespace: str, name: str) -> dict[str, Any]:
    return _json_platform("CoordinationV1Api", "read_namespaced_lease", name, namespace)


def platform_delete_lease(namespace: str, name: str, *, preconditions: dict[str, str]) -> dict[str, Any]:
    """Delete the Lease only if it is still the one read (``uid``, and ``resourceVersion`` if given)."""
    return _json_platform(
        "CoordinationV1Api", "delete_namespaced_lease", name, namespace, body={"preconditions": preconditions}
    )


def platform_delete_leases(namespace: str, *, label_selector: str) -> dict[str, Any]:
    return _json_platform(
        "CoordinationV1Api", "delete_collection_namespaced_lease", namespace, label_selector=label_selector
    )


# --- a process's own identity (the controller) --------------------------------------------------------
# The controller is no user's agent: it acts as itself, with the ClusterRole of
# helm/imm/files/rbac/controller.yaml. These primitives return the API's JSON as plain dicts
# (camelCase, exactly as sent) because the controller treats objects as data: it renders, applies and
# compares them, and the generated models would only be converted back.
class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): the caller must list again."""


def own_api_client(kubeconfig: str, *, context: str | None = None, impersonate: str | None = None) -> Any:
    """A client that acts as the holder of ``kubeconfig`` (not as a user of the API).

    ``impersonate`` makes it act as that user instead: with an admin kubeconfig it lets a developer
    or a test run the controller with exactly the rights the controller's own identity would have.
    """
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise UpstreamUnavailable(
            KUBERNETES, f"{kubeconfig} cannot be loaded: {type(exc).__name__}", code="kubernetes_not_configured"
        ) from None
    configuration.retries = _retries()
    api_client = k8s.ApiClient(configuration)
    api_client.rest_client = _IdentityRESTClient(configuration, impersonate, [], _timeouts())
    return api_client


def api_of(api_client: Any, name: str) -> Any:
    """A generated API (``"CoordinationV1Api"``, ...) on a client from ``own_api_client``."""
    return _Translated(getattr(k8s, name)(api_client))


def call_json(api_client: Any, api_name: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a generated method and return the response body as the API's JSON."""
    return _raw_json(api_client, api_name, method, args, kwargs, starting=False)


_dynamic_clients: dict[int, Any] = {}
_dynamic_lock = threading.Lock()


def _dynamic(api_client: Any) -> Any:
    from kubernetes import dynamic

    with _dynamic_lock:
        found = _dynamic_clients.get(id(api_client))
        if found is None:
            with kube_errors():
                found = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
            _dynamic_clients[id(api_client)] = found
        return found


def server_side_apply(api_client: Any, manifest: dict[str, Any], field_manager: str) -> dict[str, Any]:
    """Apply ``manifest`` (server-side apply, conflicts forced): create or converge in one idempotent call.

    Forcing is right for a controller: the fields it renders are its own by definition, and a manual
    edit of them is drift to undo.

    The body is sent as UTF-8 JSON written here: the SDK's own ``json.dumps`` escapes a character
    outside the Basic Multilingual Plane (an emoji in a subject name) as a surrogate pair, which the
    API server's YAML decoder of apply patches refuses ("invalid Unicode character escape code"), so
    such an endpoint could never be rendered.
    """
    client = _dynamic(api_client)
    metadata = manifest["metadata"]
    body = json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    with kube_errors():
        resource = client.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        applied = client.server_side_apply(
            resource,
            body=body,
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            field_manager=field_manager,
            force_conflicts=True,
        )
    result: dict[str, Any] = applied.to_dict()
    return result


def watch_json(
    api_client: Any,
    api_name: str,
    method: str,
    *args: Any,
    resource_version: str,
    timeout_seconds: int = 300,
    **kwargs: Any,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Events ``(type, object)`` of one watch request, from ``resource_version`` on.

    Ends when the server closes the watch (after ``timeout_seconds``); raises WatchExpired on 410 so
    the caller lists again. Bookmarks are asked for, so a quiet watch still advances its version.
    The client library's own ``Watch`` is not used: with raw JSON it cannot report a 410.
    """
    connect, _ = _timeouts()
    try:
        with kube_errors():
            response = getattr(getattr(k8s, api_name)(api_client), method)(
                *args,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=(connect, timeout_seconds + 30),
                **kwargs,
            )
    except Expired as exc:
        raise WatchExpired(str(exc)) from None
    try:
        buffer = b""
        with kube_errors(observed=False):
            for chunk in response.stream(amt=65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired(str(obj.get("message", "")))
                        raise UpstreamError(KUBERNETES, f"watch failed: {obj.get('message', obj)}")
                    yield str(event.get("type")), obj
    finally:
        response.close()
        response.release_conn()


def access_allowed(
    identity: Identity,
    *,
    verb: str,
    resource: str,
    namespace: str = "",
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> bool:
    """Ask Kubernetes whether ``identity`` may do this (a SelfSubjectAccessReview as that user).

    Object-store calls use the platform's credentials, so the model and upload routes must ask
    Kubernetes RBAC first: the tenant's Role is the only source of truth for who may act there.
    """
    attributes = {"verb": verb, "resource": resource, "group": group}
    for key, value in (("namespace", namespace), ("subresource", subresource), ("name", name)):
        if value:
            attributes[key] = value
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    review = create_self_subject_access_review(identity, body)
    return bool((review.get("status") or {}).get("allowed"))


def create_self_subject_access_review(identity: Identity, body: dict[str, Any]) -> dict[str, Any]:
    """The SelfSubjectAccessReview ``body``, answered by Kubernetes for ``identity`` (``status.allowed``)."""
    return _json_as(identity, "AuthorizationV1Api", "create_self_subject_access_review", body=body)


# --- robots: service-account tokens -------------------------------------------------------------------
class TokenReviewAnswer:
    """What Kubernetes said of a bearer token: who it is, or that it is not valid (and why)."""

    def __init__(self, *, authenticated: bool, username: str, audiences: list[str], error: str) -> None:
        self.authenticated = authenticated
        self.username = username
        self.audiences = audiences
        self.error = error


def token_review(token: str, audiences: list[str]) -> TokenReviewAnswer:
    """Ask Kubernetes whether ``token`` is valid for one of ``audiences`` (as the management API itself).

    A TokenReview is the only way to verify a service-account token: a bound token is valid only while
    its ServiceAccount (same UID) exists, which no local signature check can know. It is made with the
    management API's own identity (``tokenreviews create`` in helm/imm/files/rbac/management-api.yaml):
    there is no user yet to act as.
    """
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    }
    review = service_api("AuthenticationV1Api").create_token_review(body=body)
    status = review.status
    user = status.user if status is not None else None
    return TokenReviewAnswer(
        authenticated=bool(status is not None and status.authenticated),
        username=str(user.username) if user is not None and user.username else "",
        audiences=list(status.audiences or []) if status is not None else [],
        error=str(status.error or "") if status is not None else "",
    )


def service_account_token(
    identity: Identity, namespace: str, name: str, *, audience: str, seconds: int
) -> dict[str, Any]:
    """A bound token of the ServiceAccount ``namespace/name`` (the TokenRequest API), requested AS ``identity``.

    Returns the TokenRequest's status as JSON (``token``, ``expirationTimestamp``). Never a Secret: the token
    expires and dies with the ServiceAccount.
    """
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": seconds},
    }
    return create_service_account_token(identity, namespace, name, body).get("status") or {}


def create_service_account_token(identity: Identity, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The TokenRequest ``body`` for ServiceAccount ``namespace/name``, answered (``status.token``)."""
    return _json_as(identity, "CoreV1Api", "create_namespaced_service_account_token", name, namespace, body)
