"""The Pod Security Standards "restricted" profile, checked on the pod templates a serving renders.

Why here as well as in the API server: serving templates are written by platform admins, yet the
controller applies what they render into tenant namespaces with its OWN rights. A template asking for
``hostNetwork``, a ``hostPath`` volume or a privileged container would hand a tenant's endpoint (and
whoever controls its image) the node. Tenant namespaces carry the Pod Security Admission label
``enforce: restricted``, so the API server refuses such pods; this module refuses them earlier and
more clearly, naming the field: when the template is saved (a test render) and again each time the
controller renders an endpoint (templates stored before this check, or edited in the ConfigMap).

The rules are the profile's controls as the Kubernetes documentation states them (Pod Security
Standards: every Baseline control, then the Restricted ones), plus two of our own under
"Service account": a serving pod runs as its namespace's ``default`` service account and never asks
for an API token (the controller also forces ``automountServiceAccountToken: false``).

Values are checked by identity, not equality (``0 == False`` in Python), and any unexpected shape
(a list where a mapping belongs) is a violation: a check that can be fooled by a type is no check.
Windows pods get no exemptions: the platform serves Linux pods only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Control names, as the Pod Security Standards page titles them (ours last).
HOST_PROCESS = "HostProcess"
HOST_NAMESPACES = "Host Namespaces"
PRIVILEGED = "Privileged Containers"
CAPABILITIES = "Capabilities"
HOST_PATH = "HostPath Volumes"
HOST_PORTS = "Host Ports"
APPARMOR = "AppArmor"
SELINUX = "SELinux"
PROC_MOUNT = "/proc Mount Type"
SECCOMP = "Seccomp"
SYSCTLS = "Sysctls"
VOLUME_TYPES = "Volume Types"
PRIVILEGE_ESCALATION = "Privilege Escalation"
NON_ROOT = "Running as Non-root"
NON_ROOT_USER = "Running as Non-root user"
SERVICE_ACCOUNT = "Service account"

#: Sysctls the Baseline profile allows: namespaced and isolated from other pods on the node.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
#: The only volume sources the Restricted profile allows (everything else reaches node or network storage).
ALLOWED_VOLUME_SOURCES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
#: The only capability the Restricted profile lets a container add (after dropping ALL).
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

#: Where each workload kind keeps its pod template (metadata + spec); a Pod is its own template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}


@dataclass(frozen=True)
class Violation:
    """One forbidden value: the field's path in the object, the control it breaks, and what is allowed."""

    field: str
    control: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} ({self.control})"


class _Shape(Exception):
    """A value of the wrong type where the check must look inside: reported, never skipped."""

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(field)
        self.violation = Violation(field, "Pod Security Standards", f"must be {expected}")


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Shape(field, "a mapping")
    return value


