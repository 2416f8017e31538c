"""Container images for the real node, built from Debian packages without a registry or a Docker engine.

Every image is an OCI archive assembled with umoci (from Debian) and cached by the hash of what
goes into it under the devstack cache, outside the checkout, so a clean clone on the same
machine reuses it; containerd imports it into the CRI's `k8s.io` namespace under
`imm.local/devstack/<name>:<key>`, a name no registry serves, and pods run it with
`imagePullPolicy: IfNotPresent` (or `Never`). No Docker engine is needed, none is started.

- `pause`: the pod sandbox, a few-line static Go program of ours (devstack/pause).
- `base`: Debian bookworm from `debootstrap --variant=minbase` plus Python 3 and CA certificates,
  fetched from the Debian mirror this machine's apt already uses.
- `triton`: Triton Inference Server from the `nvidia-pytriton` wheel, on `base`.
- `mlserver`: Seldon MLServer with its scikit-learn and XGBoost runtimes from PyPI wheels, on `base`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.build import GO_MODULES, go_binary, module_key
from devstack.layout import CACHE, LOGS
from devstack.proc import StackError, say

IMAGE_CACHE = CACHE / "images"
REPOSITORY = "imm.local/devstack"

BASE_SUITE = "bookworm"
# What the base image holds beyond minbase: Python for the serving runtimes and for in-pod
# checks, CA certificates for TLS clients. A change here is a new image (it is in the key).
BASE_PACKAGES = ("python3", "ca-certificates")


@dataclass(frozen=True)
class Image:
    """An image the devstack builds: its name, content key, reference and cached archive.

    `alias` is a stable tag (e.g. the server's version) that containerd also gets, for templates
    that cannot know the content key.
    """

    name: str
    key: str
    alias: str = ""

    @property
    def ref(self) -> str:
        return f"{REPOSITORY}/{self.name}:{self.key}"

    @property
    def alias_ref(self) -> str | None:
        return f"{REPOSITORY}/{self.name}:{self.alias}" if self.alias else None

    @property
    def archive(self) -> Path:
        return IMAGE_CACHE / f"{self.name}-{self.key}.tar"


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"{what}: `{' '.join(argv[:3])} ...` failed (exit {result.returncode}): {result.stderr.strip()}"
        )


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(
            f"{name} is not installed; the real node needs it (run "
            "`IMM_DEVSTACK_REAL_NODE=1 scripts/install-system-deps.sh` or `IMM_DEVSTACK_REAL_NODE=1 make devstack`)"
        )
    return path


def _assemble(
    image: Image, layers: list[Path], config: list[str], parent: Image | None = None, packed: bool = False
) -> None:
    """Write `image.archive`: `parent`'s layers (if any), then one layer per directory in `layers`.

    `packed`: each directory is archived by GNU tar (names sorted, one fixed time, numeric owners
    as they are on disk) and added verbatim, so the same inputs give the same layer digest; the
    top-level entries are the directory's children, never `.` (which would replace the root's mode).
    umoci's own `insert` stamps the files' times, and wrote one product layer without the tar
    end-of-archive blocks (umoci 0.4.7), which strict readers refuse."""
    umoci = _tool("umoci")
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE, prefix=f".{image.name}-") as tmp:
        layout = Path(tmp) / "oci"
        target = f"{layout}:{image.key}"
        if parent is None:
            _run([umoci, "init", "--layout", str(layout)], f"image {image.name}")
            _run([umoci, "new", "--image", target], f"image {image.name}")
        else:
            # The parent's archive is an OCI layout: unpack it, retag, and drop the parent's tag so
            # the archive names only this image.
            layout.mkdir()
            _run(["tar", "-C", str(layout), "-xf", str(parent.archive)], f"image {image.name}")
            _run([umoci, "tag", "--image", f"{layout}:{parent.key}", image.key], f"image {image.name}")
            _run([umoci, "rm", "--image", f"{layout}:{parent.key}"], f"image {image.name}")
        for layer in layers:
            if not packed:
                _run([umoci, "insert", "--image", target, str(layer), "/"], f"image {image.name}")
                continue
            tarball = Path(tmp) / f"{layer.name}.tar"
            pack = ["tar", "-C", str(layer), "-cf", str(tarball), "--sort=name", "--mtime=@0", "--numeric-owner"]
            _run([*pack, *sorted(child.name for child in layer.iterdir())], f"image {image.name}: layer")
            _run([umoci, "raw", "add-layer", "--no-history", "--image", target, str(tarball)], f"image {image.name}")
            tarball.unlink()
        _run([umoci, "config", "--image", target, "--os", "linux", "--architecture", "amd64", *config], image.name)
        _run([umoci, "gc", "--layout", str(layout)], f"image {image.name}")
        partial = image.archive.with_suffix(".partial")
        _run(["tar", "-C", str(layout), "-cf", str(partial), "."], f"image {image.name}")
        partial.replace(image.archive)


@contextmanager
def _building(image: Image) -> Iterator[Path]:
    """A scratch directory under the cache for one image's build, with the progress lines around it."""
    say(f"building image {image.ref} (first time on this machine; cached in {IMAGE_CACHE})")
    began = time.monotonic()
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE, prefix=f".{image.name}-") as tmp:
        yield Path(tmp)
    say(f"image {image.ref} built in {time.monotonic() - began:.0f}s")


