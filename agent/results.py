"""Comparing result sets: the key that groups self-consistency candidates by what they return."""

from __future__ import annotations

import math
from typing import Any


def normalize_value(value: Any) -> Any:
    """Values that print alike compare alike: 3 == 3.0, floats to 6 significant digits, bytes as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        rounded = float(f"{value:.6g}")
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value


def result_key(columns: list[str], rows: list[list[Any]]) -> tuple[int, tuple[str, ...]]:
    """Column count and the multiset of normalised rows; column names and row order are ignored."""
    normalised = sorted(repr(tuple(normalize_value(v) for v in row)) for row in rows)
    return len(columns), tuple(normalised)
