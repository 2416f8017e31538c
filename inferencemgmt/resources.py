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
