"""Fakes for the CLI's unit tests: an httpx MockTransport that records requests, and an Api on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imm_cli import auth
from imm_cli import config as cfg
from imm_cli.http import Api, ConfigStore

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """Requests seen, and the answers to give (a handler, or 200 OK with an empty envelope)."""

    requests: list[httpx.Request] = field(default_factory=list)
    handler: Handler | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        return httpx.Response(200, json={"status": "OK", "data": {}})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def make_api(recorder: Recorder, tmp_path: Path, data: dict[str, Any] | None = None) -> Api:
    path = tmp_path / "cfg"
    store = ConfigStore(path, dict(data or {"id_token": "a.b.c"}))
    connection = cfg.resolve(store.data, {}, api_url="https://api.test")
    return Api(connection, store, refresher=auth.refresh, transport=httpx.MockTransport(recorder))
