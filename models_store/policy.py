"""Which model versions an endpoint's ``modelVersionPolicy`` serves (TF Serving's semantics).

Used to refuse deleting a version an endpoint serves. The API writes the grammar of
docs/compatibility.md (``{specific{versions:1 versions:2 }}``, ``{all{}}``, ``{latest{}}``); TF
Serving also knows ``latest{num_versions:N}``, which a CR written by hand may hold. A policy we
cannot read is taken to serve every version: refusing a delete wrongly is recoverable
(``force``), deleting what a live endpoint loads is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_POLICY = "{latest{}}"
_SPACE = re.compile(r"\s+")
_SPECIFIC = re.compile(r"\{specific\{((?:versions:\d+)+)\}\}")
_LATEST = re.compile(r"\{latest\{(?:num_versions:(\d+))?\}\}")
_VERSION = re.compile(r"versions:(\d+)")


def served_versions(policy: str | None, available: Iterable[int]) -> set[int]:
    """The versions, among ``available`` (those in the bucket), that ``policy`` makes the server load."""
    versions = set(available)
    compact = _SPACE.sub("", policy or DEFAULT_POLICY)
    specific = _SPECIFIC.fullmatch(compact)
    if specific:
        return {int(number) for number in _VERSION.findall(specific.group(1))}
    latest = _LATEST.fullmatch(compact)
    if latest:
        count = int(latest.group(1) or 1)
        return set(sorted(versions, reverse=True)[:count])
    return versions
