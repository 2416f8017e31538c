"""Endpoints: InferenceEndpoint custom resources (ai.intel.com/v1) in a tenant's namespace
(docs/compatibility.md, Endpoints), created, read, changed and deleted AS the calling user; the
controller (servings) renders them.
"""
