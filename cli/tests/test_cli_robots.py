"""`imm robots ...` and `imm login --token`: the documented calls, and a saved token that is never refreshed."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import httpx
import pytest
from cli_fakes import Recorder

from imm_cli import config as cfg
from imm_cli.main import main

pytestmark = pytest.mark.unit


def robot_token() -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'sub': 'system:serviceaccount:t1:ci', 'aud': ['x']})}.sig"


def test_robots_list_create_delete_map_to_the_routes(fake: Recorder) -> None:
    assert main(["robots", "list", "t1"]) == 0
    assert (fake.last.method, fake.last.url.path) == ("GET", "/tenants/t1/robots")
    assert main(["robots", "create", "ci", "t1", "--description", "CI pipeline", "--role", "deployer"]) == 0
    assert (fake.last.method, fake.last.url.path) == ("POST", "/tenants/t1/robots")
    assert fake.body() == {"name": "ci", "description": "CI pipeline", "role": "deployer"}
    assert main(["robot", "rm", "ci", "t1"]) == 0
    assert (fake.last.method, fake.last.url.path) == ("DELETE", "/tenants/t1/robots/ci")


def test_robots_create_refuses_an_unknown_role_before_any_call(fake: Recorder) -> None:
    assert main(["robots", "create", "ci", "t1", "--role", "admin"]) == 2
    assert fake.requests == []


def test_robots_token_prints_the_answer_or_only_the_token(fake: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    token = robot_token()
    fake.handler = lambda request: httpx.Response(
        200, json={"status": "CREATED", "data": {"name": "ci", "token": token, "expiresAt": None, "audience": "a"}}
    )
    assert main(["robots", "token", "ci", "t1", "--expires-in", "600"]) == 0
    assert fake.body() == {"expiresIn": 600}
    assert json.loads(capsys.readouterr().out)["data"]["token"] == token
    assert main(["robots", "token", "ci", "t1", "--raw"]) == 0
    assert fake.body() == {}
    assert capsys.readouterr().out == token + "\n"
    assert main(["robots", "token", "ci", "t1", "--expires-in", "60"]) == 2  # below Kubernetes' minimum


def test_login_with_a_token_saves_it_and_it_is_sent_as_is(
    fake: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(os.environ["IMM_CONFIG_PATH"])
    cfg.save(path, {**cfg.load(path), "refresh_token": "old-refresh", "login": "password"})
    token = robot_token()
    assert main(["login", "--token", token]) == 0
    saved = cfg.load(path)
    assert (saved["id_token"], saved["login"]) == (token, "token")
    assert "refresh_token" not in saved  # a robot token is never refreshed
    assert "system:serviceaccount:t1:ci" in capsys.readouterr().err
    fake.handler = lambda request: httpx.Response(401, json={"title": "Authentication required", "code": "x"})
    assert main(["list", "endpoints", "t1"]) == 1
    assert [r.headers["Authorization"] for r in fake.requests] == [f"Bearer {token}"]  # no refresh attempt


def test_login_token_from_stdin_and_refusals(fake: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(os.environ["IMM_CONFIG_PATH"])
    token = robot_token()
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    assert main(["login", "--token", "-"]) == 0
    assert cfg.load(path)["id_token"] == token
    assert main(["login", "--token", "two words"]) == 2
    assert main(["login", "--token", token, "--username", "alice"]) == 2
    assert cfg.load(path)["id_token"] == token
