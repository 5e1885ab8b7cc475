"""The one place where numbers from outside (the app's sliders and boxes, API calls) are checked.

Each check returns the value in the type the code wants, or raises a ValueError that names the
argument, the valid range and what was given: NaN, infinities, fractions where a whole number
is needed, out-of-range values and non-numbers are all refused, never silently clamped. Images
from outside are checked in `explorer.imageio`; names from a fixed set in `explorer.config`
(`check_choice`).
"""

from __future__ import annotations

import math

SEED_MAX = 2**31 - 1


def check_int(name: str, value, low: int, high: int) -> int:
    """value as an int in [low, high], else a ValueError naming the argument and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {value!r}") from None
    if not number.is_integer() or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    return int(number)


def check_float(name: str, value, low: float, high: float) -> float:
    """value as a float in [low, high], else a ValueError naming the argument and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return number


def check_seed(seed) -> int:
    """A seed: a whole number in 0..2^31 - 1."""
    return check_int("seed", seed, 0, SEED_MAX)
