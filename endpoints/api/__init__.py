"""serializers.py, views.py and urls.py for /tenants/<t>/endpoints[/<e>[/replicas|events|logs|pause|resume]]."""
