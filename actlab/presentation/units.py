"""Durations in words a reader can compare: the unit follows the value.

A time per element is a fraction of a nanosecond on a GPU and tens of nanoseconds on a
slow CPU; a fixed unit and a fixed number of decimals print one of them as ``0.00``.
"""

from __future__ import annotations

import math

# (seconds per unit, symbol), largest first
_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def _significant(value: float, digits: int) -> str:
    """``value`` (positive, finite) rounded to ``digits`` significant figures, in plain notation."""
    exponent = math.floor(math.log10(value))
    decimals = max(0, digits - 1 - exponent)
    return f"{value:.{decimals}f}"


def format_duration(seconds: float, digits: int = 3) -> str:
    """``seconds`` with ``digits`` significant figures in s, ms, µs or ns, e.g. ``"0.103 ns"``.

    The unit is the largest one in which the rounded value is at least 1; below a
    nanosecond the value stays in nanoseconds (``"0.00213 ns"``) and at a thousand
    seconds or more in seconds (``"1230 s"``). Zero is ``"0 s"``.

    Raises:
        ValueError: for a negative, infinite or NaN duration.
    """
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"a duration must be a finite, non-negative number of seconds, got {seconds}"
        )
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    if seconds == 0:
        return "0 s"
    for scale, symbol in _UNITS:
        # round first: 999.7 µs to three figures is 1.00 ms, not 1000 µs
        rounded = float(f"{seconds / scale:.{digits - 1}e}")
        if rounded >= 1 or symbol == "ns":
            return f"{_significant(rounded, digits)} {symbol}"
    raise AssertionError("unreachable")  # pragma: no cover
