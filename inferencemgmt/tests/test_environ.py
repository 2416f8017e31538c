"""The settings readers fail fast and name the variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from inferencemgmt import environ as env

pytestmark = pytest.mark.unit


def test_required_variable_missing_names_it():
    with pytest.raises(ImproperlyConfigured, match="IMM_X is required"):
        env.string("IMM_X", environ={})


def test_blank_counts_as_unset():
    assert env.string("IMM_X", "fallback", environ={"IMM_X": "  "}) == "fallback"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)])
def test_boolean(raw, expected):
    assert env.boolean("IMM_B", environ={"IMM_B": raw}) is expected


def test_bad_boolean_names_the_variable_and_value():
    with pytest.raises(ImproperlyConfigured, match=r"IMM_B must be a boolean .*'maybe'"):
        env.boolean("IMM_B", False, environ={"IMM_B": "maybe"})


def test_integer_and_minimum():
    assert env.integer("IMM_N", environ={"IMM_N": "42"}) == 42
    with pytest.raises(ImproperlyConfigured, match="IMM_N must be an integer"):
        env.integer("IMM_N", environ={"IMM_N": "4.2"})
    with pytest.raises(ImproperlyConfigured, match="IMM_N must be >= 1"):
        env.integer("IMM_N", 5, minimum=1, environ={"IMM_N": "0"})


def test_number():
    assert env.number("IMM_F", environ={"IMM_F": "0.5"}) == 0.5
    with pytest.raises(ImproperlyConfigured, match="IMM_F must be a number"):
        env.number("IMM_F", environ={"IMM_F": "fast"})


def test_choice():
    assert env.choice("IMM_C", ("a", "b"), "a", environ={}) == "a"
    with pytest.raises(ImproperlyConfigured, match="IMM_C must be one of a, b"):
        env.choice("IMM_C", ("a", "b"), environ={"IMM_C": "c"})


def test_string_list_drops_blanks():
    assert env.string_list("IMM_L", environ={"IMM_L": "a, b,,c "}) == ["a", "b", "c"]


def test_string_map_reads_a_json_object_of_strings():
    assert env.string_map("IMM_M", {}, environ={}) == {}
    assert env.string_map("IMM_M", environ={"IMM_M": '{"triton": " tritonserver:2.51 "}'}) == {
        "triton": "tritonserver:2.51"
    }
    with pytest.raises(ImproperlyConfigured, match="IMM_M must be a JSON object:"):
        env.string_map("IMM_M", environ={"IMM_M": "triton=tritonserver"})
    for wrong in ('["triton"]', '{"triton": 3}', '{"triton": ""}'):
        with pytest.raises(ImproperlyConfigured, match="IMM_M must be a JSON object of non-empty strings"):
            env.string_map("IMM_M", environ={"IMM_M": wrong})


def test_secret_from_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t\n")
    assert env.secret("IMM_S", environ={"IMM_S_FILE": str(secret_file)}) == "s3cr3t"


def test_secret_direct_and_file_together_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="only one of IMM_S and IMM_S_FILE"):
        env.secret("IMM_S", environ={"IMM_S": "a", "IMM_S_FILE": str(tmp_path)})


def test_secret_file_unreadable_names_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="IMM_S_FILE names"):
        env.secret("IMM_S", environ={"IMM_S_FILE": str(tmp_path / "missing")})


def test_existing_file(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"IMM_P names .* which is not a file"):
        env.existing_file("IMM_P", environ={"IMM_P": str(tmp_path / "nope")})
    assert env.existing_file("IMM_P", "", environ={}) == ""
