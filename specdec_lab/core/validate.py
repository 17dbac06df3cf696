"""Two idioms every argument check needs, named once: "an int that is not a bool", "a number that is not a bool".

Python's ``True`` is an ``int`` (``isinstance(True, int)``), so ``gamma=True`` would pass a bare isinstance check and
run with γ = 1. Every check of an int or a number option goes through these.
"""

from __future__ import annotations


def is_int(value) -> bool:
    """An int, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or a float, and not a bool (nan and inf are numbers here: callers that refuse them say so)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """An int (not a bool) in [low, high]: TypeError for another type, ValueError out of range."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value
