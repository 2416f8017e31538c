"""The original end-to-end flow (docs/compatibility.md) through the CLI, without the inference calls.

Admin creates a tenant for team-a; alice uploads a model as a file, a tree with an empty directory
and a tarball, lists models, creates an endpoint, lists and views it, scales it to 2 and sees two
running pods (the controller renders the Deployment, kwok runs its pods), updates it, removes the
endpoint and the models; the admin removes the tenant. bob (team-b) gets 403 on alice's tenant.
Also: an upload killed in the middle resumes without sending the stored parts again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import ROOT, ImmRunner, Run, Server
from tests.platform_admin import admin_s3_client

pytestmark = pytest.mark.integration


def ok(result: Run) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def require_routes(server: Server, token: str, *kinds: str) -> None:
    """Skip while this checkout's server lacks a route family (before its branch is merged)."""
    for kind in kinds:
        answer = httpx.get(f"{server.url}/tenants/no-such-tenant/{kind}", headers={"Authorization": f"Bearer {token}"})
        if "No route matches" in answer.text:
            pytest.skip(f"this server has no {kind} routes yet (merge main once they land)")


@pytest.fixture
def tenant(imm: ImmRunner, logged_in: Callable[[str], None], tenant_name: str, cli_controller: object) -> Iterator[str]:
    """A tenant of team-a made by the admin through the CLI, removed (and checked gone) afterwards."""
    logged_in("admin")
    created = imm("create", "tenant", tenant_name, "team-a", "--generate-certs", user="admin")
    assert json.loads(created.stdout or "{}").get("data") == {"name": tenant_name}, created.stderr
    yield tenant_name
    removed = imm("rm", "t", tenant_name, "--wait", user="admin")
    assert removed.returncode == 0, removed.stderr
    assert tenant_name not in ok(imm("ls", "t", user="admin"))["data"]["tenants"]


def model_tree(root: Path) -> Path:
    (root / "tree" / "1" / "variables").mkdir(parents=True)
    (root / "tree" / "1" / "saved_model.pb").write_bytes(b"graph" * 1000)
    (root / "tree" / "1" / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(70_000))
    (root / "tree" / "1" / "assets").mkdir()
    return root / "tree"


def tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("resnet/1/saved_model.pb", b"tarred-graph"), ("resnet/1/variables/v.index", b"idx")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def wait_for(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1.0)


@pytest.fixture
def with_endpoints(cli_server: Server, user_token: Callable[[str], str]) -> None:
    require_routes(cli_server, user_token("admin"), "endpoints", "uploads")


@pytest.fixture
def with_uploads(cli_server: Server, user_token: Callable[[str], str]) -> None:
    require_routes(cli_server, user_token("admin"), "uploads")


