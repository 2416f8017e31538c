"""Endpoint page helpers that need no platform: badge colours and the resources box."""

from __future__ import annotations

import pytest
from django import forms

from endpoints.views import parse_resources
from inferencemgmt.views import status_badge as badge

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "colour"),
    [("available", "ok"), ("unavailable", "bad"), ("not fully available", "pending"), ("scaled to 0", "pending")],
)
def test_status_words_get_the_colour_a_reader_expects(status: str, colour: str) -> None:
    assert badge(status) == colour


def test_resources_box_becomes_the_apis_flat_map() -> None:
    assert parse_resources("requests.cpu=1\n\n limits.memory = 2Gi \n") == {"requests.cpu": "1", "limits.memory": "2Gi"}
    assert parse_resources("") == {}


def test_a_line_without_equals_is_refused_with_its_text() -> None:
    with pytest.raises(forms.ValidationError, match=r"'requests\.cpu 1' is not 'key=quantity'"):
        parse_resources("requests.cpu 1")
