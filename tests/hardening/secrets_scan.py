"""Finding secrets in text without ever printing them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def find_secrets(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Where a secret occurs: ``"<text index>: secret sha256:<8 hex>"`` (the value itself never)."""
    wanted = [s for s in set(secrets) if s]
    found = []
    for index, text in enumerate(texts):
        for secret in wanted:
            if secret in text:
                found.append(f"{index}: secret sha256:{hashlib.sha256(secret.encode()).hexdigest()[:8]}")
    return found
