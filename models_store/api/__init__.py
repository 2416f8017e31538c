"""serializers.py, views.py and urls.py for /tenants/<t>/models and /tenants/<t>/upload/*; no routes
are mounted until they exist.
"""
