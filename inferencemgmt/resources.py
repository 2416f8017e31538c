"""The InferenceEndpoint custom resource as every app names it: API coordinates, labels, quota key.

The API writes these resources (endpoints), the controller renders them (servings), provisioning
counts them in the tenant's quota and grants them in the tenant's Role (tenants), and the model routes
ask whether a user may manage them (models_store). One definition here keeps the four from drifting
apart, and lets each app import it without importing another app's internals.
"""

from __future__ import annotations

GROUP = "ai.intel.com"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceEndpoint"
PLURAL = "inference-endpoints"
#: The label on every object the controller renders for an endpoint (value: the endpoint's name).
ENDPOINT_LABEL = f"{GROUP}/inference-endpoint"
#: The ResourceQuota key that counts a tenant's endpoints (the tenant's `maxEndpoints`).
QUOTA_COUNT_KEY = f"count/{PLURAL}.{GROUP}"
#: The CRD's default `modelVersionPolicy`: serve the newest version.
DEFAULT_VERSION_POLICY = "{latest{}}"

#: How to call an endpoint, as its serving's Service template says it in these annotations (each
#: optional): the facts of a protocol live in the template that speaks it, so a serving an admin adds
#: describes itself the same way, and the API's endpoint view and the console read them from the
#: endpoint's Service together with its ports named ``http`` and ``grpc``.
PROTOCOL_ANNOTATIONS = {
    # A name people know the protocol by, e.g. "Open Inference Protocol (KServe V2)".
    "name": "ai.intel.com/protocol",
    # The REST path of an inference request, with the model's name in it.
    "httpPath": "ai.intel.com/http-path",
    # The gRPC service clients call, e.g. "inference.GRPCInferenceService".
    "grpcService": "ai.intel.com/grpc-service",
    # An example request body for the REST path (JSON).
    "exampleRequest": "ai.intel.com/example-request",
}