def pause() -> Image:
    """The sandbox image: our pause program as /pause."""
    image = Image("pause", module_key(GO_MODULES / "pause"))
    if image.archive.exists():
        return image
    binary = go_binary("pause", ".", "imm-pause")
    with tempfile.TemporaryDirectory(prefix="imm-pause-") as tmp:
        root = Path(tmp)
        shutil.copy2(binary, root / "pause")
        (root / "pause").chmod(0o755)
        _assemble(image, [root], ["--config.entrypoint", "/pause", "--config.user", "65535:65535"])
    say(f"image {image.ref} built")
    return image


def debian_mirror(apt: Path = Path("/etc/apt")) -> str:
    """The Debian archive URL this machine's apt uses for the base suite (read, never hard-coded)."""
    sources = apt / "sources.list.d"
    for path in sorted(sources.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, re.MULTILINE))
            if BASE_SUITE in fields.get("Suites", "").split() and "main" in fields.get("Components", "").split():
                return fields["URIs"].split()[0]
    for path in [apt / "sources.list", *sorted(sources.glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                # deb [options] URI SUITE COMPONENT...
                words = [word for word in line.split() if not word.startswith("[")]
                if len(words) >= 4 and words[0] == "deb" and words[2] == BASE_SUITE and "main" in words[3:]:
                    return words[1]
    raise StackError(f"base image: no Debian source for {BASE_SUITE} main in {apt}; cannot run debootstrap")


def _debootstrap(rootfs: Path) -> None:
    """Run debootstrap with a progress line every 20 s (a cold run takes about a minute)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "build-base-image.log"
    argv = [
        _tool("debootstrap"),
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        BASE_SUITE,
        str(rootfs),
        debian_mirror(),
    ]
    began = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        last = 0.0
        for line in process.stdout:
            out.write(line)
            now = time.monotonic()
            if now - last > 20:
                last = now
                say(f"base image: debootstrap {now - began:.0f}s, {line.strip()}")
        code = process.wait()
    if code != 0:
        raise StackError(f"base image: debootstrap failed (exit {code}); see {log}")


def base() -> Image:
    """Debian minbase with Python 3: the root of every image the real node runs."""
    recipe = f"debootstrap --variant=minbase {BASE_SUITE} {' '.join(BASE_PACKAGES)}"
    image = Image("base", hashlib.sha256(recipe.encode()).hexdigest()[:16])
    if image.archive.exists():
        return image
    say(f"building image {image.ref} (first time on this machine; cached in {IMAGE_CACHE})")
    began = time.monotonic()
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE, prefix=".base-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(rootfs)
        # Package caches and lists are build leftovers, not part of the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        _assemble(
            image,
            [rootfs],
            [
                "--config.cmd",
                "/bin/bash",
                "--config.env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ],
        )
    say(f"image {image.ref} built in {time.monotonic() - began:.0f}s")
    return image


# The Triton Inference Server image: the `nvidia-pytriton` wheel bundles a real `tritonserver` (2.51)
# with the python backend, S3 support and a python-backend stub per Python version. Wheels are
# downloaded on the host (pip inside an image cannot pass the TLS-intercepting proxy) and
# installed offline into a layer; the stub needs Debian's libpython3.11 (bookworm's Python).
# numpy 1.x: with numpy 2 the bundled python backend rejects every output tensor ("output tensor
# shape does not match size of output").
TRITON_WHEELS = ("nvidia-pytriton==0.7.0", "numpy==1.26.4")
# boto3 (with its dependencies) for the triton serving template's init container, which copies the
# model's served versions from the tenant's bucket.
TRITON_WHEELS_WITH_DEPENDENCIES = ("boto3==1.44.8",)
TRITON_SERVER_VERSION = "2.51"
TRITON_DEBS = ("libpython3.11",)
TRITON_PYTHON = "3.11"
TRITON_UID = 1000
# pip's view of the image's platform: bookworm's glibc 2.36 runs manylinux_2_35 and older wheels. pip
# does not widen an explicit --platform to the older glibc versions, so each is named (a wheel tagged
# only manylinux_2_28, such as argon2-cffi-bindings 26, is otherwise not found).
_WHEEL_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)),
    "manylinux2014_x86_64",
)


def _pip(*args: str, dependencies: bool = False) -> list[str]:
    platforms = [arg for platform in _WHEEL_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable, "-m", "pip", *args, *([] if dependencies else ["--no-deps"]), "--only-binary=:all:",
        "--python-version", TRITON_PYTHON, *platforms, "--disable-pip-version-check", "--quiet",
    ]  # fmt: skip


TRITON_CONFIG = [
    "--config.user", f"{TRITON_UID}:{TRITON_UID}",
    "--config.env", "PATH=/opt/tritonserver/bin:/usr/local/bin:/usr/bin:/bin",
    "--config.env", "HOME=/tmp",
    "--config.workingdir", "/",
    "--config.cmd", "tritonserver",
]  # fmt: skip


def triton() -> Image:
    """Triton Inference Server on the base image: `tritonserver` at /opt/tritonserver/bin, non-root."""
    parent = base()
    recipe = " ".join(
        [
            parent.ref, *TRITON_WHEELS, *TRITON_WHEELS_WITH_DEPENDENCIES, *TRITON_DEBS, *TRITON_CONFIG,
            "stub for python", TRITON_PYTHON, "layout 1",
        ]
    )  # fmt: skip
    image = Image("triton", hashlib.sha256(recipe.encode()).hexdigest()[:16], alias=TRITON_SERVER_VERSION)
    if image.archive.exists():
        return image
    with _building(image) as work:
        wheels, debs, layer = work / "wheels", work / "debs", work / "layer"
        for directory in (wheels, debs, layer):
            directory.mkdir()
        _run(_pip("download", "--dest", str(wheels), *TRITON_WHEELS), "image triton: pip download")
        clients = work / "clients"
        download = _pip("download", "--dest", str(clients), *TRITON_WHEELS_WITH_DEPENDENCIES, dependencies=True)
        _run(download, "image triton: pip download")
        site = layer / "usr" / "local" / "lib" / f"python{TRITON_PYTHON}" / "dist-packages"
        for wheel, target in (("nvidia_pytriton-*.whl", layer / "opt" / "pytriton"), ("numpy-*.whl", site)):
            (found,) = wheels.glob(wheel)
            _run(_pip("install", "--no-index", "--target", str(target), str(found)), f"image triton: {found.name}")
        install = _pip("install", "--no-index", "--find-links", str(clients), "--target", str(site), dependencies=True)
        _run([*install, *TRITON_WHEELS_WITH_DEPENDENCIES], "image triton: boto3")
        _run(["apt-get", "download", *TRITON_DEBS], "image triton: apt-get download", cwd=debs)
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(layer)], f"image triton: {deb.name}")
        server = layer / "opt" / "pytriton" / "pytriton" / "tritonserver"
        stub = server / "python_backend_stubs" / TRITON_PYTHON / "triton_python_backend_stub"
        shutil.copy2(stub, server / "backends" / "python" / "triton_python_backend_stub")
        shutil.rmtree(server / "python_backend_stubs")
        # Triton's default backend and cache directories live under /opt/tritonserver.
        (layer / "opt" / "tritonserver").symlink_to("pytriton/pytriton/tritonserver")
        _assemble(image, [layer], TRITON_CONFIG, parent=parent)
    return image


# Seldon MLServer (KServe V2 over REST and gRPC) with its scikit-learn and XGBoost runtimes, plus
# boto3 for the mlserver template's init container, which fetches the model from the tenant's
# bucket. The resolved set is downloaded on the host with its dependencies; mlserver-xgboost asks
# for `xgboost`, whose PyPI wheel pulls a 200 MB NCCL wheel for GPUs: `xgboost-cpu` provides the
# same module without it, so those two are installed without dependency resolution.
MLSERVER_VERSION = "1.7.1"
MLSERVER_WHEELS_WITH_DEPENDENCIES = (
    f"mlserver=={MLSERVER_VERSION}",
    f"mlserver-sklearn=={MLSERVER_VERSION}",
    "boto3==1.44.8",
)
MLSERVER_WHEELS = (f"mlserver-xgboost=={MLSERVER_VERSION}", "xgboost-cpu==3.0.5")
MLSERVER_UID = 1000
# pip's console script would carry the host's interpreter in its #! line: the image gets its own.
MLSERVER_LAUNCHER = "#!/usr/bin/python3\nimport sys\n\nfrom mlserver.cli import main\n\nsys.exit(main())\n"
MLSERVER_CONFIG = [
    "--config.user", f"{MLSERVER_UID}:{MLSERVER_UID}",
    "--config.env", "PATH=/usr/local/bin:/usr/bin:/bin",
    "--config.env", "HOME=/tmp",
    # The only place uid 1000 may write in the image (MLServer writes beside its working directory).
    "--config.workingdir", "/tmp",  # noqa: S108
    "--config.cmd", "mlserver",
]  # fmt: skip


def mlserver() -> Image:
    """Seldon MLServer on the base image: `mlserver start <folder>`, non-root, sklearn and xgboost runtimes."""
    parent = base()
    recipe = " ".join(
        [parent.ref, *MLSERVER_WHEELS_WITH_DEPENDENCIES, *MLSERVER_WHEELS, MLSERVER_LAUNCHER, *MLSERVER_CONFIG]
    )
    image = Image("mlserver", hashlib.sha256(recipe.encode()).hexdigest()[:16], alias=MLSERVER_VERSION)
    if image.archive.exists():
        return image
    with _building(image) as work:
        wheels, layer = work / "wheels", work / "layer"
        wheels.mkdir()
        download = _pip("download", "--dest", str(wheels), *MLSERVER_WHEELS_WITH_DEPENDENCIES, dependencies=True)
        _run(download, "image mlserver: pip download")
        _run(_pip("download", "--dest", str(wheels), *MLSERVER_WHEELS), "image mlserver: pip download")
        site = layer / "usr" / "local" / "lib" / f"python{TRITON_PYTHON}" / "dist-packages"
        found = sorted(str(wheel) for wheel in wheels.glob("*.whl"))
        _run(_pip("install", "--no-index", "--target", str(site), *found), "image mlserver: pip install")
        # Console scripts pip wrote for the host's interpreter; the launcher below replaces mlserver's.
        shutil.rmtree(site / "bin", ignore_errors=True)
        launcher = layer / "usr" / "local" / "bin" / "mlserver"
        launcher.parent.mkdir(parents=True)
        launcher.write_text(MLSERVER_LAUNCHER)
        launcher.chmod(0o755)
        _assemble(image, [layer], MLSERVER_CONFIG, parent=parent)
    return image


def ensure_imported(images: list[Image], ctr: list[str]) -> None:
    """Import each image into containerd unless it is there already; `ctr` is the base command line."""
    listed = subprocess.run([*ctr, "images", "list", "-q"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise StackError(f"containerd: cannot list images: {listed.stderr.strip()}")
    present = set(listed.stdout.split())
    # Earlier builds of these images (a recipe changed) only take disk space: drop them. Only builds of
    # the names given: a checkout that knows fewer images (an older branch on the same devstack) must
    # not remove the images another checkout imported and is running pods from.
    wanted = {ref for image in images for ref in (image.ref, image.alias_ref) if ref}
    names = {f"{REPOSITORY}/{image.name}:" for image in images}
    stale = sorted(ref for ref in present if ref.split(":")[0] + ":" in names and ref not in wanted)
    if stale:
        _run([*ctr, "images", "rm", *stale], "containerd: remove stale images")
        say(f"removed {len(stale)} earlier build(s) of the devstack's images from containerd")
    for image in images:
        if image.ref in present:
            continue
        began = time.monotonic()
        _run([*ctr, "images", "import", "--base-name", f"{REPOSITORY}/{image.name}", str(image.archive)], image.name)
        say(f"image {image.ref} imported into containerd in {time.monotonic() - began:.1f}s")
    for image in images:
        if image.alias_ref is not None:
            _run([*ctr, "images", "tag", "--force", image.ref, image.alias_ref], f"image {image.name}: tag")


# --- the product's own image --------------------------------------------------------------------------
# The Dockerfile's build, made from the local `base` (bookworm's Python 3.11, the same minor version
# as the Dockerfile's python:3.11-slim-bookworm): the runtime wheels of requirements/prod.txt are
# downloaded on the host (pip inside a build cannot pass the TLS-intercepting proxy) and installed
# offline into a virtualenv-shaped /opt/venv; the application files are the repository's tracked
# files minus .dockerignore (what `docker build .` would send); static files are collected and
# bytecode compiled at build time; the runtime configuration (environment, user, working directory,
# port, labels, command) is read from the Dockerfile's final stage, so the two builds cannot drift.

PRODUCT_UID = 10001
PRODUCT_REQUIREMENTS = ("requirements/prod.txt", "requirements/base.txt")
VENV = "opt/venv"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A change in how the image is assembled (not in its inputs) bumps this.
PRODUCT_LAYOUT = "product layout 2"


@dataclass(frozen=True)
class RuntimeConfig:
    """The final stage of the Dockerfile, as OCI image configuration."""

    env: dict[str, str]
    user: str
    workdir: str
    cmd: list[str]
    exposed: list[str]
    labels: dict[str, str]

    def umoci_flags(self) -> list[str]:
        flags = ["--config.user", self.user, "--config.workingdir", self.workdir, "--clear=config.cmd"]
        for key, value in self.env.items():
            flags += ["--config.env", f"{key}={value}"]
        for word in self.cmd:
            flags += ["--config.cmd", word]
        for port in self.exposed:
            flags += ["--config.exposedports", port]
        for key, value in self.labels.items():
            flags += ["--config.label", f"{key}={value}"]
        return flags


def _dockerfile_pairs(text: str) -> dict[str, str]:
    """ENV and LABEL arguments: `KEY=value KEY2="quoted value"` (shell-style quoting)."""
    import shlex

    pairs: dict[str, str] = {}
    for word in shlex.split(text):
        key, sep, value = word.partition("=")
        if not sep:
            raise StackError(f"Dockerfile: `{text}` is not KEY=value pairs (the only form the local build reads)")
        pairs[key] = value
    return pairs


def dockerfile_runtime(dockerfile: Path) -> RuntimeConfig:
    """Read the final stage's ENV, USER, WORKDIR, EXPOSE, LABEL and CMD (exec form) from the Dockerfile."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        op, _, args = line.partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((op.upper(), args.strip()))
    if not stages:
        raise StackError(f"{dockerfile}: no FROM")
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    user, workdir, cmd, exposed = "0:0", "/", ["/bin/sh"], []
    for op, args in stages[-1]:
        if op == "ENV":
            for key, value in _dockerfile_pairs(args).items():
                # $PATH is the only reference the Dockerfile makes: the base image's PATH.
                env[key] = value.replace("$PATH", env.get("PATH", BASE_PATH))
        elif op == "LABEL":
            labels.update(_dockerfile_pairs(args))
        elif op == "USER":
            user = args
        elif op == "WORKDIR":
            workdir = args
        elif op == "EXPOSE":
            exposed += [port if "/" in port else f"{port}/tcp" for port in args.split()]
        elif op == "CMD":
            cmd = json.loads(args)
    return RuntimeConfig(env, user, workdir, cmd, exposed, labels)


def ignore_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore line as a regex over a slash-separated path (`*`, `?` within a segment, `**`)."""
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append("(?:[^/]+/)*")
            continue
        escaped = re.escape(segment).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts.append(escaped + "/")
    return re.compile("^" + "".join(parts).removesuffix("/") + "$")


def dockerignore(root: Path) -> list[re.Pattern[str]]:
    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise StackError(f".dockerignore: exceptions ({line}) are not supported by the local image build")
        patterns.append(ignore_regex(line))
    return patterns


def ignored(path: str, patterns: list[re.Pattern[str]]) -> bool:
    """Docker's rule: a path is left out when it or any directory above it matches a pattern."""
    segments = path.split("/")
    prefixes = ["/".join(segments[: i + 1]) for i in range(len(segments))]
    return any(pattern.match(prefix) for pattern in patterns for prefix in prefixes)


def product_files(root: Path) -> list[str]:
    """The build context `docker build .` would send, limited to tracked files: an untracked file
    (a local secret, a scratch database) can never reach the image."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        raise StackError(f"product image: `git ls-files` failed in {root}: {listed.stderr.decode().strip()}")
    patterns = dockerignore(root)
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return sorted(name for name in names if (root / name).is_file() and not ignored(name, patterns))


def base_python_version() -> str:
    """The base image's exact Python version (e.g. 3.11.2), from its dpkg database: pip's
    Requires-Python checks use it, and tests/deploy/test_image.py evaluates every dependency marker
    for it. pip itself evaluates markers for the host's interpreter, whatever --python-version says:
    a dependency that hangs on the patch level (redis needs async-timeout below 3.11.3) must be
    pinned in requirements/prod.txt."""
    status = image_text_file(base(), "var/lib/dpkg/status")
    for stanza in status.split("\n\n"):
        if stanza.startswith(f"Package: python{TRITON_PYTHON}-minimal\n"):
            match = re.search(r"^Version: (\d+\.\d+\.\d+)", stanza, re.MULTILINE)
            if match:
                return match.group(1)
    raise StackError(f"base image: no python{TRITON_PYTHON}-minimal in its dpkg database")


def _product_pip(*args: str) -> list[str]:
    """pip for the product image: binary wheels for the base's platform and its exact Python version."""
    argv = _pip(*args, dependencies=True)
    argv[argv.index("--python-version") + 1] = base_python_version()
    return argv


def _requirements_key(root: Path) -> str:
    digest = hashlib.sha256(" ".join([*_WHEEL_PLATFORMS, base_python_version()]).encode())
    for name in PRODUCT_REQUIREMENTS:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()[:16]


def product_key(root: Path) -> str:
    """Content hash of everything the product image is made of."""
    digest = hashlib.sha256(f"{base().ref} {PRODUCT_LAYOUT} {_requirements_key(root)}".encode())
    for name in ["Dockerfile", *product_files(root)]:
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((root / name).read_bytes()).digest())
    return digest.hexdigest()[:16]


def _product_wheels(root: Path) -> Path:
    """The wheels of requirements/prod.txt for the image's platform, downloaded once per requirement set."""
    wheels = IMAGE_CACHE / f"product-wheels-{_requirements_key(root)}"
    if wheels.is_dir():
        return wheels
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=IMAGE_CACHE, prefix=".product-wheels-"))
    try:
        download = _product_pip("download", "--dest", str(partial), "-r", str(root / "requirements" / "prod.txt"))
        _run(download, "image product: pip download")
        partial.replace(wheels)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return wheels


