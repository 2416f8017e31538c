"""How deep a parsed document nests, measured without recursion.

Python's JSON and YAML parsers, ``json.dumps``, ``copy.deepcopy`` and every recursive walk raise
``RecursionError`` somewhere below a thousand levels: a document from outside (a request body, an
admin's template) that nests that deep is a 500 wherever it is next walked. Such documents are
refused where they come in, with this check; it walks the document with an explicit stack so that
measuring the depth can never be what overflows.
"""

from __future__ import annotations

from typing import Any


def nested_deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists/tuples/dicts more than ``limit`` levels (a scalar is level 0)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, (list, tuple)):
            children = current
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
