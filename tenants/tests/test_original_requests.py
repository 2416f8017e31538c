"""The original API tests' tenant bodies (``WRONG_BODIES``), sent as they send them: ``requests.post``
with ``data=json.dumps(body)`` and ``{"accept": "application/json", "Authorization": <id_token>,
"Content-Type": "application/json"}``. Their messages, and nothing created (issue 24, item 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferencemgmt import kube, objectstore
from inferencemgmt.tests.conftest import REQUESTS_DEFAULT_HEADERS, on_the_wire
from tenants.tests.test_validation import CERT

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

TENANT_NAME_REGEX = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUOTA = {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "1", "limits.memory": "1Gi", "maxEndpoints": 1}
LONG_NAME = "veryveryveryveryveryveryveryveryveryveryveryveryverylongtenantname"


def wrong_name(name: str, message: str) -> tuple[dict[str, Any], str]:
    return {"name": name, "cert": CERT, "scope": "scope_name", "quota": QUOTA}, f"'{name}' {message}"


WRONG_BODIES = [
    ({"cert": CERT, "scope": "scope_name", "quota": QUOTA}, "'name' is a required property"),
    ({"name": "test", "cert": CERT, "quota": QUOTA}, "'scope' is a required property"),
    ({"name": "test", "scope": "scope_name", "quota": QUOTA}, "'cert' is a required property"),
    ({"name": "test", "cert": CERT, "scope": "scope_name"}, "'quota' is a required property"),
    wrong_name("_", f"does not match '{TENANT_NAME_REGEX}'"),
    wrong_name("ten_name", f"does not match '{TENANT_NAME_REGEX}'"),
    wrong_name("a", "is too short"),
    wrong_name(LONG_NAME, "is too long"),
]


def _upstream_reached(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a refused body reached Kubernetes or the object store")


@pytest.mark.parametrize(("body", "message"), WRONG_BODIES)
def test_the_original_wrong_tenant_bodies_get_the_original_messages(issuer, monkeypatch, body, message):
    for name in ("api_client_for", "service_api_client", "service_api"):
        monkeypatch.setattr(kube, name, _upstream_reached)
    monkeypatch.setattr(objectstore, "client", _upstream_reached)
    headers = {
        **REQUESTS_DEFAULT_HEADERS,
        "accept": "application/json",
        "Authorization": issuer.mint(email="admin@example.com", groups=["admin"]),
        "Content-Type": "application/json",
    }
    response = on_the_wire("POST", "/tenants", headers, json.dumps(body).encode())
    assert response.status_code == 400
    assert message in response.content.decode()  # the original test: `expected_message in response.text`
    assert response.json()["title"] == "Failed data validation"
