"""serializers.py, views.py and urls.py for GET/POST/DELETE /tenants (admin), GET/PATCH
/tenants/<name>; no routes are mounted until they exist.
"""
