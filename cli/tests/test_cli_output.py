"""Output: the server's JSON byte for byte, or tables built from the usual answer shapes."""

from __future__ import annotations

import io

import pytest

from imm_cli import output

pytestmark = pytest.mark.unit


def render(body: str, fmt: str) -> str:
    stream = io.StringIO()
    output.emit(body, fmt, stream)
    return stream.getvalue()


def test_json_is_the_body_as_sent() -> None:
    body = '{"status": "OK", "data": {"endpoints": []}}'
    assert render(body, "json") == body + "\n"
    assert render(body + "\n", "json") == body + "\n"


def test_rows_of_the_usual_shapes() -> None:
    assert output.rows_of(["ovms", "tf-serving"]) == (None, ["ovms", "tf-serving"])
    assert output.rows_of({"tenants": ["a"]}) == ("tenants", ["a"])
    assert output.rows_of({"url": "u", "warning": ""}) is None


def test_table_of_a_list_of_names() -> None:
    text = render('{"status": "OK", "data": {"tenants": ["team-a-prod", "team-b-dev"]}}', "table")
    assert "team-a-prod" in text
    assert "team-b-dev" in text
    assert "tenant" in text
    assert "{" not in text


def test_table_of_records_has_a_column_per_key() -> None:
    body = '{"status": "OK", "data": {"models": [{"path": "r/1/a.pb", "name": "r", "version": "1", "size": 3}]}}'
    text = render(body, "table")
    for word in ("path", "name", "version", "size", "r/1/a.pb"):
        assert word in text


def test_table_of_one_object_is_field_value_pairs() -> None:
    body = '{"status": "OK", "data": {"endpoint url": "e-t.example.com:443", "replicas": {"available": 1}}}'
    text = render(body, "table")
    assert "endpoint url" in text
    assert "e-t.example.com:443" in text
    assert '{"available": 1}' in text


def test_table_mode_falls_back_to_the_body_when_it_is_not_an_envelope() -> None:
    assert render("plain text", "table") == "plain text\n"


def test_emit_data_uses_python_default_separators() -> None:
    stream = io.StringIO()
    output.emit_data({"status": "OK", "data": {"a": [1, 2]}}, "json", stream)
    assert stream.getvalue() == '{"status": "OK", "data": {"a": [1, 2]}}\n'
