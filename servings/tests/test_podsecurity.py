"""The restricted Pod Security Standards check: each control refuses its field, compliant pods pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from servings import podsecurity
from servings.catalogue import shipped_templates
from servings.controller.rendering import Platform, ServingTemplate, render_sample
from servings.podsecurity import object_violations

pytestmark = pytest.mark.unit

PREFIX = "spec.template.spec"
C0 = f"{PREFIX}.containers[0]"


def compliant() -> dict[str, Any]:
    """A Deployment as restricted as the profile asks, with every allowed optional field exercised."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
                        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                    }
                },
                "spec": {
                    "serviceAccountName": "default",
                    "automountServiceAccountToken": False,
                    "hostNetwork": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "appArmorProfile": {"type": "RuntimeDefault"},
                        "seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"},
                        "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}],
                    },
                    "volumes": [
                        {"name": "config", "configMap": {"name": "c"}},
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "token", "projected": {"sources": []}},
                    ],
                    "initContainers": [
                        {
                            "name": "init",
                            "image": "i",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "containers": [
                        {
                            "name": "app",
                            "image": "a",
                            "ports": [{"containerPort": 9000, "hostPort": 0}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "procMount": "Default",
                                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                            },
                        }
                    ],
                },
            }
        },
    }


def pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def container(obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = pod(obj)["containers"][index]
    return found


def context(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = container(obj)["securityContext"]
    return found


def fields(obj: dict[str, Any]) -> dict[str, str]:
    return {v.field: v.control for v in object_violations(obj)}


def test_a_compliant_pod_template_passes():
    assert object_violations(compliant()) == []


def test_the_shipped_templates_render_compliant_pods():
    for name, data in shipped_templates().items():
        objects = render_sample(ServingTemplate(name, data), Platform(domain="imm.local"))
        assert [v for obj in objects for v in object_violations(obj)] == [], name


Mutation = Callable[[dict[str, Any]], None]

CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "host process",
        lambda o: pod(o)["securityContext"].update(windowsOptions={"hostProcess": True}),
        f"{PREFIX}.securityContext.windowsOptions.hostProcess",
        podsecurity.HOST_PROCESS,
    ),
    ("host network", lambda o: pod(o).update(hostNetwork=True), f"{PREFIX}.hostNetwork", podsecurity.HOST_NAMESPACES),
    ("host pid", lambda o: pod(o).update(hostPID=True), f"{PREFIX}.hostPID", podsecurity.HOST_NAMESPACES),
    ("host ipc", lambda o: pod(o).update(hostIPC=True), f"{PREFIX}.hostIPC", podsecurity.HOST_NAMESPACES),
    (
        "a truthy non-boolean host namespace",
        lambda o: pod(o).update(hostNetwork="true"),
        f"{PREFIX}.hostNetwork",
        podsecurity.HOST_NAMESPACES,
    ),
    (
        "privileged",
        lambda o: context(o).update(privileged=True),
        f"{C0}.securityContext.privileged",
        podsecurity.PRIVILEGED,
    ),
    (
        "privileged init container",
        lambda o: pod(o)["initContainers"][0]["securityContext"].update(privileged=True),
        f"{PREFIX}.initContainers[0].securityContext.privileged",
        podsecurity.PRIVILEGED,
    ),
    (
        "privileged ephemeral container",
        lambda o: pod(o).update(
            ephemeralContainers=[{"name": "e", "securityContext": {**context(o), "privileged": True}}]
        ),
        f"{PREFIX}.ephemeralContainers[0].securityContext.privileged",
        podsecurity.PRIVILEGED,
    ),
    (
        "added capability",
        lambda o: context(o)["capabilities"]["add"].append("SYS_ADMIN"),
        f"{C0}.securityContext.capabilities.add[1]",
        podsecurity.CAPABILITIES,
    ),
    (
        "a baseline default capability is still too much for restricted",
        lambda o: context(o)["capabilities"].update(add=["CHOWN"]),
        f"{C0}.securityContext.capabilities.add[0]",
        podsecurity.CAPABILITIES,
    ),
    (
        "capabilities not dropped",
        lambda o: context(o)["capabilities"].update(drop=["NET_RAW"]),
        f"{C0}.securityContext.capabilities.drop",
        podsecurity.CAPABILITIES,
    ),
    (
        "hostPath volume",
        lambda o: pod(o)["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
        f"{PREFIX}.volumes[3].hostPath",
        podsecurity.HOST_PATH,
    ),
    (
        "host port",
        lambda o: container(o)["ports"][0].update(hostPort=80),
        f"{C0}.ports[0].hostPort",
        podsecurity.HOST_PORTS,
    ),
    (
        "apparmor unconfined field",
        lambda o: context(o).update(appArmorProfile={"type": "Unconfined"}),
        f"{C0}.securityContext.appArmorProfile.type",
        podsecurity.APPARMOR,
    ),
    (
        "apparmor unconfined annotation",
        lambda o: o["spec"]["template"]["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
        ),
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",
        podsecurity.APPARMOR,
    ),
    (
        "selinux type",
        lambda o: pod(o)["securityContext"]["seLinuxOptions"].update(type="spc_t"),
        f"{PREFIX}.securityContext.seLinuxOptions.type",
        podsecurity.SELINUX,
    ),
    (
        "selinux user",
        lambda o: context(o).update(seLinuxOptions={"user": "system_u"}),
        f"{C0}.securityContext.seLinuxOptions.user",
        podsecurity.SELINUX,
    ),
    (
        "proc mount",
        lambda o: context(o).update(procMount="Unmasked"),
        f"{C0}.securityContext.procMount",
        podsecurity.PROC_MOUNT,
    ),
    (
        "unsafe sysctl",
        lambda o: pod(o)["securityContext"]["sysctls"].append({"name": "kernel.msgmax", "value": "1"}),
        f"{PREFIX}.securityContext.sysctls[1].name",
        podsecurity.SYSCTLS,
    ),
    (
        "volume type outside the list",
        lambda o: pod(o)["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}),
        f"{PREFIX}.volumes[3].nfs",
        podsecurity.VOLUME_TYPES,
    ),
    (
        "privilege escalation allowed",
        lambda o: context(o).update(allowPrivilegeEscalation=True),
        f"{C0}.securityContext.allowPrivilegeEscalation",
        podsecurity.PRIVILEGE_ESCALATION,
    ),
    (
        "privilege escalation unset",
        lambda o: context(o).pop("allowPrivilegeEscalation"),
        f"{C0}.securityContext.allowPrivilegeEscalation",
        podsecurity.PRIVILEGE_ESCALATION,
    ),
    (
        "runAsNonRoot false at pod level",
        lambda o: pod(o)["securityContext"].update(runAsNonRoot=False),
        f"{PREFIX}.securityContext.runAsNonRoot",
        podsecurity.NON_ROOT,
    ),
    (
        "runAsNonRoot false in a container overrides the pod",
        lambda o: context(o).update(runAsNonRoot=False),
        f"{C0}.securityContext.runAsNonRoot",
        podsecurity.NON_ROOT,
    ),
    (
        "runAsNonRoot set nowhere",
        lambda o: pod(o)["securityContext"].pop("runAsNonRoot"),
        f"{C0}.securityContext.runAsNonRoot",
        podsecurity.NON_ROOT,
    ),
    (
        "root user at pod level",
        lambda o: pod(o)["securityContext"].update(runAsUser=0),
        f"{PREFIX}.securityContext.runAsUser",
        podsecurity.NON_ROOT_USER,
    ),
    (
        "root user in a container",
        lambda o: context(o).update(runAsUser=0),
        f"{C0}.securityContext.runAsUser",
        podsecurity.NON_ROOT_USER,
    ),
    (
        "seccomp unconfined at pod level",
        lambda o: pod(o)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        f"{PREFIX}.securityContext.seccompProfile.type",
        podsecurity.SECCOMP,
    ),
    (
        "seccomp unconfined in a container",
        lambda o: context(o).update(seccompProfile={"type": "Unconfined"}),
        f"{C0}.securityContext.seccompProfile.type",
        podsecurity.SECCOMP,
    ),
    (
        "seccomp set nowhere",
        lambda o: pod(o)["securityContext"].pop("seccompProfile"),
        f"{C0}.securityContext.seccompProfile.type",
        podsecurity.SECCOMP,
    ),
    (
        "seccomp unconfined annotation",
        lambda o: o["spec"]["template"]["metadata"]["annotations"].update(
            {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
        ),
        "spec.template.metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]",
        podsecurity.SECCOMP,
    ),
    (
        "another service account",
        lambda o: pod(o).update(serviceAccountName="kube-controller"),
        f"{PREFIX}.serviceAccountName",
        podsecurity.SERVICE_ACCOUNT,
    ),
    (
        "the deprecated service account field",
        lambda o: pod(o).update(serviceAccount="admin"),
        f"{PREFIX}.serviceAccount",
        podsecurity.SERVICE_ACCOUNT,
    ),
    (
        "service account token mounted",
        lambda o: pod(o).update(automountServiceAccountToken=True),
        f"{PREFIX}.automountServiceAccountToken",
        podsecurity.SERVICE_ACCOUNT,
    ),
]


@pytest.mark.parametrize(("mutate", "field", "control"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_control_names_the_forbidden_field(mutate: Mutation, field: str, control: str) -> None:
    """The field is named, and nothing but that control complains (a pod-level gap also names each container)."""
    obj = compliant()
    mutate(obj)
    found = fields(obj)
    assert found.get(field) == control, found
    assert set(found.values()) == {control}


def test_a_container_may_carry_seccomp_and_non_root_itself():
    obj = compliant()
    pod(obj)["securityContext"] = {}
    for each in [*pod(obj)["containers"], *pod(obj)["initContainers"]]:
        each["securityContext"].update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p"})
    assert object_violations(obj) == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: pod(o).update(securityContext=["runAsUser", 0]), f"{PREFIX}.securityContext"),
        (lambda o: pod(o).update(containers={"name": "app"}), f"{PREFIX}.containers"),
        (
            lambda o: context(o).update(capabilities={"add": "SYS_ADMIN", "drop": ["ALL"]}),
            f"{C0}.securityContext.capabilities.add",
        ),
        (lambda o: o["spec"].update(template="hostNetwork: true"), "spec.template"),
    ],
    ids=["pod context a list", "containers a mapping", "capabilities a string", "template a string"],
)
def test_a_value_of_the_wrong_shape_is_a_violation_not_a_pass(mutate: Mutation, field: str) -> None:
    obj = compliant()
    mutate(obj)
    assert field in fields(obj)


def test_unhashable_values_are_refused_without_crashing():
    obj = compliant()
    context(obj)["capabilities"]["add"] = [["SYS_ADMIN"]]
    pod(obj)["securityContext"]["sysctls"] = [{"name": {"kernel": "x"}}]
    assert set(fields(obj)) == {
        f"{C0}.securityContext.capabilities.add[0]",
        f"{PREFIX}.securityContext.sysctls[0].name",
    }


def test_root_user_zero_is_not_mistaken_for_false():
    obj = compliant()
    pod(obj)["hostNetwork"] = 0  # not `false`: the API server refuses the type, the check must not accept it
    context(obj)["runAsUser"] = False
    assert set(fields(obj)) == {f"{PREFIX}.hostNetwork", f"{C0}.securityContext.runAsUser"}


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Pod", ""),
        ("StatefulSet", "spec.template."),
        ("Job", "spec.template."),
        ("CronJob", "spec.jobTemplate.spec.template."),
    ],
)
def test_every_workload_kind_has_its_pod_template_checked(kind: str, path: str) -> None:
    template = copy.deepcopy(compliant()["spec"]["template"])
    template["spec"]["hostPID"] = True
    obj: dict[str, Any] = {"kind": kind}
    target = obj
    keys = path.rstrip(".").split(".") if path else []
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    if keys:
        target[keys[-1]] = template
    else:
        obj.update(template)
    assert fields(obj) == {f"{path}spec.hostPID": podsecurity.HOST_NAMESPACES}


def test_objects_without_pods_have_nothing_to_check():
    assert object_violations({"kind": "Service", "spec": {"externalName": "x"}}) == []
    assert object_violations({"kind": "ConfigMap", "data": {"hostNetwork": "true"}}) == []


def test_describe_shows_the_first_few_and_counts_the_rest():
    obj = compliant()
    pod(obj).update(hostNetwork=True, hostPID=True, hostIPC=True)
    context(obj).update(privileged=True, procMount="Unmasked", runAsUser=0)
    text = podsecurity.describe(object_violations(obj), limit=2)
    assert text.startswith(f"{PREFIX}.hostNetwork: must be unset or false (Host Namespaces); {PREFIX}.hostPID")
    assert text.endswith("; and 4 more")
