"""Strict, typed readers for environment variables.

Only ``inferencemgmt/settings.py`` calls these. Every reader fails fast with ``ImproperlyConfigured``
naming the variable, so a typo in a deployment stops the process at start-up instead of surfacing as
a strange error on the first request. Secrets can come from ``<NAME>_FILE`` (a mounted Kubernetes
secret or Docker secret) so they never have to sit in the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class _Missing:
    """Sentinel: the variable has no default and must be set."""


REQUIRED = _Missing()
N = TypeVar("N", int, float)


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _missing(name: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name} is required but not set.")


def string(name: str, default: str | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    if value is not None:
        return value
    if isinstance(default, _Missing):
        raise _missing(name)
    return default


def boolean(name: str, default: bool | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        if isinstance(default, _Missing):
            raise _missing(name)
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name} must be a boolean (true/false/1/0/yes/no/on/off), got {value!r}."
    )


def _numeric(
    name: str,
    default: N | _Missing,
    convert: Callable[[str], N],
    kind: str,
    minimum: N | None,
    environ: Mapping[str, str] | None,
) -> N:
    value = _raw(name, environ)
    if value is None:
        if isinstance(default, _Missing):
            raise _missing(name)
        result = default
    else:
        try:
            result = convert(value)
        except ValueError:
            raise ImproperlyConfigured(f"Environment variable {name} must be {kind}, got {value!r}.") from None
    if minimum is not None and result < minimum:
        raise ImproperlyConfigured(f"Environment variable {name} must be >= {minimum}, got {result}.")
    return result


def integer(
    name: str,
    default: int | _Missing = REQUIRED,
    *,
    minimum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    return _numeric(name, default, int, "an integer", minimum, environ)


def number(
    name: str,
    default: float | _Missing = REQUIRED,
    *,
    minimum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    return _numeric(name, default, float, "a number", minimum, environ)


def string_list(
    name: str, default: list[str] | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Comma-separated list; blanks between commas are dropped."""
    value = _raw(name, environ)
    if value is None:
        if isinstance(default, _Missing):
            raise _missing(name)
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def string_map(
    name: str, default: dict[str, str] | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A JSON object of strings, e.g. {"triton": "tritonserver:24.08"} (what Helm's toJson writes)."""
    import json

    value = _raw(name, environ)
    if value is None:
        if isinstance(default, _Missing):
            raise _missing(name)
        return dict(default)
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Environment variable {name} must be a JSON object: {exc}.") from exc
    if not isinstance(parsed, dict) or not all(
        isinstance(key, str) and isinstance(item, str) and item.strip() for key, item in parsed.items()
    ):
        raise ImproperlyConfigured(f"Environment variable {name} must be a JSON object of non-empty strings.")
    return {key: item.strip() for key, item in parsed.items()}


def choice(
    name: str,
    choices: tuple[str, ...],
    default: str | _Missing = REQUIRED,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    value = string(name, default, environ=environ)
    if value not in choices:
        raise ImproperlyConfigured(f"Environment variable {name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def existing_file(name: str, default: str | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None) -> str:
    """A path that must exist when given; an empty default means "not configured"."""
    value = string(name, default, environ=environ)
    if value and not os.path.isfile(value):
        raise ImproperlyConfigured(f"Environment variable {name} names {value!r}, which is not a file.")
    return value


def secret(name: str, default: str | _Missing = REQUIRED, *, environ: Mapping[str, str] | None = None) -> str:
    """Read ``NAME`` or, if that is unset, the contents of the file named by ``NAME_FILE``.

    Setting both is refused: which one wins would be a guess.
    """
    direct = _raw(name, environ)
    file_name = _raw(f"{name}_FILE", environ)
    if direct is not None and file_name is not None:
        raise ImproperlyConfigured(f"Set only one of {name} and {name}_FILE.")
    if file_name is not None:
        try:
            with open(file_name, encoding="utf-8") as handle:
                content = handle.read().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Environment variable {name}_FILE names {file_name!r}, which cannot be read: {exc.strerror}."
            ) from None
        if not content:
            raise ImproperlyConfigured(f"The file named by {name}_FILE is empty.")
        return content
    if direct is not None:
        return direct
    if isinstance(default, _Missing):
        raise ImproperlyConfigured(f"Environment variable {name} (or {name}_FILE) is required but not set.")
    return default
