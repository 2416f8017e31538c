"""InferenceEndpoint custom resources as the tests and benchmarks write them straight to the cluster."""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "ai.intel.com", "v1", "inference-endpoints"


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


def serving_namespace_create(core: Any, name: str) -> None:
    """A namespace the serving pods can start in: with the object-store access secret they read (as
    provisioning creates it; the values are placeholders, kwok runs no real container)."""
    core.create_namespace({"metadata": {"name": name, "labels": {"created_by": "platform_admin"}}})
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
