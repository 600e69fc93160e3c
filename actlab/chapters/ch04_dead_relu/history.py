"""Chapter 4's bookkeeping over training: which runs diverged, which units died or revived,
and the sweep's tables of means over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from actlab.ensemble import Member

from .counts import UnitCounts

# --------------------------------------------------------------------------- over training


def diverged(losses: np.ndarray, baseline: float, tol: float = 0.01) -> np.ndarray:
    """``(E,)`` True for a run whose loss ever became NaN/inf or ends above ``baseline``.

    A network that collapsed to a constant output ends *at* the baseline (it
    predicts the mean); ``tol`` (relative) keeps rounding from calling that diverged.

    Args:
        losses: ``(num_epochs, E)`` training losses.
        baseline: the loss of predicting the mean target.
        tol: relative margin above the baseline still counted as "at the baseline".
    """
    losses = np.asarray(losses, dtype=float)
    return ~np.isfinite(losses).all(axis=0) | ~(losses[-1] <= baseline * (1 + tol))


@dataclass
class DeadHistory:
    """Dead units of ``E`` networks at the probe epochs, and what happened to them.

    Attributes:
        epochs: the probe epochs, sorted; ``epochs[0]`` should be 0 (initialisation).
        dead: ``(len(epochs), E, depth, width)`` dead masks.
        grad_dead: the same for gradient-dead units.
    """

    epochs: np.ndarray
    dead: np.ndarray
    grad_dead: np.ndarray

    @classmethod
    def from_probes(cls, probes: Mapping[int, UnitCounts]) -> DeadHistory:
        epochs = np.array(sorted(probes), dtype=int)
        return cls(
            epochs=epochs,
            dead=np.stack([probes[e].dead for e in epochs]),
            grad_dead=np.stack([probes[e].grad_dead for e in epochs]),
        )

    def fraction(self, per_layer: bool = False, gradient: bool = False) -> np.ndarray:
        """``(epochs, E)`` fraction of dead units, or ``(epochs, E, depth)`` per layer."""
        mask = self.grad_dead if gradient else self.dead
        return mask.mean(axis=3) if per_layer else mask.mean(axis=(2, 3))

    @property
    def at_init(self) -> np.ndarray:
        """``(E, depth, width)`` dead at the first probe epoch."""
        return self.dead[0]

    @property
    def at_end(self) -> np.ndarray:
        """``(E, depth, width)`` dead at the last probe epoch."""
        return self.dead[-1]

    @property
    def died(self) -> np.ndarray:
        """Alive at initialisation, dead at the end: killed by training."""
        return ~self.dead[0] & self.dead[-1]

    @property
    def stayed_dead(self) -> np.ndarray:
        """Dead at initialisation and at the end."""
        return self.dead[0] & self.dead[-1]

    @property
    def revived(self) -> np.ndarray:
        """Dead at some probe epoch and alive at a later one (whatever happened after)."""
        dead_before = np.logical_or.accumulate(self.dead, axis=0)[:-1]
        return (dead_before & ~self.dead[1:]).any(axis=0)

    def summary(self) -> dict[str, np.ndarray]:
        """Per network ``(E,)``: fractions dead at the end, dead since init, died, revived."""

        def frac(m: np.ndarray) -> np.ndarray:
            return m.mean(axis=(1, 2))

        return {
            "dead": frac(self.at_end),
            "dead at init": frac(self.at_init),
            "still dead from init": frac(self.stayed_dead),
            "died in training": frac(self.died),
            "revived": frac(self.revived),
            "gradient-dead": frac(self.grad_dead[-1]),
        }


_TABLE_COLUMNS = ("dead", "dead at init", "died in training", "revived", "gradient-dead",
                  "final loss")  # fmt: skip


def sweep_table(
    members: Sequence[Member],
    history: DeadHistory,
    losses: np.ndarray,
    baseline: float,
    by: Sequence[str] = ("activation", "lr"),
) -> pd.DataFrame:
    """One row per group of members (``by``): mean and std over the non-diverged seeds.

    Diverged runs (see :func:`diverged`) are counted in ``diverged`` and left out of
    every mean: their weights are NaN or their loss is meaningless, so their "dead"
    units are not evidence of dying.
    """
    div = diverged(losses, baseline)
    per_net = pd.DataFrame(history.summary())
    per_net["final loss"] = np.asarray(losses, dtype=float)[-1]
    for key in by:
        per_net[key] = [getattr(m, key) for m in members]
    per_net["diverged"] = div
    rows = []
    for keys, group in per_net.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        ok = group[~group["diverged"]]
        row = dict(zip(by, keys, strict=True))
        row["seeds"] = len(group)
        row["diverged"] = int(group["diverged"].sum())
        for col in _TABLE_COLUMNS:
            row[col], row[f"{col} std"] = kept_mean_std(ok[col].to_numpy(dtype=float))
        rows.append(row)
    return pd.DataFrame(rows)


def kept_mean_std(values: np.ndarray, diverged: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and std of the runs that did not diverge (``diverged``: one flag per run, from
    :func:`diverged`; none when ``values`` holds only kept runs); NaN, NaN when no run is
    left, which :func:`format_mean_std` shows as "diverged"."""
    values = np.asarray(values)
    if diverged is not None:
        values = values[~np.asarray(diverged, dtype=bool)]
    return (values.mean(), values.std()) if len(values) else (np.nan, np.nan)


def format_mean_std(mean: float, std: float, pct: bool = True, digits: int = 1) -> str:
    """``"6.6 ± 1.2 %"`` (or plain numbers); ``"diverged"`` when the mean is NaN."""
    if not np.isfinite(mean):
        return "diverged"
    if pct:
        return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f} %"
    return f"{mean:.{digits}g} ± {std:.{digits}g}"
