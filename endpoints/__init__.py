"""Endpoints: InferenceEndpoint custom resources (ai.intel.com/v1) in a tenant's namespace (DECISIONS
§6).

This app is a skeleton until its issue lands; the rooms below are where the code goes.
"""
