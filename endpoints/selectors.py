"""Reads of endpoints, scoped to what the caller may see.

Will hold: endpoint_list / endpoint_view, merging live Deployment and Pod status (label selectors).
"""
