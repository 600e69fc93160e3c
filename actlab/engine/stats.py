"""One rule for "is this difference real?" over seeds, used by every "best", "tie" and
"fastest" the book states.

Two results measured over seeds are told apart when their means differ by more than
twice the standard error of the difference, ``2·sqrt(s₁²/n₁ + s₂²/n₂)`` (the sample
standard deviations, ``ddof=1``). With 5 seeds this is a rough 95 % interval: a
difference inside it is reported as a tie, never as a winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: How many standard errors of the difference separate two results.
Z = 2.0


def standard_error(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, standard error of the mean and count of the finite ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("inf")
    return float(v.mean()), se, len(v)


def separated(a: Sequence[float], b: Sequence[float], z: float = Z) -> bool:
    """Whether the means of runs ``a`` and ``b`` differ by more than ``z`` standard errors of
    their difference (False when either has fewer than two finite runs)."""
    ma, sa, na = standard_error(a)
    mb, sb, nb = standard_error(b)
    if na < 2 or nb < 2:
        return False
    return abs(ma - mb) > z * float(np.hypot(sa, sb))


def tied_with_best(
    runs: dict[str, Sequence[float]], higher_is_better: bool = True, z: float = Z
) -> list[str]:
    """The names whose runs are not :func:`separated` from the best mean (the best first,
    then in the given order). Rows with no finite run are never in it."""
    means = {k: standard_error(v)[0] for k, v in runs.items()}
    finite = [k for k, m in means.items() if np.isfinite(m)]
    if not finite:
        return []
    pick = max if higher_is_better else min
    best = pick(finite, key=means.__getitem__)
    return [best] + [k for k in finite if k != best and not separated(runs[k], runs[best], z)]


class GeometricSummary(NamedTuple):
    """The geometric mean of positive values with their range."""

    mean: float
    low: float
    high: float


def geometric_summary(
    values: Sequence[float] | np.ndarray, axis: int | None = None
) -> GeometricSummary:
    """Geometric mean and range (min to max) of positive ``values``: the book's average for
    quantities that span orders of magnitude (gradient norms, their ratios).

    An arithmetic mean of ``1e-9`` and ``1e-7`` is ``5e-8``, set by the larger value alone;
    the geometric mean ``1e-8`` is the mean on a log axis, and the ratio of two geometric
    means is the geometric mean of the ratios. With ``axis`` the three fields are arrays
    (e.g. ``axis=0`` over the seeds of a ``(seeds, layers)`` table). Raises on a value
    that is not positive (its logarithm is undefined).
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no values to summarise")
    if not np.all(v > 0):
        raise ValueError("a geometric mean needs positive values")
    mean = np.exp(np.log(v).mean(axis=axis))
    low, high = v.min(axis=axis), v.max(axis=axis)
    if axis is None:
        return GeometricSummary(float(mean), float(low), float(high))
    return GeometricSummary(mean, low, high)


__all__ = [
    "GeometricSummary",
    "Z",
    "geometric_summary",
    "separated",
    "standard_error",
    "tied_with_best",
]
