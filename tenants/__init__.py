"""Tenants: A tenant is a namespace plus a bucket, secrets, quota, RBAC for its group(s) and a
NetworkPolicy (docs/decisions/0004-provisioning-saga.md).

This app is a skeleton until its issue lands; the rooms below are where the code goes.
"""
