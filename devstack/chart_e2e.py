"""`python -m devstack.chart_e2e`: the chart installed into a fresh namespace of the devstack cluster.

kwok nodes run the pods without pulling images; this proves what an operator relies on from the
cluster's side (Deployments available, the CRD established, the service account's rights and their
limits), then upgrades with changed values, uninstalls and looks for anything left behind. The
product's own image on the real node is devstack.chart_node (`make helm-e2e`).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.chart import (
    CRD_NAME,
    Helm,
    _api_client,
    admin_kubeconfig,
    helm_binary,
)
from devstack.layout import CHART
from devstack.proc import StackError, say


@dataclass
class Probe:
    """One SubjectAccessReview and the answer the chart promises."""

    what: str
    expected: bool
    verb: str
    resource: str
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def access_allowed(api_client: Any, user: str, groups: list[str], probe: Probe) -> bool:
    from kubernetes import client

    attributes = client.V1ResourceAttributes(
        verb=probe.verb,
        resource=probe.resource,
        group=probe.group,
        namespace=probe.namespace or None,
        name=probe.name or None,
        subresource=probe.subresource or None,
    )
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attributes)
    )
    answer = client.AuthorizationV1Api(api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


def service_account_user(namespace: str, name: str) -> tuple[str, list[str]]:
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    )


def rbac_probes(namespace: str) -> dict[str, list[Probe]]:
    """What each identity of a release in `namespace` may and may not do."""
    rbac = "rbac.authorization.k8s.io"
    never_for_anyone = [
        Probe("list secrets cluster-wide", False, "list", "secrets"),
        Probe("read secrets in kube-system", False, "get", "secrets", namespace="kube-system"),
        Probe("create cluster role bindings", False, "create", "clusterrolebindings", rbac),
        Probe("bind cluster-admin", False, "bind", "clusterroles", rbac, name="cluster-admin"),
        Probe("escalate cluster roles", False, "escalate", "clusterroles", rbac),
        Probe("escalate roles", False, "escalate", "roles", rbac, namespace="any-tenant"),
        Probe("delete the CRD", False, "delete", "customresourcedefinitions", "apiextensions.k8s.io", name=CRD_NAME),
        Probe("create nodes", False, "create", "nodes"),
    ]
    return {
        "management-api": [
            Probe("impersonate users", True, "impersonate", "users"),
            Probe("impersonate groups", True, "impersonate", "groups"),
            Probe("list namespaces", True, "list", "namespaces"),
            Probe("review robot tokens", True, "create", "tokenreviews", "authentication.k8s.io"),
            Probe("impersonate robots", True, "impersonate", "serviceaccounts", namespace="any-tenant"),
            Probe("create service accounts as itself", False, "create", "serviceaccounts", namespace="any-tenant"),
            Probe(
                "mint service-account tokens as itself",
                False,
                "create",
                "serviceaccounts",
                namespace="kube-system",
                subresource="token",
            ),
            Probe("read its own namespace's secrets", True, "get", "secrets", namespace=namespace),
            Probe("create namespaces as itself", False, "create", "namespaces"),
            Probe("create endpoints as itself", False, "create", "inference-endpoints", "ai.intel.com", "any-tenant"),
            # docs/endpoint-quota.md: it corrects a stale endpoint count, and can change no limit.
            Probe(
                "correct quota usage", True, "update", "resourcequotas", namespace="any-tenant", subresource="status"
            ),
            Probe("change quota limits", False, "update", "resourcequotas", namespace="any-tenant"),
            *never_for_anyone,
        ],
        "platform-admin": [
            Probe("create namespaces", True, "create", "namespaces"),
            Probe("create quotas", True, "create", "resourcequotas", namespace="any-tenant"),
            Probe("create roles", True, "create", "roles", rbac, namespace="any-tenant"),
            Probe("create role bindings", True, "create", "rolebindings", rbac, namespace="any-tenant"),
            Probe("create network policies", True, "create", "networkpolicies", "networking.k8s.io", "any-tenant"),
            Probe("create endpoints", True, "create", "inference-endpoints", "ai.intel.com", "any-tenant"),
            Probe("impersonate", False, "impersonate", "users"),
            Probe("read a tenant's secrets", False, "get", "secrets", namespace="any-tenant"),
            # Writing secrets is granted cluster-wide by RBAC (a tenant's namespace does not exist
            # before provisioning); the admission policy confines it to tenant namespaces, which a
            # SubjectAccessReview cannot show: tests/hardening/test_admin_confinement.py proves it.
            *never_for_anyone,
        ],
        "controller": [
            Probe("watch endpoints", True, "watch", "inference-endpoints", "ai.intel.com"),
            Probe(
                "write endpoint status",
                True,
                "patch",
                "inference-endpoints",
                "ai.intel.com",
                "any-tenant",
                subresource="status",
            ),
            Probe("create deployments", True, "create", "deployments", "apps", "any-tenant"),
            Probe("renew its lease", True, "update", "leases", "coordination.k8s.io", namespace),
            Probe("touch leases elsewhere", False, "update", "leases", "coordination.k8s.io", "kube-system"),
            Probe("create endpoints", False, "create", "inference-endpoints", "ai.intel.com", "any-tenant"),
            Probe("impersonate", False, "impersonate", "users"),
            *never_for_anyone,
        ],
    }


def installed_identity_problems(api_client: Any, namespace: str, release: str, workdir: Path) -> list[str]:
    """Act exactly as an installed API pod would: the release's kubeconfig ConfigMap, with the pod's
    token and CA paths pointed at a fresh service-account token and the cluster's CA (and the
    in-cluster server name at this cluster's address), loaded by the kubernetes client the product uses."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    installed = core.read_namespaced_config_map(f"{release}-kubeconfig", namespace).data["kubeconfig"]
    kubeconfig = yaml.safe_load(installed)
    token = core.create_namespaced_service_account_token(
        f"{release}-management-api",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)),
    ).status.token
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "token").write_text(token)
    (workdir / "ca.crt").write_text(Path(api_client.configuration.ssl_ca_cert).read_text())
    kubeconfig["clusters"][0]["cluster"].update(
        server=api_client.configuration.host, **{"certificate-authority": str(workdir / "ca.crt")}
    )
    assert kubeconfig["users"][0]["user"]["tokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    kubeconfig["users"][0]["user"]["tokenFile"] = str(workdir / "token")
    (workdir / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    pod_core = client.CoreV1Api(config.new_client_from_config(str(workdir / "kubeconfig")))
    problems = []
    try:
        pod_core.list_namespace(limit=1)
        pod_core.read_namespaced_secret("imm-django", namespace)
    except ApiException as exc:
        problems.append(f"the installed API identity cannot do its job: {exc.status} {exc.reason}")
    try:
        pod_core.list_secret_for_all_namespaces(limit=1)
        problems.append("the installed API identity can list secrets cluster-wide")
    except ApiException as exc:
        if exc.status != 403:
            problems.append(f"listing secrets cluster-wide gave {exc.status}, not 403")
    return problems


def e2e_values(devstack: dict[str, str], admin_group: str) -> dict[str, Any]:
    """Values that point a release at the devstack's services (the secrets are created by e2e)."""
    return {
        "image": {"repository": "imm", "tag": "e2e"},
        "platformDomain": devstack.get("PLATFORM_DOMAIN", "imm.local"),
        "adminGroup": admin_group,
        "django": {"secretKey": {"existingSecret": "imm-django"}},
        "database": {"url": {"existingSecret": "imm-database"}},
        "redis": {"url": {"existingSecret": "imm-redis"}},
        "objectStore": {"endpointUrl": devstack["S3_ENDPOINT_URL"], "credentials": {"existingSecret": "imm-s3"}},
        "oidc": {
            "issuer": devstack["OIDC_ISSUER"],
            "apiClientId": devstack.get("OIDC_API_CLIENT_ID", "imm-api"),
            "apiClientSecret": {"existingSecret": "imm-oidc"},
            "caBundle": {"configMap": "imm-oidc-ca"},
        },
        "kubernetes": {"server": "https://kubernetes.default.svc"},
    }


def _e2e_prerequisites(namespace: str, devstack: dict[str, str]) -> list[dict[str, Any]]:
    """The namespace and the Secrets the operator creates before installing (here from the devstack)."""

    def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }

    ca = Path(devstack["OIDC_CA_FILE"]).read_text() if devstack.get("OIDC_CA_FILE") else ""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"imm-e2e": "true"}}},
        secret("imm-django", {"secret-key": secrets.token_urlsafe(32)}),
        secret("imm-database", {"url": devstack.get("IMM_DEVSTACK_DATABASE_URL", "postgres://imm@127.0.0.1/imm")}),
        secret("imm-redis", {"url": devstack["REDIS_URL"]}),
        secret(
            "imm-s3",
            {"access-key-id": devstack["S3_ACCESS_KEY_ID"], "secret-access-key": devstack["S3_SECRET_ACCESS_KEY"]},
        ),
        secret("imm-oidc", {"client-secret": devstack.get("OIDC_API_CLIENT_SECRET", "")}),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "imm-oidc-ca", "namespace": namespace},
            "data": {"ca.crt": ca},
        },
    ]


