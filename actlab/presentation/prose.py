"""Sentences from numbers: counts, plurals, lists and signed numbers as a reader writes them.

A glued sentence built with an f-string reads like a template as soon as a count is 0, 1
or all of them ("0 of 5 seeds diverged and are left out", "with 5 of 5 seeds diverged"),
a list has one item ("sigmoid, tanh stay"), or a rounded value is negative zero
("-0"). Every glued sentence in the book goes through these few functions instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

MINUS = "\N{MINUS SIGN}"


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``noun`` or its plural for ``n`` things (the noun alone, no number): ``seed``/``seeds``."""
    return noun if n == 1 else (plural_form or noun + "s")


def count(n: int, noun: str, plural_form: str | None = None, zero: str = "no") -> str:
    """``"1 seed"``, ``"5 seeds"``, ``"no seeds"``."""
    n = _whole(n)
    head = zero if n == 0 else str(n)
    return f"{head} {plural(n, noun, plural_form)}"


def of(k: int, n: int, noun: str, plural_form: str | None = None) -> str:
    """``k`` out of ``n`` things in words: ``"none of the 5 seeds"``, ``"all 5 seeds"``,
    ``"the only seed"``, ``"2 of 5 seeds"``."""
    k, n = _whole(k), _whole(n)
    if not 0 <= k <= n:
        raise ValueError(f"expected 0 <= k <= n, got k={k}, n={n}")
    many = plural(n, noun, plural_form)
    if n == 1:
        return f"the only {noun}" if k == 1 else f"not the only {noun}"
    if k == 0:
        return f"none of the {n} {many}"
    if k == n:
        return f"both {many}" if n == 2 else f"all {n} {many}"
    return f"{k} of {n} {many}"


def listing(items: Iterable[object], conjunction: str = "and", empty: str = "none") -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``; ``empty`` for no items."""
    words = [str(item) for item in items]
    if not words:
        return empty
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def num(x: Real, spec: str = ".3g") -> str:
    """``x`` formatted with ``spec``, with a true minus sign and never a negative zero:
    ``num(-0.0004, ".2f")`` is ``"0.00"``, ``num(-1.5, ".1f")`` is ``"−1.5"``."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    text = format(x, spec)
    if text.startswith("-"):
        if float(text.rstrip("%")) == 0.0:  # rounded to zero: no sign
            text = text[1:]
        else:
            text = MINUS + text[1:]
    return text.replace("e-", "e" + MINUS)


def nums(values: Iterable[Real], spec: str = ".3g", conjunction: str = "and") -> str:
    """A list of numbers in prose: ``"−1, 0 and 1"``."""
    return listing((num(v, spec) for v in values), conjunction)


def span(low: Real, high: Real, spec: str = ".3g") -> str:
    """A range in prose: ``"2.1e−10 to 9.0e−10"``, or the one value where both ends print alike."""
    lo, hi = num(low, spec), num(high, spec)
    return lo if lo == hi else f"{lo} to {hi}"


def _whole(n: object) -> int:
    if isinstance(n, bool) or int(n) != n:
        raise ValueError(f"a count must be a whole number, got {n!r}")
    return int(n)


__all__ = ["MINUS", "count", "listing", "num", "nums", "of", "plural", "span"]
