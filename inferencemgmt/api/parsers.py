"""JSON parsing with size and depth bounds and the project's error types.

DRF reads the body straight from the request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
does not protect JSON routes; this parser enforces ``IMM_MAX_JSON_BODY_BYTES`` itself (413) and
reports malformed JSON as 400 with a stable code.

Nesting is bounded too (``MAX_JSON_DEPTH``): Python's parser raises ``RecursionError`` a little
below a thousand levels (a 500 on every JSON route, the unauthenticated token exchange included),
and a body that parses just below that limit would still exhaust the stack of whatever walks it
next (validation, error rendering, logging). No request body of this API nests more than a few
levels, so anything deeper is refused here, as malformed, before any view sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from inferencemgmt.errors import MalformedJSON, PayloadTooLarge
from inferencemgmt.nesting import nested_deeper_than

#: Deepest nesting of arrays and objects a request body may have (the API's bodies use 3 or 4).
MAX_JSON_DEPTH = 32


def _too_deep_error() -> MalformedJSON:
    return MalformedJSON(description=f"Could not parse the JSON body: it nests deeper than {MAX_JSON_DEPTH} levels.")


def loads_bounded(raw: bytes) -> Any:
    """UTF-8 JSON with the depth bound: the value, or MalformedJSON (400) naming what is wrong."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _too_deep_error() from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJSON(description=f"Could not parse the JSON body: {exc}") from None
    if nested_deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep_error()
    return value


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
        return loads_bounded(raw)