def image_layers(image: Image) -> Iterator[tarfile.TarFile]:
    """The image's layers, bottom first, each as an open tar stream."""
    with tarfile.open(image.archive) as archive:

        def blob(digest: str) -> bytes:
            member = archive.extractfile(f"./blobs/sha256/{digest.removeprefix('sha256:')}")
            if member is None:
                raise StackError(f"image {image.name}: blob {digest} missing from {image.archive}")
            return member.read()

        index = json.loads(blob_of(archive, "./index.json"))
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as tar:
                yield tar


def blob_of(archive: tarfile.TarFile, name: str) -> bytes:
    """One file of an OCI archive (index.json, a blob under ./blobs/sha256/)."""
    member = archive.extractfile(name)
    if member is None:
        raise StackError(f"{archive.name!s}: no {name}")
    return member.read()


def image_files(image: Image) -> dict[str, tarfile.TarInfo]:
    """The image's final filesystem as {path without leading slash: entry}: layers applied in order,
    with OCI whiteouts (`.wh.<name>` removes a path, `.wh..wh..opq` empties a directory)."""
    files: dict[str, tarfile.TarInfo] = {}
    for tar in image_layers(image):
        for member in tar:
            path = member.name.removeprefix("./").lstrip("/").rstrip("/")
            directory, _, name = path.rpartition("/")
            prefix = f"{directory}/" if directory else ""
            if name == ".wh..wh..opq":
                for old in [old for old in files if old.startswith(prefix) and old != directory]:
                    del files[old]
            elif name.startswith(".wh."):
                gone = prefix + name.removeprefix(".wh.")
                for old in [old for old in files if old == gone or old.startswith(f"{gone}/")]:
                    del files[old]
            elif path:
                files[path] = member
    return files


