"""Settings for mypy's Django plugin only, which imports settings to learn the models.

The real settings refuse to load without a secret key unless DEBUG is on; a type checker needs
neither, so it gets DEBUG's defaults. Never used to serve anything.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from inferencemgmt.settings import *  # noqa: F403
