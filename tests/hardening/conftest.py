"""The security suite's client: one request as a persona, every response body kept for the secret scan."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def call(user_token: Callable[[str], str], platform_settings: Any) -> Callable[..., Any]:
    """Send one request as a persona (None: anonymous); every response body is kept for the scan."""
    client = Client()
    bodies: list[bytes] = []

    def send(persona: str | None, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        headers: dict[str, Any] = {"HTTP_PREFER": "respond-async", **extra}
        if persona:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {user_token(persona)}"
        data = body if isinstance(body, (bytes, str)) else ("" if body is None else json.dumps(body))
        response = client.generic(method, path, data, content_type="application/json", **headers)
        bodies.append(response.content)
        return response

    send.bodies = bodies  # type: ignore[attr-defined]
    return send
