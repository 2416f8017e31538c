"""Names that become object keys: ``<model>/<version>/<path>`` (docs/compatibility.md), checked before use.

The original put ``modelName``, ``fileName`` and ``key`` into keys verbatim, so ``..``, absolute
paths, empty segments and control characters reached the bucket (and, through the serving pods'
``s3://<tenant>/<model>`` base path, the file system of the model server). Every name is checked
here, once, and a bad one is a 400 that says which parameter and why, before any upstream call.
"""

from __future__ import annotations

import re

from inferencemgmt.api.validation import CONTROL_CHARACTERS
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest
from inferencemgmt.objectstore import PART_NUMBER_MAX, PART_NUMBER_MIN

# Separators other than "/": the backslash (Windows paths; object stores and S3 gateways that map
# keys to files turn it into "/", so ``..\..\x`` escaped the version directory as far as the store
# let it), and the characters whose compatibility form (NFKC, or Windows' "best fit" code page
# mapping) holds "/" or "\": full-width and small solidi, and the a/c, a/s, c/o, c/u symbols.
# (Regex text for character classes, here and in the schema patterns: \uXXXX reads the same in both.)
_SEPARATORS = r"\\\u2100\u2101\u2105\u2106\ufe68\uff0f\uff3c"
_SEPARATOR = re.compile(f"[{_SEPARATORS}]")
# Characters whose compatibility form is "." (one dot leader, small and full-width full stops) or
# ".." (two dot leaders): a segment of them reads as "." or ".." to anything that normalises.
_DOTS = r".\u2024\ufe52\uff0e"
_TWO_DOTS = r"\u2025\ufe30"
_DOT_SEGMENT = re.compile(f"[{_DOTS}]{{1,2}}|[{_TWO_DOTS}]")
# S3 allows 1024 bytes of key; keep the same bound so the store never answers KeyTooLong.
KEY_MAX_BYTES = 1024
MODEL_NAME_MIN = 3
MODEL_NAME_MAX = 255
# Versions are directory names TF Serving parses as int64.
VERSION_MAX = 2**63 - 1


# The same rules as JSON-schema patterns, so the OpenAPI schema (and clients generated from it, and
# the fuzzing) describe the names these functions accept; models_store/tests/test_keys.py keeps the
# two in step. A segment is any run of characters but controls and separators that is not a dot
# segment: a character that is no dot starts it, or one dot is followed by a non-dot (or a two-dot
# character), or two dots or one two-dot character are followed by anything.
_NOT_NAME = rf"/{_SEPARATORS}\x00-\x1f\x7f-\x9f"
_CHARACTER = rf"[^{_NOT_NAME}]"
_NOT_DOT = rf"[^{_NOT_NAME}{_DOTS}{_TWO_DOTS}]"
_NOT_ONE_DOT = rf"[^{_NOT_NAME}{_DOTS}]"
_DOT = rf"[{_DOTS}]"
_SEGMENT = (
    rf"(?:{_NOT_DOT}{_CHARACTER}*|{_DOT}{_NOT_ONE_DOT}{_CHARACTER}*|{_DOT}{_DOT}{_CHARACTER}+"
    rf"|[{_TWO_DOTS}]{_CHARACTER}+)"
)
MODEL_NAME_PATTERN = rf"^{_CHARACTER}+$"
RELATIVE_PATH_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"


def invalid(param: str, reason: str, code: str = "model_name_invalid") -> BadRequest:
    """The original's ``InvalidParamException`` wording: title ``Invalid parameter``."""
    return BadRequest("Invalid parameter", f'The "{param}" parameter is invalid. {reason}', code=code)


def _segments(param: str, value: str) -> list[str]:
    if CONTROL_CHARACTERS.search(value):
        raise invalid(param, "Control characters are not allowed.")
    if _SEPARATOR.search(value):
        raise invalid(param, "Backslashes and other separators than '/' are not allowed.")
    if value.startswith("/"):
        raise invalid(param, "Absolute paths are not allowed.")
    segments = value.split("/")
    if any(segment == "" for segment in segments):
        raise invalid(param, "Empty path segments (a trailing or doubled '/') are not allowed.")
    if any(_DOT_SEGMENT.fullmatch(segment) for segment in segments):
        raise invalid(param, "Path segments '.' and '..' (in any spelling) are not allowed.")
    return segments


def model_name(value: str, param: str = "modelName") -> str:
    """One key segment: the model's directory, the base path an endpoint serves."""
    if len(value) < MODEL_NAME_MIN:
        raise invalid(param, f"{value!r} is too short (at least {MODEL_NAME_MIN} characters).")
    if len(value) > MODEL_NAME_MAX:
        raise invalid(param, f"It is too long (at most {MODEL_NAME_MAX} characters).")
    if len(_segments(param, value)) != 1:
        raise invalid(param, "A model name is one path segment (no '/').")
    return value


def relative_path(value: str, param: str) -> str:
    """A file or directory path under the version directory: relative, no empty, '.' or '..' segments."""
    if value == "":
        raise invalid(param, "It must not be empty.")
    _segments(param, value)
    return value


def version(raw: str | int, param: str = "modelVersion") -> int:
    """A positive integer; from a query string only plain decimal digits count."""
    if isinstance(raw, bool):
        raise invalid(param, f"{raw!r} is not an integer.", code="model_version_invalid")
    if isinstance(raw, str):
        number = ascii_int(raw, max_digits=len(str(VERSION_MAX)))
        if number is None:
            raise invalid(param, f"{raw!r} is not a positive integer.", code="model_version_invalid")
        raw = number
    if not 1 <= raw <= VERSION_MAX:
        raise invalid(param, f"{raw} is not between 1 and {VERSION_MAX}.", code="model_version_invalid")
    return raw


def part_number(raw: str) -> int:
    """S3 numbers parts 1 to 10000; the original crashed (a bare 500) on anything but an int."""
    number = ascii_int(raw, max_digits=len(str(PART_NUMBER_MAX)))
    if number is None or not PART_NUMBER_MIN <= number <= PART_NUMBER_MAX:
        raise invalid(
            "partNumber",
            f"{raw!r} is not an integer from {PART_NUMBER_MIN} to {PART_NUMBER_MAX}.",
            code="part_number_invalid",
        )
    return number


def version_prefix(model: str, model_version: int) -> str:
    """``<model>/<version>/``: the original's ``model_path`` (note the trailing slash)."""
    return f"{model}/{model_version}/"


def object_key(model: str, model_version: int, file_name: str, directory: str | None = None) -> str:
    """The original's ``get_key``: ``<model>/<version>/[<directory>/]<file>``, every part checked."""
    model_name(model)
    relative_path(file_name, "fileName")
    path = file_name
    if directory:
        relative_path(directory, "key")
        path = f"{directory}/{file_name}"
    return _bounded(version_prefix(model, model_version) + path)


def directory_key(model: str, model_version: int, directory: str) -> str:
    """The zero-byte marker of an empty directory: ``<model>/<version>/<directory>/``."""
    model_name(model)
    relative_path(directory, "key")
    return _bounded(f"{version_prefix(model, model_version)}{directory}/")


def _bounded(key: str) -> str:
    if len(key.encode("utf-8")) > KEY_MAX_BYTES:
        raise invalid("fileName", f"The object key would be longer than {KEY_MAX_BYTES} bytes.")
    return key


def split_key(key: str) -> tuple[str, str, str] | None:
    """``(model, version, path)`` of a model file's key, or None for anything else in the bucket.

    The original split every key and crashed (500) on an object at the bucket root.
    """
    parts = key.split("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]
