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
