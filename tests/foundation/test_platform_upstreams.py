"""Readiness against the live platform, and 503s naming the part that is unreachable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ready_when_every_part_answers(api, platform_settings):
    response = api.get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["data"]["checks"]
    assert checks == {name: {"ok": True} for name in checks}
    assert set(checks) == {"database", "redis", "kubernetes", "object store", "identity provider"}


def test_object_store_unreachable_is_503_naming_it(api, platform_settings):
    platform_settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{_closed_port()}"
    platform_settings.S3_MAX_ATTEMPTS = 1
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["description"] == "Unavailable: object store"
    assert body["checks"]["kubernetes"] == {"ok": True}


def test_kubernetes_unreachable_is_503_naming_it(api, platform_settings, tmp_path):
    config = yaml.safe_load(Path(platform_settings.IMM_KUBECONFIG).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    platform_settings.IMM_KUBECONFIG = str(broken)
    platform_settings.IMM_KUBE_RETRIES = 0
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["description"] == "Unavailable: kubernetes"
    assert response["Retry-After"] == "5"


def test_identity_provider_unreachable_is_503_for_a_token_request(api, platform_settings, user_token):
    token = user_token("alice")
    platform_settings.OIDC_ISSUER = f"https://127.0.0.1:{_closed_port()}/dex"
    response = api.get("/tasks", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response.json()["code"] == "identity_provider_unavailable"
    assert response["Retry-After"] == "5"
