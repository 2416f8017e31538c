"""The imm CLI against a real API server on the devstack: login, tenants, tasks, servings, errors."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import ImmRunner

pytestmark = pytest.mark.integration


def test_password_login_writes_a_private_config_with_the_api_address(
    imm: ImmRunner, tmp_path: Path, cli_server: object
) -> None:
    result = imm("login", "--username", "alice", "--password", "alice-password", user="alice")
    assert result.returncode == 0, result.stderr
    assert "Logged in as alice@example.com (groups: team-a)" in result.stderr
    assert result.stdout == ""  # the token is a credential: not printed unless asked
    config_file = tmp_path / "alice.immconfig"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    config = json.loads(config_file.read_text())
    assert config["id_token"].count(".") == 2
    assert config["refresh_token"]
    assert config["management_api_address"] == "127.0.0.1"
    assert config["management_api_scheme"] == "http"
    assert config["login"] == "password"


def test_wrong_password_exits_1_cleanly_and_writes_no_token(imm: ImmRunner, tmp_path: Path) -> None:
    result = imm("login", "--username", "alice", "--password", "not-alices-password", user="mallory")
    assert result.returncode == 1
    assert "Invalid username or password" in result.stderr
    assert "Traceback" not in result.stderr
    config_file = tmp_path / "mallory.immconfig"
    assert not config_file.exists() or "id_token" not in json.loads(config_file.read_text())


def test_commands_without_login_ask_for_it(imm: ImmRunner) -> None:
    result = imm("ls", "t", user="nobody")
    assert result.returncode == 1
    assert "Please login first" in result.stderr


def test_usage_errors_exit_2(imm: ImmRunner, logged_in: Callable[[str], None]) -> None:
    logged_in("alice")
    assert imm("frobnicate", user="alice").returncode == 2
    assert imm("s", "e", "endpoint", "many", "tenant", user="alice").returncode == 2
    assert imm("up", "e", "endpoint", "tenant", user="alice").returncode == 2  # no change given


def test_tenant_lifecycle_and_isolation(
    imm: ImmRunner, logged_in: Callable[[str], None], tenant_name: str, tmp_path: Path
) -> None:
    logged_in("admin")
    created = imm("create", "tenant", tenant_name, "team-a", "--generate-certs", "--certs-dir", "certs", user="admin")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {"status": "CREATED", "data": {"name": tenant_name}}
    assert stat.S_IMODE((tmp_path / "certs" / "client.key").stat().st_mode) == 0o600
    try:
        listed = imm("ls", "t", user="admin")
        assert listed.returncode == 0, listed.stderr
        assert tenant_name in json.loads(listed.stdout)["data"]["tenants"]

        table = imm("--output", "table", "list", "tenants", user="admin")
        assert table.returncode == 0
        assert tenant_name in table.stdout
        assert "{" not in table.stdout

        logged_in("alice")
        view = imm("v", "t", tenant_name, user="alice")
        assert view.returncode == 0, view.stderr
        assert json.loads(view.stdout)["data"]["name"] == tenant_name

        # bob (team-b) is no member: Kubernetes refuses him, and the CLI says so.
        logged_in("bob")
        foreign = imm("view", "tenant", tenant_name, user="bob")
        assert foreign.returncode == 1
        assert foreign.stdout == ""
        assert "403" in foreign.stderr

        # alice is no admin: tenant writes are refused before anything happens.
        refused = imm("rm", "t", tenant_name, user="alice")
        assert refused.returncode == 1
        assert "403 Forbidden" in refused.stderr
    finally:
        removed = imm("remove", "tenant", tenant_name, "--wait", user="admin")
    assert removed.returncode == 0, removed.stderr
    record = json.loads(removed.stdout)["data"]
    assert record["state"] == "SUCCEEDED"
    assert record["kind"].startswith("tenants.")
    assert tenant_name not in json.loads(imm("ls", "t", user="admin").stdout)["data"]["tenants"]


def test_create_tenant_with_wait_follows_the_task(
    imm: ImmRunner, logged_in: Callable[[str], None], tenant_name: str
) -> None:
    logged_in("admin")
    created = imm("c", "t", tenant_name, "team-b", "--generate-certs", "--wait", user="admin")
    try:
        assert created.returncode == 0, created.stderr
        record = json.loads(created.stdout)["data"]
        assert record["state"] == "SUCCEEDED"
        assert record["progress"] == 100
        task = imm("tasks", "view", record["id"], user="admin")
        assert task.returncode == 0
        assert json.loads(task.stdout)["data"]["id"] == record["id"]
        watched = imm("tasks", "watch", record["id"], user="admin")
        assert watched.returncode == 0, watched.stderr
        assert json.loads(watched.stdout)["data"]["state"] == "SUCCEEDED"
        listed = imm("ls", "tasks", "--state", "SUCCEEDED", user="admin")
        assert record["id"] in [item["id"] for item in json.loads(listed.stdout)["data"]["tasks"]]
    finally:
        assert imm("rm", "t", tenant_name, user="admin").returncode == 0


def test_duplicate_tenant_is_a_conflict(imm: ImmRunner, logged_in: Callable[[str], None], tenant_name: str) -> None:
    logged_in("admin")
    assert imm("c", "t", tenant_name, "team-a", "--generate-certs", user="admin").returncode == 0
    try:
        again = imm("c", "t", tenant_name, "team-a", "--generate-certs", user="admin")
        assert again.returncode == 1
        assert "409" in again.stderr
        assert "already exists" in again.stderr
    finally:
        imm("rm", "t", tenant_name, user="admin")


def test_servings_are_listed_and_viewed(imm: ImmRunner, logged_in: Callable[[str], None]) -> None:
    logged_in("alice")
    listed = imm("ls", "s", user="alice")
    assert listed.returncode == 0, listed.stderr
    names = json.loads(listed.stdout)["data"]
    assert "tf-serving" in names
    viewed = imm("v", "s", "tf-serving", user="alice")
    assert viewed.returncode == 0
    assert "deployment.tmpl" in json.loads(viewed.stdout)["data"]
    missing = imm("v", "s", "no-such-serving", user="alice")
    assert missing.returncode == 1
    assert "404" in missing.stderr


def test_imm_token_wins_over_the_config(
    imm: ImmRunner, logged_in: Callable[[str], None], user_token: Callable[[str], str]
) -> None:
    logged_in("alice")
    # Tenant deletion is for admins, checked before the tenant is looked up: alice gets 403, the
    # admin 404 (no such tenant). alice's config with the admin's IMM_TOKEN acts as the admin.
    as_alice = imm("rm", "t", "cli-no-such-tenant", user="alice")
    assert as_alice.returncode == 1
    assert "403" in as_alice.stderr
    as_admin = imm("rm", "t", "cli-no-such-tenant", user="alice", env={"IMM_TOKEN": user_token("admin")})
    assert as_admin.returncode == 1
    assert "404" in as_admin.stderr


def test_expired_token_is_refreshed_automatically(
    imm: ImmRunner, logged_in: Callable[[str], None], tmp_path: Path
) -> None:
    logged_in("alice")
    config_file = tmp_path / "alice.immconfig"
    config = json.loads(config_file.read_text())
    old = config["id_token"]
    # Pretend the token is about to expire: the CLI must refresh before the request.
    header, payload, signature = old.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = 1
    fake = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    config["id_token"] = f"{header}.{fake}.{signature}"
    config_file.write_text(json.dumps(config))
    result = imm("ls", "s", user="alice")
    assert result.returncode == 0, result.stderr
    refreshed = json.loads(config_file.read_text())
    assert refreshed["id_token"] not in (old, config["id_token"])
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_logout_keeps_the_address_and_drops_the_tokens(
    imm: ImmRunner, logged_in: Callable[[str], None], tmp_path: Path
) -> None:
    logged_in("carol")
    result = imm("logout", user="carol")
    assert result.returncode == 0
    assert "Signed out" in result.stdout
    config = json.loads((tmp_path / "carol.immconfig").read_text())
    assert "id_token" not in config
    assert "refresh_token" not in config
    assert config["management_api_address"] == "127.0.0.1"
    assert imm("ls", "s", user="carol").returncode == 1


def test_admins_manage_serving_templates(imm: ImmRunner, logged_in: Callable[[str], None], tmp_path: Path) -> None:
    logged_in("admin")
    logged_in("alice")
    files = json.loads(imm("v", "s", "tf-serving", user="admin").stdout)["data"]
    template = tmp_path / "template"
    template.mkdir()
    for name, text in files.items():
        (template / name).write_text(text)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    refused = imm("create", "serving", name, "--dir", str(template), user="alice")
    assert refused.returncode == 1
    assert "403" in refused.stderr
    created = imm("c", "s", name, "--dir", str(template), user="admin")
    assert created.returncode == 0, created.stderr
    try:
        assert json.loads(created.stdout) == {"status": "CREATED", "data": {"name": name}}
        assert name in json.loads(imm("ls", "s", user="alice").stdout)["data"]
        assert json.loads(imm("v", "s", name, user="alice").stdout)["data"] == files
        assert imm("up", "s", name, "--dir", str(template), user="admin").returncode == 0
    finally:
        removed = imm("rm", "s", name, user="admin")
    assert removed.returncode == 0, removed.stderr
    assert imm("v", "s", name, user="alice").returncode == 1
