"""The product's image as built (devstack.images.product, what `make docker_build` makes without a
Docker engine), read from the OCI archive itself: it holds what the processes import and run, and
nothing of the development checkout (tests, tool configuration, .git, the devstack's state, secrets).

The image is built on first use (about three minutes, cached by content hash outside the checkout);
a machine without umoci or debootstrap skips with the reason."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from devstack import images

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent.parent
APP_PACKAGES = ("inferencemgmt", "tenants", "endpoints", "models_store", "servings")


@pytest.fixture(scope="module")
def built() -> tuple[images.Image, dict[str, tarfile.TarInfo]]:
    missing = [tool for tool in ("umoci", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the local image build needs {', '.join(missing)} (scripts/install-system-deps.sh)")
    image = images.product(ROOT)
    return image, images.image_files(image)


def _tracked(*patterns: str) -> list[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", *patterns], capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def _is_test(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return "/tests/" in f"/{path}" or name.startswith("test_") or name == "conftest.py"


def test_the_image_holds_every_module_template_and_static_file_the_processes_use(built) -> None:
    _, files = built
    product_modules = [
        path for path in _tracked(*(f"{package}/*.py" for package in APP_PACKAGES)) if not _is_test(path)
    ]
    product_modules.remove("inferencemgmt/settings_typecheck.py")  # mypy's settings, never imported at run time
    assert len(product_modules) > 100
    wanted = [
        "manage.py",
        *product_modules,
        *_tracked("templates/*"),
        *_tracked("static/*"),
        # servings.catalogue and the devstack read the chart's shared files (CRD, RBAC, serving templates).
        *_tracked("helm/imm/crds/*", "helm/imm/files/*"),
        "requirements/prod.txt",
    ]
    missing = [path for path in wanted if f"app/{path}" not in files]
    assert missing == []
    # Collected at build time (whitenoise serves them; the root filesystem is read-only at run time).
    assert any(path.startswith("app/staticfiles/") and path.endswith(".css") for path in files)
    assert "app/staticfiles/admin/css/base.css" in files
    for script in ("gunicorn", "celery", "python"):
        assert f"opt/venv/bin/{script}" in files, script
    assert files["opt/venv/bin/gunicorn"].isfile()
    site = "opt/venv/lib/python3.11/site-packages"
    for package in ("django", "rest_framework", "celery", "kubernetes", "boto3", "psycopg", "gunicorn", "whitenoise"):
        assert f"{site}/{package}/__init__.py" in files, package
    # Bytecode for the image's Python: the read-only root filesystem could never write it later.
    assert "app/inferencemgmt/__pycache__/settings.cpython-311.pyc" in files
    assert "usr/bin/python3.11" in files


def test_every_runtime_requirement_is_installed_for_the_images_own_python(built) -> None:
    """The closure of requirements/prod.txt, with markers evaluated for the base image's exact Python
    (bookworm's 3.11.2: redis needs async-timeout below 3.11.3, which a resolution for the host's
    3.11.7 left out, and every process failed to import redis)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    image, files = built
    site = "opt/venv/lib/python3.11/site-packages/"
    wanted_metadata = {path for path in files if path.startswith(site) and path.endswith(".dist-info/METADATA")}
    metadata: dict[str, str] = {}
    for tar in images.image_layers(image):
        for member in tar:
            name = member.name.removeprefix("./").lstrip("/")
            if name in wanted_metadata:
                handle = tar.extractfile(member)
                assert handle is not None
                text = handle.read().decode()
                dist = re.search(r"^Name: (.+)$", text, re.MULTILINE)
                assert dist, name
                metadata[canonicalize_name(dist.group(1).strip())] = text
    python = images.base_python_version()
    environment = {
        "python_version": python.rsplit(".", 1)[0], "python_full_version": python, "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
        "platform_machine": "x86_64", "os_name": "posix",
    }  # fmt: skip
    pending = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "requirements" / "prod.txt").read_text().splitlines()
        + (ROOT / "requirements" / "base.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-")
    ]
    assert len(pending) > 15
    missing, seen = [], set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, tuple(sorted(requirement.extras)))
        if key in seen:
            continue
        seen.add(key)
        if name not in metadata:
            missing.append(str(requirement))
            continue
        for line in re.findall(r"^Requires-Dist: (.+)$", metadata[name], re.MULTILINE):
            dependency = Requirement(line)
            extras = ["", *requirement.extras]
            if dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra}) for extra in extras
            ):
                pending.append(dependency)
    assert missing == []
    assert "async-timeout" in metadata  # the case above: needed by redis on Python 3.11.2
    assert len(seen) > 40


