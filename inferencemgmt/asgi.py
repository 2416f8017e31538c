"""ASGI entry point (the API is synchronous; this exists for servers that speak only ASGI)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")

application = get_asgi_application()
