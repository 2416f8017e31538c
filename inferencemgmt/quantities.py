"""Kubernetes quantities (``500m``, ``2Gi``, ``1k``) as numbers, for comparing quota values.

The API server writes a ResourceQuota's object counts in canonical form too: 1000 endpoints are
``used: 1k``, so even a count must be parsed as a quantity, never with ``int()``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity_value(text: str) -> Decimal | None:
    """A Kubernetes quantity as a number (a usage bar, a quota check); None for what cannot be compared."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    if match.group(2) and "e" in match.group(1).lower():
        return None  # an exponent and a suffix together is not a quantity
    return number * _SUFFIXES[match.group(2) or ""]