def image_text_file(parent: Image, name: str) -> str:
    """A text file of the parent image, e.g. etc/passwd (the topmost layer that has it)."""
    found: bytes | None = None
    for tar in image_layers(parent):
        for candidate in (name, f"./{name}", f"/{name}"):
            try:
                member = tar.extractfile(candidate)
            except KeyError:
                continue
            if member is not None:
                found = member.read()
                break
    if found is None:
        raise StackError(f"image {parent.name}: no /{name}")
    return found.decode()


def _venv(layer: Path, wheels: Path, root: Path) -> None:
    """/opt/venv as `python -m venv` makes it, filled offline from the downloaded wheels."""
    venv = layer / VENV
    site = venv / "lib" / f"python{TRITON_PYTHON}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "lib64").symlink_to("lib")
    (venv / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {TRITON_PYTHON}\n"
    )
    for name in ("python", "python3", f"python{TRITON_PYTHON}"):
        (venv / "bin" / name).symlink_to(f"/usr/bin/python{TRITON_PYTHON}")
    install = _product_pip("install", "--no-index", "--no-compile", "--find-links", str(wheels), "--target", str(site))
    _run([*install, "-r", str(root / "requirements" / "prod.txt")], "image product: pip install")
    # pip --target puts console scripts (gunicorn, celery) in site-packages/bin with the host's
    # interpreter in their first line: move them where the venv has them, on the venv's python.
    for script in sorted((site / "bin").iterdir()):
        text = script.read_bytes()
        if text.startswith(b"#!"):
            text = b"#!/" + VENV.encode() + b"/bin/python\n" + text.split(b"\n", 1)[1]
        target = venv / "bin" / script.name
        target.write_bytes(text)
        target.chmod(0o755)
    shutil.rmtree(site / "bin")


