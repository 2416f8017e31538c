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
