"""The security suite's client, and a secret scan over the logs and answers of the whole suite.

Every request the suite sends through `call` keeps its response body; every log record of the test
process (from any test of this directory) is kept too, as it was before redaction. At the end of the
run, none of them may hold a token the suite used or a secret of `.devstack/env` (`*SECRET*`, `*PASSWORD*`, `*TOKEN*`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from inferencemgmt.requestlog import before_redaction
from tests.conftest import ROOT, _read_env
from tests.hardening.secrets_scan import find_secrets

SEEN_TOKENS: set[str] = set()
RESPONSE_BODIES: list[bytes] = []


class Recorder:
    """Every log record's message and traceback, of any logger, as it was before redaction.

    Redaction (``inferencemgmt.requestlog``) masks secrets when a record is made; it is the last
    line of defence, so the scan looks at what the code tried to log. Use it as a context manager.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._previous_level = logging.NOTSET

    def observe(self, record: logging.LogRecord, text: str) -> None:
        self.lines.append(text)

    def __enter__(self) -> Recorder:
        root = logging.getLogger()
        self._previous_level = root.level
        root.setLevel(logging.DEBUG)
        before_redaction.append(self.observe)
        return self

    def __exit__(self, *exc: object) -> None:
        before_redaction.remove(self.observe)
        logging.getLogger().setLevel(self._previous_level)


def env_secrets() -> list[str]:
    path = Path(os.environ.get("IMM_DEVSTACK_STATE", ROOT / ".devstack")) / "env"
    env = _read_env(path) if path.exists() else {}
    return [value for key, value in env.items() if re.search(r"SECRET|PASSWORD|TOKEN", key) and len(value) >= 8]


@pytest.fixture(scope="session", autouse=True)
def suite_secret_scan() -> Iterator[None]:
    with Recorder() as recorder:
        yield
    texts = recorder.lines + [body.decode(errors="replace") for body in RESPONSE_BODIES]
    found = find_secrets(texts, [*env_secrets(), *SEEN_TOKENS])
    assert found == [], "a token or secret appeared in a log line or response of the security suite"


@pytest.fixture
def call(user_token: Callable[[str], str], platform_settings: Any) -> Callable[..., Any]:
    """Send one request as a persona (None: anonymous); every response body is kept for the scan."""
    client = Client()
    bodies: list[bytes] = []

    def send(persona: str | None, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        headers: dict[str, Any] = {"HTTP_PREFER": "respond-async", **extra}
        if persona:
            token = user_token(persona)
            SEEN_TOKENS.add(token)
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        data = body if isinstance(body, (bytes, str)) else ("" if body is None else json.dumps(body))
        response = client.generic(method, path, data, content_type="application/json", **headers)
        bodies.append(response.content)
        RESPONSE_BODIES.append(response.content)
        return response

    send.bodies = bodies  # type: ignore[attr-defined]
    return send
