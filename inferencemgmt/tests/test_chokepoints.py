"""kube.py and objectstore.py: error mapping, impersonation on the wire, unreachable upstreams.

No fake Kubernetes or S3: the unreachable cases point the real clients at a closed local port, and
the impersonation case reads the headers the real client sends to a local socket that only records
them.
"""

from __future__ import annotations

import socket
import threading

import pytest
from botocore.exceptions import ClientError
from kubernetes.client.exceptions import ApiException

from inferencemgmt import kube, objectstore
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest, Conflict, Forbidden, NotFound, UpstreamError, UpstreamUnavailable

pytestmark = pytest.mark.unit


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _kubeconfig(tmp_path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{token: service-token}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
    )
    return str(path)


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (403, Forbidden, "kubernetes_forbidden"),
        (404, NotFound, "kubernetes_not_found"),
        (409, Conflict, "kubernetes_conflict"),
        (422, BadRequest, "kubernetes_invalid"),
        (401, UpstreamError, "kubernetes_unauthorized"),
        (503, UpstreamUnavailable, "kubernetes_unavailable"),
        (429, UpstreamUnavailable, "kubernetes_unavailable"),
    ],
)
def test_kubernetes_errors_map_to_domain_errors(status, error_type, code):
    exc = ApiException(status=status, reason="Reason", body='{"kind": "Status", "message": "namespaces \\"t\\" x"}')
    error = kube.translate(exc)
    assert type(error) is error_type
    assert error.code == code
    assert error.status in (status, 400, 502, 503)


def test_forbidden_keeps_the_original_title_words():
    error = kube.translate(ApiException(status=403, reason="Forbidden", body="{}"))
    assert error.title == "K8s forbidden: Forbidden"
    assert error.status == 403


def test_unreachable_kubernetes_is_503_naming_it(tmp_path, settings):
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    settings.IMM_KUBE_RETRIES = 0
    with pytest.raises(UpstreamUnavailable) as raised:
        kube.self_subject_review(Identity("alice@example.com", ("team-a",)))
    assert raised.value.code == "kubernetes_unavailable"
    assert raised.value.title == "Kubernetes is unavailable"
    assert raised.value.retry_after == 5


def test_unconfigured_kubernetes_is_503_naming_it(settings):
    settings.IMM_KUBECONFIG = ""
    with pytest.raises(UpstreamUnavailable) as raised:
        kube.ping()
    assert raised.value.code == "kubernetes_not_configured"


