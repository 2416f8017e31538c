"""OpenAPI schema hooks (drf-spectacular)."""

from __future__ import annotations

from typing import Any


def documented_paths_without_trailing_slash(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Routes are ``^tasks/?$``; document them as the original did, ``/tasks`` (the slash is optional)."""
    return [(path.rstrip("/") or "/", *rest) for path, *rest in endpoints]
