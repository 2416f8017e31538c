"""Prove the Helm chart (helm/imm): `python -m devstack.chart check`, and the tools the chart's proofs share.

``check`` lints the chart, renders it and validates every rendered object with kubeconform against
the schemas of the RUNNING devstack cluster: kubeconform would download its schemas from the
internet, which is not allowed here and would validate against another Kubernetes version anyway.
Instead the cluster's own ``/openapi/v2`` document is turned into kubeconform's file layout
(devstack/chart_schema.py). It also checks the chart's own rules on the rendered objects
(devstack/chart_policy.py). The installs are devstack/chart_e2e.py (kwok) and devstack/chart_node.py
(the product's image on the real node).

helm and kubeconform are built from their Go modules (devstack/helm, devstack/kubeconform) into the
devstack's binary cache, like the devstack's own programs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.build import go_binary
from devstack.chart_policy import policy_problems
from devstack.chart_schema import documents, standalone_schemas
from devstack.layout import CHART, CONF
from devstack.proc import StackError, say

CI_VALUES = CHART / "ci" / "test-values.yaml"
CRD_NAME = "inference-endpoints.ai.intel.com"

# Variants rendered by `check`, so that every branch of the templates meets the validator.
CHECK_VARIANTS: dict[str, list[str]] = {
    "full": [],
    "minimal": [
        "--set=ingress.enabled=false",
        "--set=servingTemplates.install=false",
        "--set=bindAdminGroup=false",
        "--set=migrations.enabled=false",
        "--set=api.replicas=1",
        "--set=controller.replicas=1",
        "--set=objectStore.caBundle.configMap=",
        "--set=oidc.caBundle.configMap=",
    ],
}


# --- tools ------------------------------------------------------------------------------------------


def helm_binary() -> Path:
    return go_binary("helm", "helm.sh/helm/v3/cmd/helm", "helm")


def kubeconform_binary() -> Path:
    return go_binary("kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform", "kubeconform")


def admin_kubeconfig() -> str:
    """The devstack's admin kubeconfig: $KUBECONFIG when set (from .devstack/env), else the state dir's."""
    return os.environ.get("KUBECONFIG") or str(CONF / "admin.kubeconfig")


def private_copy(kubeconfig: str, directory: Path) -> str:
    """A copy of the kubeconfig that nobody rewrites under us: `devstack up` (run by any checkout's
    tests) rewrites the devstack's kubeconfigs in place, and a reader in that instant sees an empty
    file (helm then falls back to localhost:8080)."""
    source = Path(kubeconfig)
    deadline = time.monotonic() + 10
    while not (text := source.read_text() if source.exists() else "").strip():
        if time.monotonic() > deadline:
            raise StackError(f"{kubeconfig} is missing or empty")
        time.sleep(0.2)
    directory.mkdir(parents=True, exist_ok=True)
    copy_path = directory / "admin.kubeconfig"
    copy_path.write_text(text)
    copy_path.chmod(0o600)
    return str(copy_path)


@dataclass
class Helm:
    """Runs helm with (a private copy of) the admin kubeconfig and helm's own state in a private directory."""

    binary: Path
    kubeconfig: str
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="imm-helm-")))

    def __post_init__(self) -> None:
        self.kubeconfig = private_copy(self.kubeconfig, self.home)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KUBECONFIG=self.kubeconfig,
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_DATA_HOME=str(self.home / "data"),
        )
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=self.env(), timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise StackError(f"helm {' '.join(args[:2])} failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return result


def _api_client(kubeconfig: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(kubeconfig)


def _get_json(api_client: Any, path: str) -> Any:
    params = api_client.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(*params)
    response.read()
    return json.loads(response.data)


def cluster_version(openapi: dict[str, Any]) -> str:
    """The cluster's Kubernetes version as helm's --kube-version wants it. The OpenAPI document's is
    used: a kube-apiserver built from source (the devstack's) reports v0.0.0-master on /version."""
    version = str(openapi["info"]["version"]).lstrip("v")
    return version if version.count(".") >= 2 else f"{version}.0"


def render(helm: Helm, kube_version: str, *extra: str, release: str = "imm", namespace: str = "imm-system") -> str:
    return helm.run(
        "template",
        release,
        str(CHART),
        f"--namespace={namespace}",
        f"--kube-version={kube_version}",
        "--include-crds",
        f"--values={CI_VALUES}",
        *extra,
    ).stdout


# --- check ------------------------------------------------------------------------------------------


def check() -> None:
    """Lint, render and validate the chart; raise StackError with every problem found."""
    began = time.monotonic()
    helm = Helm(helm_binary(), admin_kubeconfig())
    kubeconform = kubeconform_binary()
    api_client = _api_client(helm.kubeconfig)
    openapi = _get_json(api_client, "/openapi/v2")
    kube_version = cluster_version(openapi)
    helm.run("lint", "--strict", f"--kube-version={kube_version}", f"--values={CI_VALUES}", str(CHART))
    say(f"helm lint: clean (Kubernetes {kube_version})")
    # Required values are enforced: the defaults alone must not render.
    defaults = helm.run("template", "imm", str(CHART), f"--kube-version={kube_version}", check=False)
    if defaults.returncode == 0 or "is required" not in defaults.stderr:
        raise StackError(f"the chart renders without its required values:\n{defaults.stderr}")
    rendered = {name: render(helm, kube_version, *flags) for name, flags in CHECK_VARIANTS.items()}
    objects = [obj for text in rendered.values() for obj in documents(text)]
    problems = policy_problems(objects)
    if problems:
        raise StackError("the rendered chart breaks its own rules:\n  " + "\n  ".join(problems))
    wanted = {(obj["apiVersion"], obj["kind"]) for obj in objects}
    with tempfile.TemporaryDirectory(prefix="imm-schemas-") as tmp:
        schema_dir = Path(tmp)
        for name, schema in standalone_schemas(openapi, wanted).items():
            (schema_dir / name).write_text(json.dumps(schema))
        for variant, text in rendered.items():
            manifest = schema_dir / f"rendered-{variant}.yaml"
            manifest.write_text(text)
            result = subprocess.run(
                [
                    str(kubeconform),
                    "-strict",
                    "-summary",
                    "-schema-location",
                    str(schema_dir / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
                    str(manifest),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if result.returncode != 0:
                raise StackError(f"kubeconform ({variant} values):\n{result.stdout.strip()}\n{result.stderr.strip()}")
            say(f"kubeconform ({variant} values): {result.stdout.strip().splitlines()[-1]}")
    shutil.rmtree(helm.home, ignore_errors=True)
    say(f"helm-check passed in {time.monotonic() - began:.1f}s ({len(objects)} objects, {len(wanted)} kinds)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chart", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check"])
    parser.parse_args(argv)
    try:
        check()
    except StackError as exc:
        print(f"[chart] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
