"""Kubernetes resource quantities ("2Gi", "512Mi", "300k", "1e6") as whole bytes.

The syntax is the CRD's QUANTITY_PATTERN (api/types.py), which the apiserver tests
agree with, so a value parsed here is one the apiserver takes on a pod too. The value
is rounded up to a whole unit, like resource.Quantity.Value().
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from lucid_common.api.types import QUANTITY_PATTERN

_PARTS = re.compile(r"^(?P<number>[0-9]*\.?[0-9]*)(?P<suffix>.*)$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def quantity_bytes(text: str) -> int:
    """The quantity in whole bytes (rounded up); ValueError says what is wrong."""
    return math.ceil(quantity_value(text))


def quantity_value(text: str) -> Fraction:
    """The exact value of a quantity ("250m" is 1/4); ValueError says what is wrong."""
    if not isinstance(text, str) or not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 2Gi, 512Mi, 300k)")
    parts = _PARTS.match(text)
    assert parts is not None  # the pattern above admits nothing else
    number, suffix = parts["number"], parts["suffix"]
    # Fraction keeps "1.1Gi" exact; "1." is a valid quantity but not a valid Fraction.
    value = Fraction(number.rstrip(".") or "0")
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    elif suffix:  # e3, E-2: the pattern allows only a signed integer exponent here
        value *= Fraction(10) ** int(suffix[1:])
    return value


def format_bytes(size: int) -> str:
    """A byte count for messages: exact, in the largest binary unit that divides it."""
    for unit, power in (("Gi", 3), ("Mi", 2), ("Ki", 1)):
        if size and size % 1024 ** power == 0:
            return f"{size // 1024 ** power}{unit}"
    return str(size)
