"""The success envelope ``{"status": ..., "data": ...}`` the original clients expect."""

from __future__ import annotations

from typing import Any, Literal

from rest_framework.response import Response

EnvelopeStatus = Literal["OK", "CREATED", "DELETED", "PATCHED", "ACCEPTED"]


def envelope(status: EnvelopeStatus, data: Any, *, http_status: int = 200) -> Response:
    """Success is 200 for every status, as in the original; only ``ACCEPTED`` (202) differs."""
    return Response({"status": status, "data": data}, status=http_status)
