"""Two idioms every argument check needs, named once: "an int that is not a bool", "a number that is not a bool".

Python's ``True`` is an ``int`` (``isinstance(True, int)``), so ``gamma=True`` would pass a bare isinstance check and
run with γ = 1. Every check of an int or a number option goes through these. NumPy's scalars count (``np.int64(4)``,
``np.float32(0.5)``: they register as ``numbers.Integral`` / ``numbers.Real``); ``np.bool_`` does not, like ``bool``.
Checks that keep the value convert it (``int(v)``, ``float(v)``), so the engine only ever holds Python numbers.
"""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """An integer (a Python int or a NumPy integer scalar), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number (int, float, or a NumPy scalar of either), and not a bool (nan and inf are numbers here:
    callers that refuse them say so)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """An int (not a bool) in [low, high], returned as a Python int: TypeError for another type, ValueError out of
    range."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)  # np.uint64(2**64 - 1) compares and prints as itself, never as a wrapped negative
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value
