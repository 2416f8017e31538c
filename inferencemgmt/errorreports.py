"""What Django's error reports (the DEBUG page, error e-mails, logged reports) may show.

Django hides a frame's local variables only where a function is decorated with
``sensitive_variables``, and only with DEBUG off. Secrets pass through library frames we cannot
decorate (mozilla-django-oidc builds a token request holding the client secret; requests keeps the
form-encoded body), so this filter cleans every report, DEBUG or not, at two levels: any variable,
POST field or dict key whose name looks secret, and any value that contains one of the platform's
configured secrets verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from types import FrameType
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.views.debug import SafeExceptionReporterFilter

#: Names (variables, settings, POST fields, dict keys) whose values are never shown.
SECRET_NAMES = re.compile(
    r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|CREDENTIAL|AUTHORIZATION|VERIFIER|^CODE$|DATABASE_URL|REDIS_URL",
    flags=re.IGNORECASE,
)
#: Settings whose values are searched for inside any other value (a secret copied into a URL or a body).
SECRET_SETTINGS = (
    "SECRET_KEY",
    "OIDC_API_CLIENT_SECRET",
    "OIDC_RP_CLIENT_SECRET",
    "S3_SECRET_ACCESS_KEY",
    "S3_ACCESS_KEY_ID",
    "DATABASE_URL",
    "REDIS_URL",
)
# Shorter values would match by chance and hide innocent text.
_MIN_SECRET_LENGTH = 8


@cache
def _known_secrets(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True))


def known_secrets() -> tuple[str, ...]:
    """The configured secret values, longest first (read each time: tests change settings)."""
    values = tuple(str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS)
    return _known_secrets(values)


def scrub_text(text: str, secrets: Iterable[str], substitute: str) -> str:
    """``text`` with every occurrence of each secret replaced."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, substitute)
    return text


class SecretsReporterFilter(SafeExceptionReporterFilter):
    """``DEFAULT_EXCEPTION_REPORTER_FILTER``: cleanse by name and by value, always."""

    hidden_settings = SECRET_NAMES

    def is_active(self, request: HttpRequest | None) -> bool:
        # Django's filter stands down under DEBUG; the debug page is exactly where the secret leaked.
        return True

    def _by_value(self, value: Any) -> Any:
        secrets = known_secrets()
        if not secrets:
            return value
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # a broken __repr__ must not break the report
            return self.cleansed_substitute
        scrubbed = scrub_text(text, secrets, self.cleansed_substitute)
        return value if scrubbed == text else scrubbed

    def get_post_parameters(self, request: HttpRequest | None) -> QueryDict | dict[str, Any]:
        if request is None:
            return {}
        cleansed = request.POST.copy()
        for name in cleansed:
            if SECRET_NAMES.search(name):
                cleansed[name] = self.cleansed_substitute
            else:
                cleansed[name] = self._by_value(cleansed[name])
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: FrameType) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._by_value(self.cleanse_setting(name, value))) for name, value in variables]
