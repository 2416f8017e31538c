"""Key sanitising, part numbers, version policies and part-size planning: pure functions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencemgmt.api.validation import matches
from inferencemgmt.errors import BadRequest
from models_store import keys
from models_store.api.body import IncompleteBody, RequestBody
from models_store.policy import served_versions

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("model", "version", "file_name", "directory", "expected"),
    [
        ("resnet", 1, "saved_model.pb", None, "resnet/1/saved_model.pb"),
        ("resnet", 12, "data.bin", "variables", "resnet/12/variables/data.bin"),
        ("resnet", 1, "a/b/c.txt", "x/y", "resnet/1/x/y/a/b/c.txt"),
        ("res.net-v2", 3, "file..name", "", "res.net-v2/3/file..name"),
    ],
)
def test_object_key(model, version, file_name, directory, expected):
    assert keys.object_key(model, version, file_name, directory) == expected


@pytest.mark.parametrize(
    ("model", "file_name", "directory", "param", "reason"),
    [
        ("..", "f", None, "modelName", "too short"),
        ("a/b/c", "f", None, "modelName", "one path segment"),
        ("abc", "../../etc/passwd", None, "fileName", "'..'"),
        ("abc", "/etc/passwd", None, "fileName", "Absolute"),
        ("abc", "f", "/srv", "key", "Absolute"),
        ("abc", "f", "a/../..", "key", "'..'"),
        ("abc", "f", "a//b", "key", "Empty path segments"),
        ("abc", "f", "a/", "key", "Empty path segments"),
        ("abc", "f\x00.pb", None, "fileName", "Control"),
        ("ab\nc", "f", None, "modelName", "Control"),
        ("abc", "f\x7f", None, "fileName", "Control"),
        ("abc", "f\u0085", None, "fileName", "Control"),
        ("abc", "./f", None, "fileName", "'.'"),
        ("abc", "", None, "fileName", "empty"),
        ("abc", "x" * 1100, None, "fileName", "1024 bytes"),
        # Issue 17, finding 6: a backslash reached the store, whose own normalisation alone stopped
        # the traversal; its siblings are the other separators and the look-alike dots.
        ("abc", "..\\..\\x", None, "fileName", "Backslashes"),
        ("abc", "f", "a\\b", "key", "Backslashes"),
        ("a\\bc", "f", None, "modelName", "Backslashes"),
        ("abc", "..\uff0f..\uff0fx", None, "fileName", "separators"),
        ("abc", "a\uff3cb", None, "fileName", "separators"),
        ("abc", "a\ufe68b", None, "fileName", "separators"),
        ("abc", "a\u2100b", None, "fileName", "separators"),
        ("abc", "\uff0e\uff0e/x", None, "fileName", "'..'"),
        ("abc", "\u2025/x", None, "fileName", "'..'"),
        ("abc", "a/\u2024", None, "fileName", "'.'"),
        ("abc", "f", "\ufe52.", "key", "'..'"),
        ("abc", "\ufe30", None, "fileName", "'..'"),
    ],
)
def test_bad_names_are_refused_naming_the_parameter(model, file_name, directory, param, reason):
    with pytest.raises(BadRequest) as caught:
        keys.object_key(model, 1, file_name, directory)
    assert caught.value.status == 400
    assert caught.value.title == "Invalid parameter"
    description = str(caught.value.description)
    assert description.startswith(f'The "{param}" parameter is invalid.')
    assert reason in description


@pytest.mark.parametrize(
    "name", ["\u2026", ".\u2025", "\uff0e\uff0e\uff0e", "a.\u2024b", "r\u00e9sum\u00e9.onnx", "a b%#+"]
)
def test_names_that_only_look_dotted_or_odd_are_kept(name):
    assert keys.object_key("resnet", 1, name) == f"resnet/1/{name}"


def test_directory_key_ends_with_a_slash_and_is_checked():
    assert keys.directory_key("resnet", 1, "variables") == "resnet/1/variables/"
    with pytest.raises(BadRequest):
        keys.directory_key("resnet", 1, "../other")


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("10000", 10000), ("42", 42)])
def test_part_numbers_in_range(raw, expected):
    assert keys.part_number(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "0", "10001", "-1", "1.5", "", " 1", "\u0661"])
def test_part_numbers_out_of_range_or_not_integers(raw):
    with pytest.raises(BadRequest) as caught:
        keys.part_number(raw)
    assert caught.value.code == "part_number_invalid"


@pytest.mark.parametrize("raw", ["0", "x", "-3", "1e3", True, 0, 2**63])
def test_bad_versions(raw):
    with pytest.raises(BadRequest):
        keys.version(raw)


def test_versions_parse_decimal_text():
    assert keys.version("007") == 7
    assert keys.version(12) == 12


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("resnet/1/model.pb", ("resnet", "1", "model.pb")),
        ("resnet/1/variables/v.data", ("resnet", "1", "variables/v.data")),
        ("rootfile", None),
        ("resnet/1/", None),
        ("resnet//x", None),
    ],
)
def test_split_key(key, expected):
    assert keys.split_key(key) == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("{specific{versions:1 }}", {1}),
        ("{specific{versions:1 versions:12 }}", {1, 12}),
        ("{ specific { versions: 2 } }", {2}),
        ("{latest{}}", {7}),
        (None, {7}),
        ("{latest{num_versions:2}}", {7, 3}),
        ("{all{}}", {1, 3, 7}),
        ("garbage", {1, 3, 7}),
    ],
)
def test_served_versions(policy, expected):
    assert served_versions(policy, [1, 3, 7]) == expected


def test_latest_of_no_versions_serves_nothing():
    assert served_versions("{latest{}}", []) == set()


class Source:
    def __init__(self, data: bytes, fail: bool = False) -> None:
        self.data, self.fail = data, fail
        self.reads: list[int] = []

    def read(self, size: int) -> bytes:
        if self.fail:
            raise OSError("connection reset")
        self.reads.append(size)
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_request_body_reads_in_the_sizes_asked_and_stops_at_the_length():
    source = Source(b"x" * 100 + b"trailing")
    body = RequestBody(source, 100)
    assert body.read(30) == b"x" * 30
    assert body.read(1000) == b"x" * 70
    assert body.read(10) == b""
    assert source.reads == [30, 70]


def test_request_body_that_ends_early_is_a_400_not_a_short_part():
    body = RequestBody(Source(b"abc"), 10)
    assert body.read(3) == b"abc"
    with pytest.raises(IncompleteBody) as caught:
        body.read(7)
    assert caught.value.status == 400
    assert "3 of 10" in str(caught.value.description)


def test_a_broken_client_connection_is_the_clients_400():
    with pytest.raises(IncompleteBody):
        RequestBody(Source(b"", fail=True), 5).read(5)


_TRICKY = st.text(
    alphabet=st.sampled_from(
        ["a", "é", ".", "/", "\x00", "\n", "\x7f", "\x85", " ", "\\", "\uff0e", "\u2024", "\u2025", "\ufe30", "\uff0f"]
    ),
    max_size=10,
)


def _accepts(check: Any, value: str) -> bool:
    try:
        check(value)
    except BadRequest:
        return False
    return True


@given(st.one_of(_TRICKY, st.text(max_size=300)))
def test_the_schema_pattern_of_model_names_says_what_model_name_accepts(value):
    described = matches(keys.MODEL_NAME_PATTERN, value) and keys.MODEL_NAME_MIN <= len(value) <= keys.MODEL_NAME_MAX
    assert described == _accepts(keys.model_name, value)


@given(st.one_of(_TRICKY, st.text(max_size=40)))
def test_the_schema_pattern_of_paths_says_what_relative_path_accepts(value):
    assert matches(keys.RELATIVE_PATH_PATTERN, value) == _accepts(lambda v: keys.relative_path(v, "fileName"), value)