def product(root: Path | None = None) -> Image:
    """The product's image (API and console, worker, beat, controller), built like the Dockerfile builds it."""
    from devstack.layout import ROOT

    root = root or ROOT
    parent = base()
    image = Image("product", product_key(root))
    if image.archive.exists():
        return image
    say(f"building image {image.ref} (cached in {IMAGE_CACHE})")
    began = time.monotonic()
    config = dockerfile_runtime(root / "Dockerfile")
    wheels = _product_wheels(root)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE, prefix=".product-") as tmp:
        layer = Path(tmp) / "layer"
        app = layer / config.workdir.lstrip("/")
        _venv(layer, wheels, root)
        for name in product_files(root):
            (app / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, app / name)
        env = {
            "PATH": BASE_PATH,
            "HOME": tmp,
            "PYTHONPATH": str(layer / VENV / "lib" / f"python{TRITON_PYTHON}" / "site-packages"),
            "DJANGO_SETTINGS_MODULE": config.env.get("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings"),
            "DJANGO_SECRET_KEY": "collectstatic-only",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
        result = subprocess.run(collect, cwd=app, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"image product: collectstatic failed: {result.stderr.strip()[-2000:]}")
        # Bytecode for the image's Python (3.11, the host's too): hash-based, so valid whatever the
        # files' times; a read-only root filesystem could never write it at run time.
        if sys.version_info[:2] == tuple(int(part) for part in TRITON_PYTHON.split(".")):
            compile_all = [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
            _run([*compile_all, "-d", "/app", str(app)], "image product: compileall")
            _run([*compile_all, str(layer / VENV)], "image product: compileall")
        etc = layer / "etc"
        etc.mkdir()
        passwd = image_text_file(parent, "etc/passwd")
        group = image_text_file(parent, "etc/group")
        (etc / "passwd").write_text(passwd + f"imm:x:{PRODUCT_UID}:{PRODUCT_UID}::/app:/usr/sbin/nologin\n")
        (etc / "group").write_text(group + f"imm:x:{PRODUCT_UID}:\n")
        # docker-compose.yml shares kubeconfigs through a volume mounted here; a new volume takes this owner.
        kube = layer / "kube"
        kube.mkdir()
        os.chown(kube, PRODUCT_UID, PRODUCT_UID)
        for path in [layer, *layer.rglob("*")]:
            if not path.is_symlink() and path != kube:
                os.chown(path, 0, 0, follow_symlinks=False)
        _assemble(image, [layer], config.umoci_flags(), parent=parent, packed=True)
    size = image.archive.stat().st_size / 2**20
    say(f"image {image.ref} built in {time.monotonic() - began:.0f}s ({size:.0f} MiB archive)")
    return image


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.images product [--tag T]`: `make docker_build` where no Docker engine runs."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m devstack.images", description=main.__doc__)
    parser.add_argument("image", choices=["product"])
    parser.add_argument("--name", default="imm", help="repository name the archive is meant for (default imm)")
    parser.add_argument("--tag", default="latest")
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        image = product()
        files = image_files(image)
    except StackError as exc:
        print(f"[images] {exc}", file=sys.stderr)
        return 1
    size = sum(entry.size for entry in files.values() if entry.isfile())
    say(
        f"{args.name}:{args.tag} is {image.ref} ({time.monotonic() - began:.0f}s): OCI archive {image.archive} "
        f"({image.archive.stat().st_size / 2**20:.0f} MiB, {size / 2**20:.0f} MiB unpacked). Load it with "
        f"`ctr -n k8s.io images import --base-name <registry>/{args.name} {image.archive}` and "
        f"`ctr -n k8s.io images tag <registry>/{args.name}:{image.key} <registry>/{args.name}:{args.tag}`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
