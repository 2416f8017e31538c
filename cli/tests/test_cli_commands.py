"""Commands: the original names, aliases and positional order map to the documented API calls."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from cli_fakes import Recorder

from imm_cli.main import main

pytestmark = pytest.mark.unit


def run(*args: str) -> int:
    return main(list(args))


@pytest.mark.parametrize("words", [("create", "tenant"), ("c", "t"), ("create", "tenants"), ("c", "tenant")])
def test_create_tenant_aliases(fake: Recorder, monkeypatch: pytest.MonkeyPatch, words: tuple[str, str]) -> None:
    monkeypatch.setenv("CERT", "Q0VSVA==")
    assert run(*words, "tenanttest", "test") == 0
    assert fake.last.method == "POST"
    assert fake.last.url.path == "/tenants"
    assert fake.body() == {
        "name": "tenanttest",
        "cert": "Q0VSVA==",
        "scope": "test",
        "quota": {"requests.cpu": "2", "requests.memory": "2Gi", "maxEndpoints": 15},
    }
    assert fake.last.headers["Authorization"] == "Bearer a.b.c"


def test_create_tenant_with_several_groups_and_a_quota(fake: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERT", "Q0VSVA==")
    monkeypatch.setenv("TENANT_RESOURCES", '{"maxEndpoints": 2}')
    assert run("c", "t", "tenanttest", "team-a,team-b") == 0
    assert fake.body()["scope"] == ["team-a", "team-b"]
    assert fake.body()["quota"] == {"maxEndpoints": 2}


def test_create_tenant_generates_a_ca(fake: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("c", "t", "tenanttest", "test", "--generate-certs") == 0
    pem = base64.b64decode(fake.body()["cert"])
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert (tmp_path / "tenanttest-certs" / "client.key").exists()


def test_create_tenant_wait_follows_the_task(
    fake: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CERT", "Q0VSVA==")
    task = {"id": "42", "url": "/tasks/42", "state": "PENDING"}
    answers = iter(
        [
            httpx.Response(202, json={"status": "ACCEPTED", "data": {"name": "t1", "task": task}}),
            httpx.Response(200, json={"status": "OK", "data": {"id": "42", "state": "RUNNING", "progress": 50}}),
            httpx.Response(200, json={"status": "OK", "data": {"id": "42", "state": "SUCCEEDED", "progress": 100}}),
        ]
    )  # fmt: skip
    fake.handler = lambda request: next(answers)
    monkeypatch.setattr("imm_cli.tasks.POLL_SECONDS", 0)
    assert run("c", "t", "t1", "g", "--wait") == 0
    assert fake.requests[0].headers["Prefer"] == "respond-async"
    assert [r.url.path for r in fake.requests[1:]] == ["/tasks/42", "/tasks/42"]
    assert json.loads(capsys.readouterr().out)["data"]["state"] == "SUCCEEDED"


def test_a_failed_task_exits_1(
    fake: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = {"id": "7", "state": "ROLLED_BACK", "error": {"title": "Conflict", "code": "x"}}
    answers = iter(
        [
            httpx.Response(202, json={"status": "ACCEPTED", "data": {"name": "t1", "task": {"id": "7"}}}),
            httpx.Response(200, json={"status": "OK", "data": failed}),
        ]
    )  # fmt: skip
    fake.handler = lambda request: next(answers)
    assert run("rm", "t", "t1", "--wait") == 1
    assert "rolled_back: Conflict" in capsys.readouterr().err


def test_create_endpoint_in_the_original_order(fake: Recorder) -> None:
    assert run("c", "e", "endpointtest", "resnet", "{latest {} }", "tenanttest", "tf-serving") == 0
    assert fake.last.url.path == "/tenants/tenanttest/endpoints"
    assert fake.body() == {
        "servingName": "tf-serving",
        "modelName": "resnet",
        "endpointName": "endpointtest",
        "subjectName": "client",
        "resources": {"requests.cpu": "0", "requests.memory": "0"},
        "modelVersionPolicy": "{latest {} }",
    }


def test_create_endpoint_without_a_policy(fake: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_RESOURCES", '{"requests.cpu": "1"}')
    assert run("create", "endpoint", "e1", "resnet", "tenant1", "--replicas", "0") == 0
    body = fake.body()
    assert fake.last.url.path == "/tenants/tenant1/endpoints"
    assert "modelVersionPolicy" not in body
    assert body["replicas"] == 0
    assert body["resources"] == {"requests.cpu": "1"}


def test_create_endpoint_all_six_positionals(fake: Recorder) -> None:
    assert run("c", "e", "e1", "m1", "{all{}}", "t1", "ovms", "cn-x") == 0
    body = fake.body()
    assert (body["servingName"], body["subjectName"], body["modelVersionPolicy"]) == ("ovms", "cn-x", "{all{}}")


def test_policy_in_third_place_without_a_tenant_is_a_usage_error(fake: Recorder) -> None:
    assert run("c", "e", "e1", "m1", "{all{}}") == 2
    assert fake.requests == []


def test_default_tenant_name_fills_a_missing_tenant(fake: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_TENANT_NAME", "default-tenant")
    assert run("ls", "e") == 0
    assert fake.last.url.path == "/tenants/default-tenant/endpoints"


@pytest.mark.parametrize(
    ("args", "method", "path", "body"),
    [
        (("ls", "t"), "GET", "/tenants", None),
        (("list", "tenants"), "GET", "/tenants", None),
        (("ls", "e", "t1"), "GET", "/tenants/t1/endpoints", None),
        (("ls", "m", "t1"), "GET", "/tenants/t1/models", None),
        (("ls", "s"), "GET", "/servings", None),
        (("v", "s", "ovms"), "GET", "/servings/ovms", None),
        (("v", "e", "e1", "t1"), "GET", "/tenants/t1/endpoints/e1", None),
        (("v", "t", "t1"), "GET", "/tenants/t1", None),
        (("rm", "t", "t1"), "DELETE", "/tenants", {"name": "t1"}),
        (("rm", "e", "e1", "t1"), "DELETE", "/tenants/t1/endpoints", {"endpointName": "e1"}),
        (("rm", "m", "resnet", "1", "t1"), "DELETE", "/tenants/t1/models", {"modelName": "resnet", "modelVersion": 1}),
        (("s", "e", "e1", "2", "t1"), "PATCH", "/tenants/t1/endpoints/e1/replicas", {"replicas": 2}),
        (("scale", "endpoint", "e1", "0", "t1"), "PATCH", "/tenants/t1/endpoints/e1/replicas", {"replicas": 0}),
        (("up", "e", "e1", "t1", "--modelName", "m2"), "PATCH", "/tenants/t1/endpoints/e1", {"modelName": "m2"}),
        (
            ("update", "endpoint", "e1", "t1", "--resources", '{"limits.cpu": "1"}', "--subjectName", "c2"),
            "PATCH",
            "/tenants/t1/endpoints/e1",
            {"resources": {"limits.cpu": "1"}, "subjectName": "c2"},
        ),
        (("up", "t", "t1", "--scope", "g1", "--scope", "g2"), "PATCH", "/tenants/t1", {"scope": ["g1", "g2"]}),
        (("pause", "e", "e1", "t1"), "POST", "/tenants/t1/endpoints/e1/pause", None),
        (("resume", "endpoint", "e1", "t1"), "POST", "/tenants/t1/endpoints/e1/resume", None),
        (("events", "e", "e1", "t1"), "GET", "/tenants/t1/endpoints/e1/events", None),
        (("logs", "e", "e1", "t1", "--tail", "5"), "GET", "/tenants/t1/endpoints/e1/logs", None),
        (("tasks", "list", "--state", "FAILED"), "GET", "/tasks", None),
        (("tasks", "view", "/tasks/abc"), "GET", "/tasks/abc", None),
        (("ls", "tasks"), "GET", "/tasks", None),
        (("rm", "s", "my-serving"), "DELETE", "/servings/my-serving", None),
        (("ls", "versions", "t1"), "GET", "/tenants/t1/models", None),
        (
            ("import", "m", "resnet", "2", "t1", "s3://t1/staging/resnet"),
            "POST",
            "/tenants/t1/models/import",
            {"modelName": "resnet", "modelVersion": 2, "source": "s3://t1/staging/resnet"},
        ),
        (
            ("extract", "model", "resnet", "3", "t1", "uploads/r.tar.gz"),
            "POST",
            "/tenants/t1/models/extract",
            {"modelName": "resnet", "modelVersion": 3, "archive": "uploads/r.tar.gz", "keepArchive": False},
        ),
    ],
)
def test_every_command_calls_its_route(
    fake: Recorder, args: tuple[str, ...], method: str, path: str, body: object
) -> None:
    assert run(*args) == 0
    assert (fake.last.method, fake.last.url.path) == (method, path)
    if body is not None:
        assert fake.body() == body


def test_query_parameters(fake: Recorder) -> None:
    assert run("tasks", "list", "--state", "FAILED", "--limit", "3") == 0
    assert dict(fake.last.url.params) == {"state": "FAILED", "limit": "3"}
    assert run("logs", "e", "e1", "t1", "--tail", "5") == 0
    assert fake.last.url.params["tail"] == "5"
    assert run("ls", "m", "t1", "--grouped") == 0
    assert fake.last.url.params["view"] == "grouped"
    assert run("ls", "m", "t1") == 0
    assert "view" not in fake.last.url.params


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("c", "x", "name"),
        ("s", "e", "e1", "many", "t1"),
        ("rm", "m", "resnet", "0", "t1"),
        ("up", "e", "e1", "t1"),
        ("ls", "e"),  # no tenant, not a terminal: nobody to ask
        ("c", "e", "a", "b", "c", "d", "e", "f", "g"),
        ("--output", "yaml", "ls", "t"),
        ("c", "e", "e1", "m1", "t1", "--resources", "{oops"),
    ],
)
def test_usage_errors_exit_2_without_calling_the_api(fake: Recorder, args: tuple[str, ...]) -> None:
    assert run(*args) == 2
    assert fake.requests == []


def test_api_errors_exit_1_with_the_message_on_stderr(fake: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    fake.handler = lambda request: httpx.Response(
        403, json={"title": "Forbidden", "description": "Insufficient permissions", "code": "forbidden"}
    )
    assert run("ls", "e", "t1") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "403 Forbidden: Insufficient permissions [forbidden]" in captured.err


def test_json_output_is_the_server_body(fake: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    body = '{"status": "OK", "data": {"endpoints": []}}'
    fake.handler = lambda request: httpx.Response(200, content=body.encode())
    assert run("ls", "e", "t1") == 0
    assert capsys.readouterr().out == body + "\n"


def test_table_output(fake: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    fake.handler = lambda request: httpx.Response(200, json={"status": "OK", "data": {"tenants": ["alpha", "beta"]}})
    assert run("--output", "table", "ls", "t") == 0
    out = capsys.readouterr().out
    assert "alpha" in out
    assert "beta" in out
    assert "status" not in out


def test_without_a_token_the_user_is_told_to_log_in(
    fake: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMM_CONFIG_PATH", str(tmp_path / "none"))
    assert run("ls", "t") == 1
    assert "Please login first" in capsys.readouterr().err
    assert fake.requests == []


def test_logout_keeps_the_address(fake: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("logout") == 0
    assert "Signed out" in capsys.readouterr().out
    saved = json.loads((tmp_path / "immconfig").read_text())
    assert saved == {"management_api_address": "api.test", "management_api_port": 443}


def test_the_cli_never_imports_django() -> None:
    import subprocess
    import sys

    probe = "import sys, imm_cli.main, imm_cli.upload; print('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("args", "path", "pages", "whole"),
    [
        (
            ("ls", "t"),
            "/tenants",
            [{"tenants": ["a", "b"]}, {"tenants": ["c"]}],
            {"tenants": ["a", "b", "c"]},
        ),
        (("ls", "s"), "/servings", [["ovms"], ["triton"]], ["ovms", "triton"]),
    ],
)
def test_a_list_follows_continue_to_the_last_page(
    fake: Recorder,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    path: str,
    pages: list[object],
    whole: object,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        index = int(request.url.params.get("continue") or 0)
        body: dict[str, object] = {"status": "OK", "data": pages[index]}
        if index + 1 < len(pages):
            body["continue"] = str(index + 1)
        return httpx.Response(200, json=body)

    fake.handler = answer
    assert run("--output", "json", *args) == 0
    assert [(r.url.path, r.url.params.get("continue"), r.url.params.get("limit")) for r in fake.requests] == [
        (path, None, "500"),
        (path, "1", "500"),
    ]
    assert json.loads(capsys.readouterr().out) == {"status": "OK", "data": whole}
