"""The one parser of whole numbers typed by people or sent by other programs: ASCII digits only.

``str.isdigit()`` is true for ``"²"``, for the Arabic-Indic one (U+0661) and many more;
``int()`` then fails on the first (a 500 where a form error was due, issue 17) and quietly reads
the second as 1. Query strings, form fields, labels, annotations, headers and key segments are all
parsed here instead, so "a number" means the same everywhere: one or more of ``0``-``9``, nothing
else (no sign, no space, no underscore), and no more digits than ``max_digits`` (``int()`` of a
huge string is slow, and no value here needs more).
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def ascii_int(raw: object, *, max_digits: int = 19) -> int | None:
    """The value of ``raw`` if it is a string of 1 to ``max_digits`` ASCII digits, else None."""
    if not isinstance(raw, str) or len(raw) > max_digits or _DIGITS.fullmatch(raw) is None:
        return None
    return int(raw)
