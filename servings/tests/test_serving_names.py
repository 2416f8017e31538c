"""A serving name that no ConfigMap can have is 404 before Kubernetes is asked.

The name is a segment of the Kubernetes URL the read goes to: ``GET /servings/..`` read the
templates' namespace itself (as the user: a 403 from Kubernetes for alice), found by
``tests/hardening/test_access_matrix.py::test_hostile_names_are_400_or_404``.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def _kubernetes_reached(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a name that cannot be a ConfigMap's reached Kubernetes")


@pytest.mark.parametrize("name", ["..", "%2e%2e", ".", "x%00y", "X" * 300, "Upper", "-dash", "a" * 254])
@pytest.mark.parametrize(("method", "user"), [("GET", "alice"), ("DELETE", "admin")])
def test_a_name_no_configmap_can_have_is_404_without_a_call(monkeypatch, name, method, user):
    # Every call kube.py makes as a user starts by building the user's client.
    monkeypatch.setattr(kube, "api_client_for", _kubernetes_reached)
    client = APIClient()
    client.force_authenticate(user=Identity(f"{user}@example.com", (user,), is_admin=user == "admin"))  # type: ignore[arg-type]
    response = client.generic(method, f"/servings/{name}")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "serving_not_found"