class _HeaderRecorder:
    """A local socket that records the head of one request and answers 500 (so the client gives up)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.captured: list[bytes] = []
        self.thread = threading.Thread(target=self._answer_once, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _answer_once(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            self.captured.append(data)
            connection.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def head(self) -> bytes:
        self.thread.join(timeout=5)
        self.listener.close()
        return self.captured[0]


def _impersonation_lines(head: bytes) -> list[tuple[str, bytes]]:
    lines = head.split(b"\r\n")
    found = []
    for line in lines:
        name, _, value = line.partition(b":")
        if name.lower() in (b"impersonate-user", b"impersonate-group"):
            found.append((name.decode().lower(), value.strip(b" ")))
    return found


def test_impersonation_headers_on_the_wire(tmp_path, settings):
    """One Impersonate-Group line per group, no system: group, the service token as credential."""
    recorder = _HeaderRecorder()
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, recorder.url)
    settings.IMM_KUBE_RETRIES = 0
    identity = Identity("alice@example.com", ("team-a", "team-b", "system:masters"), token="user-token")
    with pytest.raises(UpstreamUnavailable):
        kube.self_subject_review(identity)
    head = recorder.head().decode("latin-1").lower()
    assert "impersonate-user: alice@example.com" in head
    assert head.count("impersonate-group:") == 2
    assert "impersonate-group: team-a\r\n" in head
    assert "impersonate-group: team-b\r\n" in head
    assert "system:masters" not in head
    assert "authorization: bearer service-token" in head
    assert "user-token" not in head


# Every spelling of a reserved group an identity provider could be tricked into asserting: the API
# server trims header values (" system:masters" arrives as system:masters), and the others are
# look-alikes or hide characters no log shows.
HOSTILE_GROUPS = (
    " system:masters",
    "system:masters ",
    "\tsystem:masters",
    "System:Masters",
    "SYSTEM:masters",
    "\uff53\uff59\uff53\uff54\uff45\uff4d:masters",  # full-width letters, NFKC "system:masters"
    "system\uff1amasters",  # full-width colon
    "\u017fystem:masters",  # long s, NFKC "system:masters"
    "\u00a0system:masters",  # no-break space
    "\u200bsystem:masters",  # zero-width space
    "team-a\u200b",  # a look-alike of team-a
    "team-a\r\nImpersonate-Group: system:masters",
    "",
)


def test_hostile_group_names_never_reach_the_wire(tmp_path, settings):
    """Finding 3 of issue 17: only names Kubernetes reads exactly as asserted are sent, UTF-8 encoded."""
    recorder = _HeaderRecorder()
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, recorder.url)
    settings.IMM_KUBE_RETRIES = 0
    identity = Identity("j\u00f6rg@example.com", ("team-a", *HOSTILE_GROUPS, "\u00c9quipe IA", "Domain Users"))
    with pytest.raises(UpstreamUnavailable):
        kube.self_subject_review(identity)
    lines = _impersonation_lines(recorder.head())
    assert lines == [
        ("impersonate-user", "j\u00f6rg@example.com".encode()),
        ("impersonate-group", b"team-a"),
        ("impersonate-group", "\u00c9quipe IA".encode()),
        ("impersonate-group", b"Domain Users"),
    ]


@pytest.mark.parametrize(
    "username",
    [
        " admin@example.com",
        "admin@example.com\n",
        "system:admin",
        "System:serviceaccount:kube-system:default",
        "\uff53ystem:admin",
        "alice @example.com",
        "alice\u200b@example.com",
        "\uff41lice@example.com",  # full-width a
        "a" * 151,
        "",
    ],
)
def test_a_user_name_that_is_not_a_plain_identity_is_refused_before_anything_is_sent(tmp_path, settings, username):
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(Forbidden) as raised:
        kube.self_subject_review(Identity(username, ("team-a",)))
    assert raised.value.status == 403
    assert raised.value.code == "impersonation_refused"


def test_client_cache_is_bounded(tmp_path, settings):
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, "http://127.0.0.1:1")
    settings.IMM_KUBE_CLIENT_CACHE_SIZE = 2
    first = kube.api_client_for(Identity("a@example.com"))
    assert kube.api_client_for(Identity("a@example.com")) is first
    for name in ("b", "c", "d"):
        kube.api_client_for(Identity(f"{name}@example.com"))
    assert kube.api_client_for(Identity("a@example.com")) is not first


def test_passthrough_mode_sends_the_users_token_and_no_impersonation(tmp_path, settings):
    settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, "http://127.0.0.1:1")
    settings.IMM_KUBE_AUTH_MODE = "passthrough"
    api_client = kube.api_client_for(Identity("a@example.com", token="user-token"))
    assert api_client.configuration.api_key == {"authorization": "Bearer user-token"}
    with pytest.raises(UpstreamUnavailable, match="pass-through"):
        kube.api_client_for(Identity("a@example.com"))


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("NoSuchBucket", NotFound),
        ("NoSuchKey", NotFound),
        ("AccessDenied", Forbidden),
        ("BucketAlreadyOwnedByYou", Conflict),
        ("InvalidAccessKeyId", UpstreamError),
        ("SlowDown", UpstreamUnavailable),
    ],
)
def test_object_store_errors_map_to_domain_errors(code, error_type):
    exc = ClientError({"Error": {"Code": code, "Message": "msg"}}, "GetObject")
    assert type(objectstore.translate(exc)) is error_type


def test_unreachable_object_store_is_503_naming_it(settings):
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{_closed_port()}"
    settings.S3_ACCESS_KEY_ID = "key"
    settings.S3_SECRET_ACCESS_KEY = "secret"
    settings.S3_MAX_ATTEMPTS = 1
    with pytest.raises(UpstreamUnavailable) as raised:
        objectstore.bucket_exists("t1")
    assert raised.value.code == "object_store_unavailable"
    assert raised.value.title == "Object store is unavailable"


@pytest.mark.django_db
def test_readyz_names_what_is_down(api, settings):
    settings.IMM_KUBECONFIG = ""
    settings.S3_ENDPOINT_URL = ""
    settings.OIDC_ISSUER = ""
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["checks"]["database"] == {"ok": True}
    down = {name for name, outcome in body["checks"].items() if not outcome["ok"]}
    assert down == {"redis", "kubernetes", "object store", "identity provider"}
    assert body["description"] == "Unavailable: redis, kubernetes, object store, identity provider"
    assert response["Retry-After"] == "5"


class _RefusingServer:
    """A local HTTP socket that refuses every request (403) and answers /readyz with a set status."""

    def __init__(self, readyz_status: int) -> None:
        import http.server

        readyz = readyz_status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = readyz if self.path.startswith("/readyz") else 403
                body = b'{"kind": "Status", "message": "refused"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.mark.parametrize(
    ("readyz", "error_type", "code"),
    [(500, UpstreamUnavailable, "kubernetes_unavailable"), (200, Forbidden, "kubernetes_forbidden")],
)
def test_a_403_from_an_api_server_that_is_not_ready_is_a_503(tmp_path, settings, monkeypatch, readyz, error_type, code):
    """A restarted API server refuses everyone until its authorizer has loaded the roles."""
    server = _RefusingServer(readyz)
    try:
        settings.IMM_KUBECONFIG = _kubeconfig(tmp_path, server.url)
        settings.IMM_KUBE_RETRIES = 0
        monkeypatch.setattr(kube, "_ready_until", 0.0)
        with pytest.raises(error_type) as raised:
            kube.config_maps(Identity("alice@example.com", ("team-a",)), "t1")
        assert raised.value.code == code
    finally:
        server.server.shutdown()
