"""The scan that the security suite relies on finds what it must, and never prints a secret."""

from __future__ import annotations

import pytest

from tests.hardening.secrets_scan import find_secrets

pytestmark = pytest.mark.unit


def test_a_secret_anywhere_in_a_text_is_found_and_not_echoed():
    found = find_secrets(["nothing here", "Authorization: Bearer eyJhbGciOi.payload.sig"], ["eyJhbGciOi.payload.sig"])
    assert len(found) == 1
    assert found[0].startswith("1: secret sha256:")
    assert "eyJ" not in found[0]


def test_no_secret_no_finding():
    assert find_secrets(["a log line"], ["s3-secret-key-value", ""]) == []