def _sequence(value: Any, field: str) -> Sequence[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return value
    raise _Shape(field, "a list")


def _unset_or_false(value: Any) -> bool:
    return value is None or value is False


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    """Membership that a list or mapping in the value cannot crash (they are unhashable)."""
    return isinstance(value, str) and value in allowed


class _PodCheck:
    """The checks of one pod template; ``prefix`` is the path of its ``spec`` (``spec.template.spec``)."""

    def __init__(self, metadata: Mapping[str, Any], spec: Mapping[str, Any], prefix: str, meta_prefix: str) -> None:
        self.metadata = metadata
        self.spec = spec
        self.prefix = prefix
        self.meta_prefix = meta_prefix
        self.found: list[Violation] = []

    def add(self, field: str, control: str, message: str) -> None:
        self.found.append(Violation(field, control, message))

    def guarded(self, check: Any, *args: Any) -> None:
        """Run one check; a malformed part becomes a violation and the other checks still run."""
        try:
            check(*args)
        except _Shape as shape:
            self.found.append(shape.violation)

    # -- walking ------------------------------------------------------------------------------------------
    def containers(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for key in CONTAINER_LISTS:
            items = _sequence(self.spec.get(key), f"{self.prefix}.{key}")
            for index, container in enumerate(items):
                path = f"{self.prefix}.{key}[{index}]"
                yield path, _mapping(container, path)

    def container_contexts(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for path, container in self.containers():
            yield f"{path}.securityContext", _mapping(container.get("securityContext"), f"{path}.securityContext")

    def pod_context(self) -> Mapping[str, Any]:
        return _mapping(self.spec.get("securityContext"), f"{self.prefix}.securityContext")

    # -- Baseline -----------------------------------------------------------------------------------------
    def host_process(self) -> None:
        contexts = [(f"{self.prefix}.securityContext", self.pod_context()), *self.container_contexts()]
        for path, context in contexts:
            options = _mapping(context.get("windowsOptions"), f"{path}.windowsOptions")
            if not _unset_or_false(options.get("hostProcess")):
                self.add(f"{path}.windowsOptions.hostProcess", HOST_PROCESS, "must be unset or false")

    def host_namespaces(self) -> None:
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if not _unset_or_false(self.spec.get(key)):
                self.add(f"{self.prefix}.{key}", HOST_NAMESPACES, "must be unset or false")

    def privileged(self) -> None:
        for path, context in self.container_contexts():
            if not _unset_or_false(context.get("privileged")):
                self.add(f"{path}.privileged", PRIVILEGED, "must be unset or false")

    def capabilities(self) -> None:
        for path, context in self.container_contexts():
            caps = _mapping(context.get("capabilities"), f"{path}.capabilities")
            added = _sequence(caps.get("add"), f"{path}.capabilities.add")
            for index, name in enumerate(added):
                if not _one_of(name, ALLOWED_ADDED_CAPABILITIES):
                    self.add(
                        f"{path}.capabilities.add[{index}]",
                        CAPABILITIES,
                        f"{name!r} may not be added; only NET_BIND_SERVICE",
                    )
            dropped = _sequence(caps.get("drop"), f"{path}.capabilities.drop")
            if "ALL" not in dropped:
                self.add(f"{path}.capabilities.drop", CAPABILITIES, "must contain ALL")

    def host_ports(self) -> None:
        for path, container in self.containers():
            for index, port in enumerate(_sequence(container.get("ports"), f"{path}.ports")):
                host_port = _mapping(port, f"{path}.ports[{index}]").get("hostPort")
                if host_port is not None and (isinstance(host_port, bool) or host_port != 0):
                    self.add(f"{path}.ports[{index}].hostPort", HOST_PORTS, "must be unset or 0")

    def apparmor(self) -> None:
        contexts = [(f"{self.prefix}.securityContext", self.pod_context()), *self.container_contexts()]
        for path, context in contexts:
            profile = _mapping(context.get("appArmorProfile"), f"{path}.appArmorProfile")
            kind = profile.get("type")
            if kind is not None and not _one_of(kind, ALLOWED_APPARMOR_TYPES):
                self.add(f"{path}.appArmorProfile.type", APPARMOR, "must be unset, RuntimeDefault or Localhost")
        for key, value in self.annotations():
            if key.startswith(APPARMOR_ANNOTATION_PREFIX) and not (
                value == "runtime/default" or (isinstance(value, str) and value.startswith("localhost/"))
            ):
                self.add(
                    f"{self.meta_prefix}.annotations[{key}]", APPARMOR, "must be runtime/default or localhost/<profile>"
                )

    def annotations(self) -> list[tuple[str, Any]]:
        annotations = _mapping(self.metadata.get("annotations"), f"{self.meta_prefix}.annotations")
        return [(str(key), value) for key, value in annotations.items()]

    def selinux(self) -> None:
        contexts = [(f"{self.prefix}.securityContext", self.pod_context()), *self.container_contexts()]
        for path, context in contexts:
            options = _mapping(context.get("seLinuxOptions"), f"{path}.seLinuxOptions")
            kind = options.get("type")
            if kind is not None and not _one_of(kind, ALLOWED_SELINUX_TYPES):
                self.add(
                    f"{path}.seLinuxOptions.type",
                    SELINUX,
                    "must be unset or one of container_t, container_init_t, container_kvm_t, container_engine_t",
                )
            for key in ("user", "role"):
                if options.get(key) not in (None, ""):
                    self.add(f"{path}.seLinuxOptions.{key}", SELINUX, "must be unset")

    def proc_mount(self) -> None:
        for path, context in self.container_contexts():
            if context.get("procMount") not in (None, "Default"):
                self.add(f"{path}.procMount", PROC_MOUNT, "must be unset or Default")

    def sysctls(self) -> None:
        path = f"{self.prefix}.securityContext.sysctls"
        for index, sysctl in enumerate(_sequence(self.pod_context().get("sysctls"), path)):
            name = _mapping(sysctl, f"{path}[{index}]").get("name")
            if not _one_of(name, SAFE_SYSCTLS):
                self.add(f"{path}[{index}].name", SYSCTLS, f"{name!r} is not a safe sysctl")

    # -- Restricted ---------------------------------------------------------------------------------------
    def volumes(self) -> None:
        path = f"{self.prefix}.volumes"
        for index, volume in enumerate(_sequence(self.spec.get("volumes"), path)):
            for source in sorted(set(_mapping(volume, f"{path}[{index}]")) - {"name"}, key=str):
                if source == "hostPath":
                    self.add(f"{path}[{index}].hostPath", HOST_PATH, "hostPath volumes are forbidden")
                elif source not in ALLOWED_VOLUME_SOURCES:
                    allowed = ", ".join(sorted(ALLOWED_VOLUME_SOURCES))
                    self.add(f"{path}[{index}].{source}", VOLUME_TYPES, f"volume type not allowed; only {allowed}")

    def privilege_escalation(self) -> None:
        for path, context in self.container_contexts():
            if context.get("allowPrivilegeEscalation") is not False:
                self.add(f"{path}.allowPrivilegeEscalation", PRIVILEGE_ESCALATION, "must be false")

    def non_root(self) -> None:
        pod_value = self.pod_context().get("runAsNonRoot")
        pod_path = f"{self.prefix}.securityContext.runAsNonRoot"
        if pod_value is not None and pod_value is not True:
            self.add(pod_path, NON_ROOT, "must be true")
        for path, context in self.container_contexts():
            value = context.get("runAsNonRoot")
            if value is True or (value is None and pod_value is True):
                continue
            where = "must be true" if value is not None else f"must be true here or in {pod_path}"
            self.add(f"{path}.runAsNonRoot", NON_ROOT, where)

    def non_root_user(self) -> None:
        contexts = [(f"{self.prefix}.securityContext", self.pod_context()), *self.container_contexts()]
        for path, context in contexts:
            user = context.get("runAsUser")
            if user is not None and (isinstance(user, bool) or not isinstance(user, int) or user == 0):
                self.add(f"{path}.runAsUser", NON_ROOT_USER, "must be unset or a non-zero user id")

    def seccomp(self) -> None:
        pod_path = f"{self.prefix}.securityContext.seccompProfile"
        pod_type = _mapping(self.pod_context().get("seccompProfile"), pod_path).get("type")
        if pod_type is not None and not _one_of(pod_type, RESTRICTED_SECCOMP_TYPES):
            self.add(f"{pod_path}.type", SECCOMP, "must be RuntimeDefault or Localhost")
        for path, context in self.container_contexts():
            kind = _mapping(context.get("seccompProfile"), f"{path}.seccompProfile").get("type")
            if kind is None and pod_type is not None:
                continue
            if not _one_of(kind, RESTRICTED_SECCOMP_TYPES):
                where = "must be RuntimeDefault or Localhost" + ("" if kind is not None else f" here or in {pod_path}")
                self.add(f"{path}.seccompProfile.type", SECCOMP, where)
        for key, value in self.annotations():
            legacy = key == SECCOMP_POD_ANNOTATION or key.startswith(SECCOMP_CONTAINER_ANNOTATION_PREFIX)
            if (
                legacy
                and value not in ("runtime/default", "docker/default")
                and not str(value).startswith("localhost/")
            ):
                self.add(f"{self.meta_prefix}.annotations[{key}]", SECCOMP, "must be runtime/default or localhost/…")

    # -- ours ---------------------------------------------------------------------------------------------
    def service_account(self) -> None:
        for key in ("serviceAccountName", "serviceAccount"):
            if self.spec.get(key) not in (None, "", "default"):
                self.add(f"{self.prefix}.{key}", SERVICE_ACCOUNT, "must be unset or default")
        if not _unset_or_false(self.spec.get("automountServiceAccountToken")):
            self.add(f"{self.prefix}.automountServiceAccountToken", SERVICE_ACCOUNT, "must be unset or false")

    def run(self) -> list[Violation]:
        for check in (
            self.host_process,
            self.host_namespaces,
            self.privileged,
            self.capabilities,
            self.host_ports,
            self.apparmor,
            self.selinux,
            self.proc_mount,
            self.sysctls,
            self.volumes,
            self.privilege_escalation,
            self.non_root,
            self.non_root_user,
            self.seccomp,
            self.service_account,
        ):
            self.guarded(check)
        return self.found


def pod_template_violations(template: Mapping[str, Any], prefix: str) -> list[Violation]:
    """Every restricted-profile violation of one pod template (``metadata`` + ``spec``) found at ``prefix``."""
    dot = f"{prefix}." if prefix else ""
    try:
        metadata = _mapping(template.get("metadata"), f"{dot}metadata")
        spec = _mapping(template.get("spec"), f"{dot}spec")
    except _Shape as shape:
        return [shape.violation]
    return _PodCheck(metadata, spec, f"{dot}spec", f"{dot}metadata").run()


def object_violations(obj: Mapping[str, Any]) -> list[Violation]:
    """The violations of every pod template ``obj`` holds (none for kinds that make no pods)."""
    path = POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
    if path is None:
        return []
    template: Any = obj
    for depth, key in enumerate(path):
        template = template.get(key) if isinstance(template, Mapping) else None
        if not isinstance(template, Mapping):
            return [Violation(".".join(path[: depth + 1]), "Pod Security Standards", "must be a mapping")]
    return pod_template_violations(template, ".".join(path))


def describe(violations: Sequence[Violation], limit: int = 5) -> str:
    """The violations for a message: the first ``limit``, then how many more."""
    shown = "; ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
