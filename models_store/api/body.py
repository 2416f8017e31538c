"""The request body of a part PUT as a file-like object of known length, read as it is sent.

Django's ``request.body`` would hold the whole part in memory (and trip
``DATA_UPLOAD_MAX_MEMORY_SIZE`` for anything over 1 MiB); this reads the WSGI input in the sizes
the object-store connection asks for, so memory stays flat whatever the part size.
"""

from __future__ import annotations

import io
from typing import Any

from inferencemgmt.errors import BadRequest


class IncompleteBody(BadRequest):
    default_code = "upload_body_incomplete"
    default_title = "Incomplete body"


class RequestBody(io.RawIOBase):
    """Exactly ``length`` bytes of ``source``; a client that stops early gets a 400, never a short part.

    Raising (instead of returning fewer bytes) aborts the request to the store mid-body, so the store
    discards the part rather than waiting for bytes that will not come. A read error of the client's
    connection is the client's failure too; it must not look like the store's (an OSError would).
    """

    def __init__(self, source: Any, length: int) -> None:
        super().__init__()
        self._source = source
        self.length = length
        self.received = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.length - self.received
        if remaining <= 0:
            return b""
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        try:
            chunk = self._source.read(wanted) if self._source is not None else b""
        except OSError:
            raise IncompleteBody(description="The connection broke while the part was being received.") from None
        if not chunk:
            raise IncompleteBody(
                description=f"The body ended after {self.received} of {self.length} bytes (Content-Length)."
            )
        self.received += len(chunk)
        return bytes(chunk)

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)
