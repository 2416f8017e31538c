"""Servings: Serving templates: ConfigMaps labelled as templates in SERVING_TEMPLATES_NAMESPACE, and
the InferenceEndpoint controller (DECISIONS §8).

This app is a skeleton until its issue lands; the rooms below are where the code goes.
"""
