"""InferenceEndpoint custom resources as the tests and benchmarks write them straight to the cluster."""

from __future__ import annotations

from typing import Any

from servings.catalogue import shipped_templates
from tenants.manifests import POD_SECURITY_LABELS, TENANT_OWNER_LABEL

GROUP, VERSION, PLURAL = "ai.intel.com", "v1", "inference-endpoints"
#: The labels provisioning gives a tenant namespace: the ownership marker and Pod Security `restricted`.
TENANT_NAMESPACE_LABELS = {TENANT_OWNER_LABEL: "platform_admin", **POD_SECURITY_LABELS}

#: Edits of the shipped tf-serving deployment template, each asking for what the restricted Pod Security
#: profile forbids: (the text replaced, its replacement, the field the refusal must name).
FORBIDDEN_EDITS: dict[str, tuple[str, str, str]] = {
    "hostNetwork": (
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      hostNetwork: true\n",
        "spec.template.spec.hostNetwork",
    ),
    "hostPID": (
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      hostPID: true\n",
        "spec.template.spec.hostPID",
    ),
    "privileged": (
        "            allowPrivilegeEscalation: false\n",
        "            allowPrivilegeEscalation: false\n            privileged: true\n",
        "spec.template.spec.containers[0].securityContext.privileged",
    ),
    "hostPath": (
        "      volumes:\n",
        "      volumes:\n        - name: root\n          hostPath: {path: /}\n",
        "spec.template.spec.volumes[0].hostPath",
    ),
    "capability": (
        '              drop: ["ALL"]\n',
        '              drop: ["ALL"]\n              add: ["SYS_ADMIN"]\n',
        "spec.template.spec.containers[0].securityContext.capabilities.add[0]",
    ),
    "serviceAccount": (
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      serviceAccountName: imm-controller\n",
        "spec.template.spec.serviceAccountName",
    ),
}


def forbidden_template(edit: str) -> tuple[dict[str, str], str]:
    """The shipped tf-serving template with one forbidden ``edit``, and the field it sets."""
    old, new, field = FORBIDDEN_EDITS[edit]
    data = dict(shipped_templates()["tf-serving"])
    assert old in data["deployment.tmpl"], f"the shipped template changed: {old!r} is gone"
    data["deployment.tmpl"] = data["deployment.tmpl"].replace(old, new, 1)
    return data, field


def endpoint_body(name: str, **spec: Any) -> dict[str, Any]:
    """An InferenceEndpoint of the shipped ``tf-serving`` template, one replica unless ``spec`` says otherwise."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceEndpoint",
        "metadata": {"name": name},
        "spec": {
            "endpointName": name,
            "modelName": "resnet",
            "subjectName": "client",
            "servingName": "tf-serving",
            "replicas": 1,
            **spec,
        },
    }


def serving_namespace_create(core: Any, name: str, *, tenant: bool = True) -> None:
    """A namespace the serving pods can start in: with the object-store access secret they read (as
    provisioning creates it; the values are placeholders, kwok runs no real container). ``tenant``
    False leaves out the tenant labels: a namespace the controller must not act in."""
    labels = TENANT_NAMESPACE_LABELS if tenant else {}
    core.create_namespace({"metadata": {"name": name, "labels": dict(labels)}})
    core.create_namespaced_secret(
        name,
        {
            "metadata": {"name": "minio-access-info"},
            "stringData": {
                "minio.access_key_id": "k",
                "minio.access_secret_key": "s",
                "minio.endpoint": "s3:8333",
                "minio.endpoint_url": "http://s3:8333",
                "minio.minio_region": "us-east-1",
            },
        },
    )
