"""serializers.py, views.py and urls.py for /servings and /servings/<name>; no routes are mounted until
they exist.
"""
