"""Chapter 4's bookkeeping over training: which runs diverged, which units died or revived,
the sweep's tables of means over seeds, and what the book's rule says about two settings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from actlab.engine.stats import separated, standard_error
from actlab.ensemble import Member
from actlab.presentation.prose import listing, num, of

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
    every mean after training: their weights are NaN or their loss is meaningless, so
    their "dead" units are not evidence of dying. ``dead at init`` is taken over every
    seed: at initialisation no run has diverged yet.
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
            runs = group if col == "dead at init" else ok
            row[col], row[f"{col} std"] = kept_mean_std(runs[col].to_numpy(dtype=float))
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
    """``"6.6 ± 1.2 %"`` (or plain numbers, ``digits`` significant: ``"0.49 ± 5e−05"``, with
    a true minus sign); ``"diverged"`` when the mean is NaN."""
    if not np.isfinite(mean):
        return "diverged"
    if pct:
        return f"{num(100 * mean, f'.{digits}f')} ± {num(100 * std, f'.{digits}f')} %"
    return f"{num(mean, f'.{digits}g')} ± {num(std, f'.{digits}g')}"


def left_out(k: int, n: int, noun: str = "seed") -> str:
    """The runs a mean leaves out, in words: ``"2 of 5 seeds diverged and are left out"``,
    ``"all 5 seeds diverged and are left out"``; ``""`` when none did (say nothing then)."""
    if k == 0:
        return ""
    return f"{of(k, n, noun)} diverged and {'is' if k == 1 else 'are'} left out"


def rate_phrase(
    row: Mapping, where: str, column: str = "dead", pct: bool = True, digits: int = 1
) -> str:
    """One :func:`sweep_table` row's mean ± std of ``column`` at the rate ``where`` names.

    ``"85.8 ± 1.8 % at 10⁻¹"``; ``"63.1 ± 8.3 % at 10⁻¹, where 2 of 5 seeds diverged and
    are left out"`` when some seeds diverged; ``"at 10⁻¹ all 5 seeds diverged"`` when
    every one did (no mean is left). ``pct`` and ``digits`` as for :func:`format_mean_std`.
    """
    k, n = int(row["diverged"]), int(row["seeds"])
    if k == n:
        return f"at {where} {of(k, n, 'seed')} diverged"
    text = f"{format_mean_std(row[column], row[f'{column} std'], pct, digits)} at {where}"
    return f"{text}, where {left_out(k, n)}" if k else text


def format_rate(lr: float, powers: bool = False) -> str:
    """A learning rate as a reader writes it: ``"0.025"``, ``"0.0004"``, ``"0.1"`` (two
    significant figures, no exponent), or with ``powers`` ``"10⁻¹"`` and ``"2.5 × 10⁻²"``."""
    if not powers:
        return np.format_float_positional(float(lr), precision=2, unique=True, fractional=False,
                                          trim="-")  # fmt: skip
    exponent = math.floor(math.log10(lr) + 1e-9)
    mantissa = float(f"{lr / 10**exponent:.2g}")
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    if exponent == 0:
        return f"{mantissa:g}"
    power = "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if mantissa == 1 else f"{mantissa:g} × {power}"


def versus(runs: Sequence[float], reference: Sequence[float]) -> str:
    """``"lower"``, ``"higher"`` or ``"tie"``: the mean of ``runs`` against ``reference`` by
    the book's rule (:func:`actlab.engine.stats.separated`: more than two standard errors of
    the difference apart); ``"too few"`` when either has fewer than two finite runs."""
    (ma, _, na), (mb, _, nb) = standard_error(runs), standard_error(reference)
    if na < 2 or nb < 2:
        return "too few"
    if not separated(runs, reference):
        return "tie"
    return "lower" if ma < mb else "higher"


_DEAD_WORDS = {
    "lower": "fewer dead units",
    "higher": "more dead units",
    "tie": "a dead fraction that ties",
}
_LOSS_WORDS = {"lower": "a lower loss", "higher": "a higher loss", "tie": "a loss that ties"}


def verdicts(
    dead: Mapping[str, Sequence[float]], loss: Mapping[str, Sequence[float]], reference: str
) -> str:
    """Each setting against ``reference``, on dead units and on the final loss, in words.

    ``dead`` and ``loss`` hold, per setting, the runs that did not diverge (NaN for one
    that did). Settings with the same two verdicts (:func:`versus`) share a clause:
    ``"Leaky ReLU ends with fewer dead units and a lower loss; He initialisation and
    hidden bias 0.1 tie with it on both"``. A setting with fewer than two runs left is
    named apart; one with none left, as diverged.
    """
    if standard_error(loss[reference])[2] < 2:
        return f"{reference} leaves too few runs that did not diverge to compare against"
    groups: dict[tuple[str, str], list[str]] = {}
    for name in dead:
        if name == reference:
            continue
        key = (versus(dead[name], dead[reference]), versus(loss[name], loss[reference]))
        if standard_error(loss[name])[2] == 0:
            key = ("diverged", "diverged")
        groups.setdefault(key, []).append(name)
    clauses = []
    for (d, loss_word), names in groups.items():
        one = len(names) == 1
        if d == "diverged":
            clauses.append(f"{listing(names)} diverged in every seed")
        elif d == loss_word == "tie":
            clauses.append(f"{listing(names)} {'ties' if one else 'tie'} with it on both")
        elif "too few" in (d, loss_word):
            clauses.append(f"{listing(names)} {'leaves' if one else 'leave'} too few runs that "
                           "did not diverge to compare")  # fmt: skip
        else:
            clauses.append(f"{listing(names)} {'ends' if one else 'end'} with {_DEAD_WORDS[d]} "
                           f"and {_LOSS_WORDS[loss_word]}")  # fmt: skip
    return "; ".join(clauses)


def layer_groups(per_layer: np.ndarray, groups: Sequence[tuple[int, int]]) -> np.ndarray:
    """``(E, len(groups))``: each run's mean over the layers ``first..last`` (1 = input side,
    both included) of ``per_layer``, ``(E, depth)`` fractions from :meth:`DeadHistory.fraction`."""
    per_layer = np.asarray(per_layer, dtype=float)
    return np.stack([per_layer[:, lo - 1 : hi].mean(axis=1) for lo, hi in groups], axis=1)
