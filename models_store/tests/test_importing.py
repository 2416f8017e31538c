"""Archive member names and import URLs: what the worker refuses before touching anything."""

from __future__ import annotations

import pytest
from django.test import override_settings

from inferencemgmt.errors import BadRequest
from models_store.importing import member_path, public_address, url_checked

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


# Issue 17, finding 7: IPv6 forms whose packets go to an embedded IPv4, and numeric spellings of
# loopback. getaddrinfo parses these literals itself: nothing is looked up, nothing is connected to.
EMBEDDING_LOCAL_IPV4 = [
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:0:7f00:1",  # SIIT ::ffff:0:a.b.c.d
    "::ffff:0:a00:7",  # SIIT, 10.0.0.7
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",  # NAT64, the metadata address 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64 (never public, whatever it embeds)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:7::1",  # 6to4 of 10.0.0.7
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (obfuscated)
    "2001:0:a00:7:8000:63bf:3fff:fdd2",  # Teredo, server 10.0.0.7
    "2606:4700::5efe:a00:7",  # ISATAP interface identifier around 10.0.0.7
    "::",
    "ff0e::1",  # multicast (is_global says yes)
    "fe80::1",
    "fc00::1",
]


@pytest.mark.parametrize("address", EMBEDDING_LOCAL_IPV4)
def test_ipv6_forms_that_embed_a_local_ipv4_are_refused(address):
    with pytest.raises(BadRequest) as caught:
        url_checked(f"http://[{address}]:8080/model.onnx")
    assert caught.value.code == "source_private"


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/x",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/x",
        "http://017700000001/x",
        "http://127.1/x",
        "http://0/x",
        "http://224.0.0.1/x",  # multicast
        "http://255.255.255.255/x",
        "http://100.64.0.1/x",  # carrier-grade NAT
    ],
)
def test_other_spellings_of_local_addresses_are_refused(url):
    with pytest.raises(BadRequest) as caught:
        url_checked(url)
    assert caught.value.code == "source_private"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1", True),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address
        ("2002:5db8:d822::1", True),  # 6to4 of a public address
        ("2606:4700::200:5efe:5db8:d822", True),  # ISATAP around a public address
        *((address, False) for address in EMBEDDING_LOCAL_IPV4),
        ("fe80::1%eth0", False),
        ("127.0.0.1", False),
    ],
)
def test_public_address_looks_inside_ipv6(address, public):
    assert public_address(address) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/a\x00b",
        "http://93.184.216.34/x?y=\x00",
        "http://93.184.216.34/a b",
        "http://93.184.216.34/\n",
    ],
)
def test_urls_with_control_characters_or_spaces_are_refused_before_anything_else(url):
    """A NUL stored in the operation's parameters is a database error (a 500) on PostgreSQL."""
    with pytest.raises(BadRequest) as caught:
        url_checked(url)
    assert caught.value.code == "source_invalid"


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
