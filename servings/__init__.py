"""Servings: Serving templates: ConfigMaps labelled as templates in SERVING_TEMPLATES_NAMESPACE, and
the InferenceEndpoint controller (docs/decisions/0005-templates-and-controller.md).

This app is a skeleton until its issue lands; the rooms below are where the code goes.
"""
