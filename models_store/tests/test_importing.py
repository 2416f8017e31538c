"""Archive member names and import URLs: what the worker refuses before touching anything."""

from __future__ import annotations

import pytest
from django.test import override_settings

from inferencemgmt.errors import BadRequest
from models_store.importing import member_path, url_checked

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("saved_model.pb", "saved_model.pb"),
        ("./saved_model.pb", "saved_model.pb"),
        ("././variables/", "variables"),
        ("variables/v.data", "variables/v.data"),
        ("..", None),
        ("../escape", None),
        ("a/../../escape", None),
        ("/etc/passwd", None),
        ("./", None),
        ("a//b", None),
        ("bad\x00name", None),
    ],
)
def test_member_paths(name, expected):
    assert member_path(name) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/model.onnx",
        "http://localhost/model.onnx",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/x",
        "http://[::1]/x",
    ],
)
def test_private_and_local_addresses_are_refused(url):
    with pytest.raises(BadRequest) as caught:
        url_checked(url)
    assert caught.value.code == "source_private"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "s4://x/y"])
def test_only_http_urls_with_a_host(url):
    with pytest.raises(BadRequest) as caught:
        url_checked(url)
    assert caught.value.code == "source_invalid"


@override_settings(IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES=True)
def test_private_addresses_when_allowed():
    assert url_checked("http://127.0.0.1:8080/model.onnx") == "http://127.0.0.1:8080/model.onnx"


class _Recorder:
    """A loopback HTTP server that records the Host header and path of each request."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[tuple[str, str]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.headers["Host"], self.path))
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/files/model.onnx?v=1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"model")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@override_settings(IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES=True)
def test_each_hop_connects_to_the_address_it_checked(monkeypatch):
    """DNS rebinding: a name that resolves elsewhere on a second lookup is never looked up again."""
    import socket

    from models_store import importing

    recorder = _Recorder()
    lookups: list[str] = []
    real_resolver = socket.getaddrinfo

    def rebinding_resolver(host, port, *args, **kwargs):
        if host != "model.example":  # the connection itself, to an address literal
            return real_resolver(host, port, *args, **kwargs)
        lookups.append(host)
        # Two hops need two lookups; a third (the same name looked up again to connect) would
        # lead to an unroutable address.
        address = "127.0.0.1" if len(lookups) <= 2 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
    try:
        response = importing.url_open(f"http://model.example:{recorder.port}/moved")
        assert response.status == 200
        assert response.read() == b"model"
        response.release_conn()
    finally:
        recorder.server.shutdown()
    assert lookups == ["model.example", "model.example"]  # one per hop: the redirect and its target
    assert recorder.seen == [
        (f"model.example:{recorder.port}", "/moved"),
        (f"model.example:{recorder.port}", "/files/model.onnx?v=1"),
    ]


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    """All the addresses a name resolves to are checked, not only the first."""
    import socket

    from models_store import importing

    def resolver(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.8", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(BadRequest) as caught:
        importing.url_open("http://mixed.example/model.onnx")
    assert caught.value.code == "source_private"
