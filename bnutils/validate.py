"""Argument checks shared by every public function: fail fast, name the parameter, the bad value and what is allowed."""
from __future__ import annotations

import math
from typing import Any, Iterable


def choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return `value` if it is one of `allowed`, else raise a ValueError listing the allowed values."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with allow_zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number {'>= 0' if allow_zero else '> 0'}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}={value!r} must be {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    """An int >= minimum (bools are rejected: True is not a depth)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def in_range(name: str, value: Any, low: float, high: float) -> float:
    """A finite number with low <= value <= high."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number in [{low}, {high}]")
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be in [{low}, {high}]")
    return float(value)


def seeds(name: str, value: Any) -> list[int]:
    """A non-empty list of distinct non-negative int seeds (a single int is accepted as one seed)."""
    vals = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(vals, (list, tuple)) or not vals:
        raise ValueError(f"{name}={value!r} must be a non-negative int or a non-empty list of them")
    for v in vals:
        integer(name, v, minimum=0)
    if len(set(vals)) != len(vals):
        raise ValueError(f"{name}={value!r} must not repeat a seed")
    return list(vals)