# Namespaced kinds a release may leave behind, as (apiVersion, kind).
NAMESPACED_KINDS = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
]
CLUSTER_KINDS = [
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
]


@dataclass
class E2EReport:
    namespace: str
    release: str
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)


def _leftovers(api: Any, release: str, namespace: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    found = []
    for api_version, kind in NAMESPACED_KINDS:
        resource = api.resources.get(api_version=api_version, kind=kind)
        for item in resource.get(namespace=namespace, label_selector=selector).items:
            # A terminating pod is on its way out (the worker has 120 s to finish its task), not an orphan.
            if kind == "Pod" and item.metadata.deletionTimestamp:
                continue
            found.append(f"{kind}/{item.metadata.name}")
        if kind == "Secret":  # helm's own release records
            for item in resource.get(namespace=namespace, label_selector=f"owner=helm,name={release}").items:
                found.append(f"Secret/{item.metadata.name}")
    for api_version, kind in CLUSTER_KINDS:
        resource = api.resources.get(api_version=api_version, kind=kind)
        for item in resource.get(label_selector=selector).items:
            found.append(f"{kind}/{item.metadata.name}")
    return found


def _deployments_available(api: Any, namespace: str, release: str) -> dict[str, tuple[int, int]]:
    resource = api.resources.get(api_version="apps/v1", kind="Deployment")
    items = resource.get(namespace=namespace, label_selector=f"app.kubernetes.io/instance={release}").items
    return {
        item.metadata.name: (int(item.spec.replicas or 0), int(item.status.availableReplicas or 0)) for item in items
    }


def e2e(devstack: dict[str, str], keep: bool = False) -> E2EReport:
    """Install, verify, upgrade and uninstall the chart in a fresh namespace; return what was seen."""
    from kubernetes import dynamic

    from servings.catalogue import TEMPLATE_LABEL, serving_template_configmaps

    began = time.monotonic()
    helm = Helm(helm_binary(), devstack.get("KUBECONFIG") or admin_kubeconfig())
    api_client = _api_client(helm.kubeconfig)
    api = dynamic.DynamicClient(api_client)
    namespace = f"imm-e2e-{secrets.token_hex(3)}"
    release = namespace  # contains the chart's name, so cluster-scoped names are <release>-<role>
    report = E2EReport(namespace, release)
    admin_group = f"{namespace}-admins"
    values = Path(helm.home) / "values.yaml"
    values.parent.mkdir(parents=True, exist_ok=True)
    values.write_text(yaml.safe_dump(e2e_values(devstack, admin_group)))
    report.timings["tools"] = time.monotonic() - began
    installed = False
    try:
        for manifest in _e2e_prerequisites(namespace, devstack):
            resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
            resource.create(body=manifest, namespace=manifest["metadata"].get("namespace"))
        step = time.monotonic()
        helm.run(
            "install", release, str(CHART), f"--namespace={namespace}", f"--values={values}", "--wait", "--timeout=150s"
        )
        installed = True
        report.timings["install"] = time.monotonic() - step

        deployments = _deployments_available(api, namespace, release)
        report.expect(
            set(deployments) == {f"{release}-{role}" for role in ("api", "worker", "beat", "controller")},
            f"deployments: {sorted(deployments)}",
        )
        for name, (wanted, available) in deployments.items():
            report.expect(wanted == available and wanted > 0, f"{name}: {available}/{wanted} available")
        report.expect(deployments.get(f"{release}-api", (0, 0))[0] == 2, "the API runs 2 replicas by default")

        crd = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get(
            name=CRD_NAME
        )
        established = [c for c in crd.status.conditions if c.type == "Established"]
        report.expect(bool(established) and established[0].status == "True", "the CRD is not established")

        configmaps = api.resources.get(api_version="v1", kind="ConfigMap")
        shipped = {cm["metadata"]["name"]: cm["data"] for cm in serving_template_configmaps(namespace)}
        installed_templates = {
            item.metadata.name: dict(item.data)
            for item in configmaps.get(namespace=namespace, label_selector=f"{TEMPLATE_LABEL}=true").items
        }
        report.expect(installed_templates == shipped, "the serving-template ConfigMaps differ from the shipped files")

        identities = {
            "management-api": service_account_user(namespace, f"{release}-management-api"),
            "platform-admin": (f"someone@{namespace}.example", [admin_group, "system:authenticated"]),
            "controller": service_account_user(namespace, f"{release}-controller"),
        }
        for identity, probes in rbac_probes(namespace).items():
            user, groups = identities[identity]
            for probe in probes:
                allowed = access_allowed(api_client, user, groups, probe)
                report.expect(
                    allowed == probe.expected,
                    f"{identity} {'can' if allowed else 'can NOT'} {probe.what} (expected the opposite)",
                )

        report.failures += installed_identity_problems(api_client, namespace, release, Path(helm.home) / "pod")

        step = time.monotonic()
        helm.run(
            "upgrade",
            release,
            str(CHART),
            f"--namespace={namespace}",
            f"--values={values}",
            "--set=api.replicas=3",
            "--set=controller.replicas=1",
            "--set=django.logLevel=DEBUG",
            "--wait",
            "--timeout=150s",
        )
        report.timings["upgrade"] = time.monotonic() - step
        deployments = _deployments_available(api, namespace, release)
        report.expect(deployments.get(f"{release}-api") == (3, 3), f"after upgrade the API is {deployments}")
        report.expect(deployments.get(f"{release}-controller") == (1, 1), f"after upgrade: {deployments}")
        api_deployment = api.resources.get(api_version="apps/v1", kind="Deployment").get(
            name=f"{release}-api", namespace=namespace
        )
        env = {e.name: e.value for e in api_deployment.spec.template.spec.containers[0].env}
        report.expect(env.get("DJANGO_LOG_LEVEL") == "DEBUG", "the upgrade did not change DJANGO_LOG_LEVEL")
        pdbs = api.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
        pdb_names = {item.metadata.name for item in pdbs.get(namespace=namespace).items}
        report.expect(
            f"{release}-controller" not in pdb_names and f"{release}-api" in pdb_names,
            f"after scaling the controller to 1 its disruption budget should be gone: {sorted(pdb_names)}",
        )

        step = time.monotonic()
        helm.run("uninstall", release, f"--namespace={namespace}", "--wait", "--timeout=120s")
        installed = False
        deadline = time.monotonic() + 60
        while (left := _leftovers(api, release, namespace)) and time.monotonic() < deadline:
            time.sleep(1)
        report.timings["uninstall"] = time.monotonic() - step
        report.expect(not left, f"helm uninstall left behind: {left}")
        crd = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get(
            name=CRD_NAME
        )
        report.expect(crd.metadata.name == CRD_NAME, "the CRD must survive helm uninstall")
    finally:
        if not keep:
            if installed:
                helm.run("uninstall", release, f"--namespace={namespace}", "--wait", check=False)
            _cleanup(api, release, namespace)
            shutil.rmtree(helm.home, ignore_errors=True)
        report.timings["total"] = time.monotonic() - began
    return report


def _cleanup(api: Any, release: str, namespace: str) -> None:
    """Remove the test namespace and anything cluster-scoped of the release (after a failure)."""
    for api_version, kind in CLUSTER_KINDS:
        resource = api.resources.get(api_version=api_version, kind=kind)
        for item in resource.get(label_selector=f"app.kubernetes.io/instance={release}").items:
            resource.delete(name=item.metadata.name)
    api.resources.get(api_version="v1", kind="Namespace").delete(name=namespace)


def _devstack_env() -> dict[str, str]:
    import shlex

    from devstack.layout import ENV_FILE

    if not ENV_FILE.exists():
        raise StackError(f"{ENV_FILE} is missing: start the devstack (make devstack) or set IMM_DEVSTACK_STATE")
    env: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chart_e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the namespace for inspection")
    args = parser.parse_args(argv)
    try:
        devstack = _devstack_env()
        report = e2e(devstack, keep=args.keep)
    except StackError as exc:
        print(f"[chart] {exc}", file=sys.stderr)
        return 1
    timings = ", ".join(f"{key} {value:.1f}s" for key, value in report.timings.items())
    if report.failures:
        print("[chart] helm-e2e FAILED:\n  " + "\n  ".join(report.failures), file=sys.stderr)
        print(f"[chart] {timings}", file=sys.stderr)
        return 1
    say(f"helm-e2e passed in namespace {report.namespace}: {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