def test_the_image_holds_no_test_dev_file_checkout_state_or_secret(built) -> None:
    _, files = built
    app = [path for path in files if path.startswith("app/")]
    assert [path for path in app if _is_test(path.removeprefix("app/"))] == []
    dev_only = re.compile(
        r"^app/(\.git|\.devstack|\.venv|\.ci|devstack|tests|docs|cli|benchmarks|scripts|deploy|helm/imm/templates"
        r"|helm/imm/ci|\.mypy_cache|\.ruff_cache|\.pytest_cache)(/|$)"
        r"|^app/(Dockerfile|\.dockerignore|docker-compose\.yml|Makefile|pyproject\.toml|[^/]*\.md"
        r"|requirements/dev\.txt|requirements/devstack\.txt|inferencemgmt/settings_typecheck\.py)$"
        r"|^app/.*\.sqlite3[^/]*$"
    )
    assert [path for path in app if dev_only.search(path)] == []
    assert not any(re.search(r"(^|/)(\.git|\.devstack)(/|$)", path) for path in files)
    # Keys and credentials by name anywhere in the image; by content in everything of ours.
    secret_names = re.compile(r"(\.key|id_rsa|id_ed25519|\.p12|\.pfx|\.kubeconfig|\.env|kubeconfig)$")
    assert [path for path in files if secret_names.search(path)] == []
    private = [path for path in files if re.search(r"(^|/)ssl/private/.+", path)]
    assert private == []


def test_nothing_of_ours_carries_a_private_key(built) -> None:
    image, _ = built
    # Every file under /app (ours), read for private keys and access keys.
    found: list[str] = []
    with tarfile.open(image.archive) as archive:
        index = json.loads(images.blob_of(archive, "./index.json"))
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == image.key
    read = 0
    for tar in images.image_layers(image):
        for member in tar:
            name = member.name.removeprefix("./").lstrip("/")
            if not member.isfile() or not name.startswith("app/") or name.endswith(".pyc"):
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            text = handle.read().decode(errors="replace")
            read += 1
            if re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}", text):
                found.append(name)
    assert read > 300
    assert found == []


def test_the_image_runs_like_the_dockerfile_says(built) -> None:
    """User, working directory, command and environment come from the Dockerfile's final stage; the
    application files belong to root (the non-root user cannot change its own code)."""
    image, files = built
    with tarfile.open(image.archive) as archive:
        index = json.loads(images.blob_of(archive, "./index.json"))
        manifest = json.loads(
            images.blob_of(archive, f"./blobs/sha256/{index['manifests'][0]['digest'].removeprefix('sha256:')}")
        )
        config = json.loads(
            images.blob_of(archive, f"./blobs/sha256/{manifest['config']['digest'].removeprefix('sha256:')}")
        )["config"]
    expected = images.dockerfile_runtime(ROOT / "Dockerfile")
    assert config["User"] == expected.user == "10001:10001"
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == ["gunicorn", "inferencemgmt.wsgi:application"]
    assert "Entrypoint" not in config or not config["Entrypoint"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["DJANGO_SETTINGS_MODULE"] == "inferencemgmt.settings"
    assert "--no-control-socket" in env["GUNICORN_CMD_ARGS"]
    assert not any("PROXY" in key.upper() for key in env)
    assert "8000/tcp" in config["ExposedPorts"]
    owners = {(files[path].uid, files[path].gid) for path in files if path.startswith("app/")}
    assert owners == {(0, 0)}
    assert not any(files[path].mode & 0o022 for path in files if path.startswith("app/") and not files[path].issym())
    assert (files["kube"].uid, files["kube"].gid) == (10001, 10001)
    passwd = images.image_text_file(image, "etc/passwd")
    assert "imm:x:10001:10001::/app:/usr/sbin/nologin" in passwd.splitlines()


def test_dockerignore_rules_follow_docker() -> None:
    patterns = [images.ignore_regex(line) for line in (".git", "**/tests", "*.md", "helm/imm/ci")]
    assert images.ignored(".git/config", patterns)
    assert images.ignored("tenants/tests/test_x.py", patterns)
    assert images.ignored("tests/conftest.py", patterns)
    assert images.ignored("README.md", patterns)
    assert not images.ignored("docs/a.md", patterns)  # `*.md` is the top level only, as in Docker
    assert images.ignored("helm/imm/ci/test-values.yaml", patterns)
    assert not images.ignored("helm/imm/crds/x.yaml", patterns)
    assert not images.ignored("tenants/testsuite.py", patterns)


def test_dockerfile_runtime_reads_the_final_stage(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM a AS build\nENV X=1\nUSER 5\nFROM b\n"
        'ENV PATH=/opt/bin:$PATH \\\n    A="two words"\nLABEL k=v\nUSER 7:7\nWORKDIR /w\nEXPOSE 80\n'
        'CMD ["run", "it"]\n'
    )
    runtime = images.dockerfile_runtime(dockerfile)
    assert runtime.env == {"PATH": f"/opt/bin:{images.BASE_PATH}", "A": "two words"}
    assert (runtime.user, runtime.workdir, runtime.cmd, runtime.exposed) == ("7:7", "/w", ["run", "it"], ["80/tcp"])
    assert runtime.labels == {"k": "v"}
