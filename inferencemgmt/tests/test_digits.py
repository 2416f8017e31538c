"""The one whole-number parser: ASCII digits only, whatever ``str.isdigit()`` thinks."""

from __future__ import annotations

import pytest

from inferencemgmt.digits import ascii_int

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("7", 7), ("007", 7), ("9" * 19, int("9" * 19))])
def test_ascii_digits_are_numbers(raw, expected):
    assert ascii_int(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "\u00b2",  # superscript two: isdigit() is true, int() raises
        "\u0661",  # Arabic-Indic one: int() reads it as 1
        "\uff11",  # full-width one
        "1\u00b2",
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1_000",
        "1.0",
        "1\n",
        "9" * 20,  # over max_digits
        None,
        1,
    ],
)
def test_anything_else_is_not_a_number(raw):
    assert ascii_int(raw) is None


def test_max_digits_is_the_callers_bound():
    assert ascii_int("12345", max_digits=5) == 12345
    assert ascii_int("123456", max_digits=5) is None


# Its users that read numbers from elsewhere: each crashed on "²" (str.isdigit() then int()).
def test_a_retry_after_header_that_is_not_ascii_digits_means_the_default():
    from kubernetes.client.exceptions import ApiException

    from inferencemgmt import kube

    for header, expected in (("\u00b2", 5), ("\u0661", 5), ("7", 7)):
        exc = ApiException(status=503, reason="busy")
        exc.headers = {"Retry-After": header}
        assert kube.translate(exc).retry_after == expected


def test_version_directories_that_are_not_ascii_digits_are_listed_after_the_numbers():
    from models_store.selectors import _version_order, numeric_versions

    names = ["10", "\u00b2", "2", "\u0661", "draft"]
    assert numeric_versions(names) == [2, 10]
    assert sorted(names, key=_version_order) == ["2", "10", "draft", "\u00b2", "\u0661"]
