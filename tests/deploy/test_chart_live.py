"""The Helm chart against the running devstack: helm-check (lint, render, kubeconform against the
cluster's own schemas) and helm-e2e (install, verify, upgrade, uninstall in a fresh namespace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import chart, chart_e2e, chart_policy, chart_schema
from devstack.layout import CHART

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def admin_env(devstack_env: dict[str, str]) -> dict[str, str]:
    os.environ.setdefault("KUBECONFIG", devstack_env["KUBECONFIG"])
    return devstack_env


@pytest.fixture(scope="module")
def helm(admin_env: dict[str, str]) -> chart.Helm:
    return chart.Helm(chart.helm_binary(), admin_env["KUBECONFIG"])


@pytest.fixture(scope="module")
def openapi(admin_env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = chart._get_json(chart._api_client(admin_env["KUBECONFIG"]), "/openapi/v2")
    return result


def test_helm_check_passes(admin_env: dict[str, str]) -> None:
    chart.check()


def test_kubeconform_with_cluster_schemas_rejects_a_typo(openapi: dict[str, Any], tmp_path: Path) -> None:
    """The validator is not a rubber stamp: an unknown field and a wrong type are caught."""
    for name, schema in chart_schema.standalone_schemas(openapi, [("apps/v1", "Deployment")]).items():
        (tmp_path / name).write_text(json.dumps(schema))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {
                    "replicaz": 2,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]},
                    },
                },
            }
        )
    )
    result = subprocess.run(
        [
            str(chart.kubeconform_binary()),
            "-strict",
            "-schema-location",
            str(tmp_path / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "'replicaz' not allowed" in result.stdout
    assert "containerPort" in result.stdout


def test_rendered_rbac_rules_are_the_shared_files(helm: chart.Helm, openapi: dict[str, Any]) -> None:
    """One source: the chart's roles carry exactly the rules the devstack applies from files/rbac/."""
    rendered = chart_schema.documents(chart.render(helm, chart.cluster_version(openapi), release="imm"))
    roles = {(o["kind"], o["metadata"]["name"]): o["rules"] for o in rendered if o["kind"] in {"Role", "ClusterRole"}}
    for path in sorted((ROOT / "helm" / "imm" / "files" / "rbac").glob("*.yaml")):
        for shared in chart_schema.documents(path.read_text()):
            if shared["kind"] in {"Role", "ClusterRole"}:
                assert roles[(shared["kind"], shared["metadata"]["name"])] == shared["rules"], path.name


def test_rendered_serving_templates_are_the_shipped_files(helm: chart.Helm, openapi: dict[str, Any]) -> None:
    from servings.catalogue import TEMPLATE_LABEL, serving_template_configmaps

    rendered = chart_schema.documents(chart.render(helm, chart.cluster_version(openapi), namespace="imm-system"))
    templates = {
        o["metadata"]["name"]: o["data"]
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get(TEMPLATE_LABEL) == "true"
    }
    assert templates == {cm["metadata"]["name"]: cm["data"] for cm in serving_template_configmaps("imm-system")}


def test_required_values_are_named(helm: chart.Helm, openapi: dict[str, Any]) -> None:
    result = helm.run("template", "imm", str(CHART), f"--kube-version={chart.cluster_version(openapi)}", check=False)
    assert result.returncode != 0
    assert "is required (see docs/deployment.md)" in result.stderr


def test_helm_e2e_install_upgrade_uninstall(admin_env: dict[str, str]) -> None:
    report = chart_e2e.e2e(admin_env)
    assert report.failures == [], f"in {report.namespace}, timings {report.timings}"
    # Budget: the whole cycle in about three minutes on the shared two-core machine.
    assert report.timings["total"] < 240, report.timings


def test_the_product_accepts_the_environment_the_chart_sets(
    helm: chart.Helm, openapi: dict[str, Any], tmp_path: Path
) -> None:
    """settings.py reads every variable strictly: render the chart (with a large body limit, which Helm
    would print as 1.048576e+06 if the template forgot to keep it an integer) and load the settings
    with exactly the API container's environment."""
    text = chart.render(helm, chart.cluster_version(openapi), "--set=django.maxJsonBodyBytes=104857600")
    deployment = next(
        o for o in chart_schema.documents(text) if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-api")
    )
    env: dict[str, str] = {}
    for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        value = item.get("value", "secret-from-a-reference")
        if value.startswith("/etc/imm/"):  # mounted files: stand-ins with the same names
            stand_in = tmp_path / value.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("stand-in")
            value = str(stand_in)
        env[item["name"]] = value
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert env["IMM_MAX_JSON_BODY_BYTES"] == "104857600"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.IMM_MAX_JSON_BODY_BYTES)",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "104857600"


def test_a_typo_in_a_value_fails_lint_and_install(helm: chart.Helm, openapi: dict[str, Any]) -> None:
    """values.schema.json closes every block: a misspelt key is an error, never a silent default."""
    version = f"--kube-version={chart.cluster_version(openapi)}"
    lint = helm.run("lint", version, f"--values={chart.CI_VALUES}", "--set=api.replica=3", str(CHART), check=False)
    assert lint.returncode != 0
    assert "additional properties 'replica' not allowed" in lint.stdout + lint.stderr
    install = helm.run(
        "install", "imm-typo", str(CHART), "--dry-run=client", f"--values={chart.CI_VALUES}",
        "--set=securityContext.readOnlyRootFilesytem=true", check=False,
    )  # fmt: skip
    assert install.returncode != 0
    assert "at '/securityContext': additional properties 'readOnlyRootFilesytem' not allowed" in install.stderr


def test_one_registry_value_moves_the_product_and_the_serving_images(helm: chart.Helm, openapi: dict[str, Any]) -> None:
    text = chart.render(
        helm,
        chart.cluster_version(openapi),
        "--set=global.imageRegistry=mirror.example:5000/platform",
        "--set=servingImages.triton=tritonserver:2.51",
        "--set-string=image.tag=7",
    )
    pods = [chart_policy._pod_spec(o) for o in chart_schema.documents(text)]
    containers = [c for pod in pods if pod for c in [*pod.get("initContainers", []), *pod["containers"]]]
    assert len(containers) == 5  # api, worker, beat, controller, migrate
    assert {c["image"] for c in containers} == {"mirror.example:5000/platform/imm:7"}
    api = next(c for c in containers if c["name"] == "api")
    env = {item["name"]: item.get("value") for item in api["env"]}
    assert env["SERVING_IMAGE_REGISTRY"] == "mirror.example:5000/platform"
    # The product takes SERVING_IMAGES as full references: the chart puts the registry in front.
    assert json.loads(env["SERVING_IMAGES"]) == {"triton": "mirror.example:5000/platform/tritonserver:2.51"}
    plain = chart.render(helm, chart.cluster_version(openapi))
    images = {
        c["image"]
        for pod in map(chart_policy._pod_spec, chart_schema.documents(plain))
        if pod
        for c in pod["containers"]
    }
    assert images == {"imm:0.1.0"}
