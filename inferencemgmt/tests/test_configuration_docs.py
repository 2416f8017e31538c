"""docs/configuration.md lists every variable settings.py reads (the README is built from it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_read_by_settings_is_documented():
    source = (ROOT / "inferencemgmt" / "settings.py").read_text()
    read = set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", source))
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text(), re.M))
    assert len(read) > 40
    assert read - documented == set()
