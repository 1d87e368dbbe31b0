"""Kubernetes resource quantities ("2Gi", "512Mi", "300k", "1e6") as whole bytes.

The syntax and value are the CRD's (lucid_common.api.types), which the apiserver tests
agree with, so a value parsed here is one the apiserver takes on a pod too. The value
is rounded up to a whole unit, like resource.Quantity.Value().
"""

from __future__ import annotations

import math

# One parser for the CRD's rules, the models and the operator: lucid_common's.
from lucid_common.api.types import quantity_value

__all__ = ["format_bytes", "quantity_bytes", "quantity_value"]


def quantity_bytes(text: str) -> int:
    """The quantity in whole bytes (rounded up); ValueError says what is wrong."""
    return math.ceil(quantity_value(text))


def format_bytes(size: int) -> str:
    """A byte count for messages: exact, in the largest binary unit that divides it."""
    for unit, power in (("Gi", 3), ("Mi", 2), ("Ki", 1)):
        if size and size % 1024 ** power == 0:
            return f"{size // 1024 ** power}{unit}"
    return str(size)