@pytest.mark.usefixtures("with_endpoints")
def test_the_original_flow(
    imm: ImmRunner, logged_in: Callable[[str], None], tenant: str, tmp_path: Path, cli_server: Server
) -> None:
    listed = ok(imm("ls", "t", user="admin"))
    assert tenant in listed["data"]["tenants"]
    logged_in("alice")

    # Uploads: a file (direct to storage), a tree with an empty directory (the original routes),
    # a tarball (direct).
    (tmp_path / "saved_model.pb").write_bytes(b"resnet-graph" * 5000)
    single = imm("upload", str(tmp_path / "saved_model.pb"), "resnet", "1", tenant, user="alice")
    assert "completed successfully" in single.stdout, single.stderr
    assert ok(single)["data"]["protocol"] == "direct"
    via_api = ok(imm("u", str(model_tree(tmp_path)), "tree", "1", tenant, "--via-api", user="alice"))
    assert via_api["data"]["directories"] == ["assets/"]
    assert via_api["data"]["protocol"] == "api"
    tarred = ok(imm("u", str(tarball(tmp_path / "r.tar.gz")), "tarred", "2", tenant, user="alice"))
    assert sorted(tarred["data"]["files"]) == ["saved_model.pb", "variables/v.index"]

    models = ok(imm("ls", "m", tenant, user="alice"))["data"]["models"]
    paths = {model["path"]: model for model in models}
    assert paths["resnet/1/saved_model.pb"]["size"] == 12 * 5000
    assert paths["resnet/1/saved_model.pb"]["version"] == "1"
    assert "tree/1/variables/variables.data-00000-of-00001" in paths
    assert "tarred/2/variables/v.index" in paths
    assert not any(path.endswith("/") for path in paths)  # directory markers are hidden
    bucket = admin_s3_client(cli_server.env)
    assert bucket.head_object(Bucket=tenant, Key="tree/1/assets/")["ContentLength"] == 0
    stored = bucket.get_object(Bucket=tenant, Key="tree/1/variables/variables.data-00000-of-00001")["Body"].read()
    assert stored == (tmp_path / "tree" / "1" / "variables" / "variables.data-00000-of-00001").read_bytes()

    # bob is not in team-a: every command on alice's tenant is refused with a 403.
    logged_in("bob")
    for args in (("ls", "e", tenant), ("ls", "m", tenant), ("v", "t", tenant)):
        refused = imm(*args, user="bob")
        assert refused.returncode == 1, args
        assert "403" in refused.stderr, (args, refused.stderr)

    created = imm("c", "e", "endpointtest", "resnet", "{latest {} }", tenant, "tf-serving", user="alice")
    domain = cli_server.env["PLATFORM_DOMAIN"]
    assert f"endpointtest-{tenant}.{domain}" in created.stdout, created.stderr
    assert ok(created)["status"] == "CREATED"
    endpoints = ok(imm("ls", "e", tenant, user="alice"))["data"]["endpoints"]
    assert [endpoint["name"] for endpoint in endpoints] == ["endpointtest"]

    view = ok(imm("v", "e", "endpointtest", tenant, user="alice"))["data"]
    assert view["subject name"] == "client"
    assert view["endpoint url"].startswith(f"endpointtest-{tenant}.{domain}")

    scaled = imm("s", "e", "endpointtest", "2", tenant, "--wait", "--timeout", "180", user="alice")
    assert ok(scaled)["data"]["values"] == {"replicas": 2}
    view = ok(imm("v", "e", "endpointtest", tenant, user="alice"))["data"]
    assert view["endpoint status"]["running pods"] == 2

    updated = ok(imm("up", "e", "endpointtest", tenant, "--subjectName", "client2", user="alice"))
    assert updated["status"] == "PATCHED"
    assert updated["data"]["values"] == {"subjectName": "client2"}
    assert ok(imm("v", "e", "endpointtest", tenant, user="alice"))["data"]["subject name"] == "client2"

    # The new endpoint routes: pause (no pod runs), resume (the two come back), events, logs.
    assert (
        ok(imm("pause", "e", "endpointtest", tenant, "--wait", "--timeout", "180", user="alice"))["status"] == "PATCHED"
    )
    assert ok(imm("v", "e", "endpointtest", tenant, user="alice"))["data"]["endpoint status"]["running pods"] == 0
    resumed = ok(imm("resume", "e", "endpointtest", tenant, "--wait", "--timeout", "180", user="alice"))
    assert resumed["data"]["values"] == {"replicas": 2}
    assert ok(imm("v", "e", "endpointtest", tenant, user="alice"))["data"]["endpoint status"]["running pods"] == 2
    events = ok(imm("events", "e", "endpointtest", tenant, user="alice"))["data"]["events"]
    assert isinstance(events, list)
    assert events
    logs = imm("logs", "e", "endpointtest", tenant, "--tail", "5", user="alice")
    assert "Traceback" not in logs.stderr
    if logs.returncode == 0:
        assert "logs" in json.loads(logs.stdout)["data"]
    else:  # kwok's pods have no logs: a clean API error, not a crash
        assert logs.returncode == 1
        assert logs.stderr.startswith("imm: ")

    removed = imm("rm", "e", "endpointtest", tenant, "--wait", user="alice")
    assert "endpointtest" in removed.stdout, removed.stderr
    wait_for(
        lambda: imm("ls", "e", tenant, user="alice").stdout.strip() == '{"status": "OK", "data": {"endpoints": []}}'
    )

    for model, version in (("resnet", "1"), ("tree", "1"), ("tarred", "2")):
        gone = imm("rm", "m", model, version, tenant, user="alice")
        assert model in gone.stdout, gone.stderr
    assert '{"models": []}' in imm("ls", "m", tenant, user="alice").stdout


@pytest.mark.usefixtures("with_uploads")
@pytest.mark.parametrize("protocol", ["direct", "api"])
def test_an_interrupted_upload_resumes(
    imm: ImmRunner, logged_in: Callable[[str], None], tenant: str, tmp_path: Path, cli_server: Server, protocol: str
) -> None:
    logged_in("alice")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(48 * 1024 * 1024))  # 10 parts of 5 MiB
    state_dir = tmp_path / "upload-state"
    extra = ["--via-api"] if protocol == "api" else []
    upload = ["upload", str(source), "big", "1", tenant, "--part", "5", *extra]
    args = [sys.executable, "-m", "imm_cli", *upload, "--parallel", "1"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMM_")}
    env.update(
        {
            "IMM_API_URL": cli_server.url,
            "IMM_CONFIG_PATH": str(tmp_path / "alice.immconfig"),
            "IMM_UPLOAD_STATE_DIR": str(state_dir),
        }
    )
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def recorded() -> int:
        for file in state_dir.glob("*.json"):
            try:
                parts = json.loads(file.read_text())["files"].get("big.bin", {}).get("parts", {})
            except (ValueError, OSError):
                continue
            return len(parts)
        return 0

    deadline = time.monotonic() + 120
    while recorded() < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)  # freeze at once, then kill: a crash mid-upload
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stopped_at = recorded()
    assert 2 <= stopped_at < 10, "the upload was not interrupted in the middle"

    resumed = ok(imm(*upload, user="alice"))
    assert resumed["data"]["parts_resumed"] >= stopped_at
    assert resumed["data"]["parts_sent"] == 10 - resumed["data"]["parts_resumed"]
    body = admin_s3_client(cli_server.env).get_object(Bucket=tenant, Key="big/1/big.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    assert list(state_dir.glob("*.json")) == []
