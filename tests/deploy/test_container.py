"""The container image and the laptop stack, as far as this machine can prove them without a Docker
engine: the Dockerfile's promises, gunicorn serving the image's command, and docker-compose.yml's wiring
(`docker compose config` where the compose tool exists; a clear skip otherwise)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PRODUCT_SERVICES = ("api", "worker", "beat", "controller", "migrate")


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _gunicorn_args() -> str:
    env = next(args for op, args in _instructions() if op == "ENV" and "GUNICORN_CMD_ARGS" in args)
    match = re.search(r'GUNICORN_CMD_ARGS="([^"]+)"', env)
    assert match, env
    return match.group(1)


@pytest.mark.unit
def test_dockerfile_is_slim_python_311_non_root_with_healthcheck() -> None:
    instructions = _instructions()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    users = [args for op, args in instructions if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}, "the final stage must not run as root"
    assert any(op == "HEALTHCHECK" and "/healthz" in args for op, args in instructions)
    assert ("CMD", '["gunicorn", "inferencemgmt.wsgi:application"]') in instructions
    assert any(op == "RUN" and "collectstatic" in args for op, args in instructions)
    assert not any(op == "ADD" for op, _ in instructions), "COPY only: ADD fetches URLs and unpacks archives"
    # Proxies are Docker's predefined build args: never baked into the image.
    assert not any(op == "ENV" and "PROXY" in args.upper() for op, args in instructions)


@pytest.mark.unit
def test_gunicorn_is_pinned_for_the_image() -> None:
    prod = (ROOT / "requirements" / "prod.txt").read_text()
    assert re.search(r"^gunicorn==\d", prod, re.MULTILINE)
    assert re.search(r"^whitenoise==\d", (ROOT / "requirements" / "base.txt").read_text(), re.MULTILINE)


@pytest.mark.unit
def test_dockerignore_keeps_secrets_and_state_out_but_the_chart_files_in() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for path in (".git", ".venv", ".devstack", "tests", "devstack"):
        assert path in ignored
    # servings.catalogue reads the chart's serving templates; the CRD and RBAC travel with them.
    assert not {"helm", "helm/imm", "helm/imm/files", "helm/imm/crds"} & ignored


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.unit
def test_the_image_command_serves_healthz(tmp_path: Path) -> None:
    """gunicorn with the image's own arguments (port moved) serves the WSGI app's liveness route."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed in this virtualenv (requirements/prod.txt)")
    port = _free_port()
    args = _gunicorn_args().replace("0.0.0.0:8000", f"127.0.0.1:{port}").replace("--workers=2", "--workers=1")
    env = {
        **os.environ,
        "GUNICORN_CMD_ARGS": args,
        "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
        "DJANGO_SECRET_KEY": "test-only",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    process = subprocess.Popen(
        [str(gunicorn), "inferencemgmt.wsgi:application"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"})
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 -- a fixed http URL
                    assert response.status == 200
                    assert b'"alive": true' in response.read()
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = COMPOSE["services"][name]
    return service


@pytest.mark.unit
def test_compose_has_every_part_of_the_laptop_stack() -> None:
    assert set(COMPOSE["services"]) >= {
        "api",
        "worker",
        "beat",
        "controller",
        "migrate",
        "bootstrap",
        "k3s",
        "postgres",
        "redis",
        "minio",
        "ldap",
        "dex",
    }


@pytest.mark.unit
def test_compose_product_services_are_wired_by_environment_only() -> None:
    for name in PRODUCT_SERVICES:
        service = _service(name)
        env = service["environment"]
        for variable in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL", "OIDC_ISSUER", "DJANGO_SECRET_KEY"):
            assert variable in env, (name, variable)
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
    # Each process gets its own least-privilege identity, never the cluster's admin kubeconfig.
    assert _service("api")["environment"]["IMM_KUBECONFIG"] == "/kube/management-api.kubeconfig"
    assert _service("controller")["environment"]["IMM_KUBECONFIG"] == "/kube/controller.kubeconfig"
    bootstrap = (ROOT / "deploy" / "compose" / "bootstrap.sh").read_text()
    assert "/kube/admin" not in bootstrap


@pytest.mark.unit
def test_compose_applies_the_chart_files_and_the_devstack_directory() -> None:
    mounts = " ".join(_service("bootstrap")["volumes"])
    assert "./helm/imm/crds:" in mounts
    assert "./helm/imm/files:" in mounts
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    # Published ports stay on the laptop's loopback.
    for service in COMPOSE["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    # Dex answers to its issuer's host inside the network too.
    issuer = _service("api")["environment"]["OIDC_ISSUER"]
    assert issuer == yaml.safe_load((ROOT / "deploy" / "compose" / "dex.yaml").read_text())["issuer"]
    assert "dex.localhost" in _service("dex")["networks"]["default"]["aliases"]


@pytest.mark.unit
def test_compose_bootstrap_script_parses() -> None:
    result = subprocess.run(["sh", "-n", str(ROOT / "deploy" / "compose" / "bootstrap.sh")], capture_output=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.unit
def test_docker_compose_config_validates() -> None:
    """`docker compose config` where the compose plugin is installed; otherwise the same loader (the
    Compose specification's compose-go: schema, interpolation, references) built from devstack/compose."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        command = [docker, "compose", "config", "--quiet"]
    elif shutil.which("go") is not None:
        from devstack.build import go_binary

        command = [str(go_binary("compose", ".", "imm-compose-config")), "-q", "docker-compose.yml"]
    else:
        pytest.skip("docker compose config: neither the compose plugin nor Go (to build compose-go) is here")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.unit
def test_compose_loader_rejects_a_typo(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("Go is needed to build devstack/compose")
    from devstack.build import go_binary

    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  api:\n    imagee: imm\n")
    result = subprocess.run(
        [str(go_binary("compose", ".", "imm-compose-config")), "-q", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "imagee" in result.stderr
