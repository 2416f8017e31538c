"""serializers.py, views.py and urls.py for /tenants/<t>/endpoints[/<e>[/replicas]]; no routes are
mounted until they exist.
"""
