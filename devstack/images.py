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

import hashlib
import re
import shutil
import subprocess
import sys
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


def _assemble(image: Image, layers: list[Path], config: list[str], parent: Image | None = None) -> None:
    """Write `image.archive`: `parent`'s layers (if any), then one layer per directory in `layers`."""
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
            _run([umoci, "insert", "--image", target, str(layer), "/"], f"image {image.name}")
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
# pip's view of the image's platform: bookworm's glibc 2.36 runs manylinux_2_35 and older wheels.
_WHEEL_PLATFORMS = ("manylinux_2_35_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


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
