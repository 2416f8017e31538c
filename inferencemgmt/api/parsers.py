"""JSON parsing with a size bound and the project's error types.

DRF reads the body straight from the request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
does not protect JSON routes; this parser enforces ``IMM_MAX_JSON_BODY_BYTES`` itself (413) and
reports malformed JSON as 400 with a stable code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from inferencemgmt.errors import MalformedJSON, PayloadTooLarge


class BoundedJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit: int = settings.IMM_MAX_JSON_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(description=f"JSON bodies are limited to {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedJSON(description=f"Could not parse the JSON body: {exc}") from None
