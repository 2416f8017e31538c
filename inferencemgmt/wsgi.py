"""WSGI entry point: ``gunicorn inferencemgmt.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inferencemgmt.settings")

application = get_wsgi_application()

# Each gunicorn worker imports this before it serves: the Kubernetes client's slow first imports
# happen here, not on a user's request (inferencemgmt.kube.load_api_classes).
from inferencemgmt import kube  # noqa: E402 -- after Django is set up

kube.load_api_classes()
