"""Chapter 4's pictures: activation maps, dead fractions against the learning rate, the explorer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from actlab.engine.activations import LABELS
from actlab.ensemble import EnsembleMLP, EnsembleResult
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import SEQUENTIAL_CMAP, panels
from actlab.presentation.prose import num, of

from .history import DeadHistory, diverged, format_rate

# --------------------------------------------------------------------------- maps and plots


def activation_map(model: EnsembleMLP, X: torch.Tensor, member: int, layer: int) -> np.ndarray:
    """``(width, N)`` activations of one member's hidden ``layer`` (0 = input side) over ``X``."""
    with torch.no_grad():
        _, _, hidden = model.trace(X)
    return hidden[layer][member].T.cpu().numpy()


def plot_dead_vs_lr(
    ax,
    table: pd.DataFrame,
    column: str = "dead",
    labels: Mapping[str, str] | None = None,
    styles: Mapping[str, dict] | None = None,
) -> list[str]:
    """Mean ± std of ``column`` against the learning rate, one line per activation.

    A group with every seed diverged gets no point, only an ``x`` marker at the top of
    the axes labelled "diverged"; a group with some seeds diverged is drawn from the
    others and its marker is hollow. Returns the groups left out as diverged.

    Args:
        ax: matplotlib axes (log x).
        table: from :func:`sweep_table` with ``by=("activation", "lr")``.
        column: which fraction to plot.
        labels, styles: display name and line style per activation.
    """
    left_out = []
    for act, group in table.groupby("activation", sort=False):
        style = dict((styles or {}).get(act, {}))
        label = (labels or {}).get(act, act)
        ok = group[group["diverged"] < group["seeds"]]
        mean, std = 100 * ok[column].to_numpy(), 100 * ok[f"{column} std"].to_numpy()
        (line,) = ax.plot(ok["lr"], mean, label=label, **style)
        ax.fill_between(ok["lr"], mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
        partial = ok[ok["diverged"] > 0]
        if len(partial):
            ax.plot(partial["lr"], 100 * partial[column], ls="none", marker="o", ms=9, mfc="none",
                    color=line.get_color())  # fmt: skip
        gone = group[group["diverged"] == group["seeds"]]
        for lr in gone["lr"]:
            ax.plot([lr], [1.0], transform=ax.get_xaxis_transform(), marker="x", ms=9, clip_on=False,
                    color=line.get_color())  # fmt: skip
            left_out.append(f"{label} at {format_rate(lr, powers=True)}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{column} (% of units)")
    return left_out


# --------------------------------------------------------------------------- the explorer


def dead_units_explorer(
    result: EnsembleResult,
    history: DeadHistory,
    baseline: float,
    lrs: Sequence[float],
    activations: Sequence[str],
    biases: Sequence[float | None] = (-5.0, None, 0.1),
    default_lr: float = 1e-2,
) -> Explorer:
    """Chapter 4's explorer: learning rate x activation x hidden bias -> dead units per layer.

    Each frame draws, per hidden layer, the percentage of dead units at the probe
    epochs of ``history``, a mean over the seeds of that setting whose training did not
    diverge (:func:`diverged`); a setting whose seeds all diverged is drawn empty.

    Args:
        result: the training run, its members of fields ``lr``, ``activation`` and
            ``bias`` (``None`` for the default hidden bias), with their losses.
        history: the dead units of the same members (:meth:`DeadHistory.from_probes`).
        baseline: the loss of predicting the mean target.
        lrs, activations, biases: the values of the three controls, in display order;
            the bias ``None`` is shown as ``"default"`` and is the one shown first.
        default_lr: the learning rate shown first.
    """
    per_layer = history.fraction(per_layer=True)  # (epochs, members, layers)
    gone = diverged(result.losses, baseline)
    n_layers = per_layer.shape[2]
    last = int(history.epochs[-1])

    def bias_text(bias: float | str) -> str:
        return "the default hidden bias" if bias == "default" else f"hidden bias {num(bias, 'g')}"

    def runs(lr: float, activation: str, bias: float | str) -> tuple[np.ndarray, int]:
        i = result.where(lr=lr, activation=activation, bias=None if bias == "default" else bias)
        return i[~gone[i]], len(i)  # diverged runs are left out, never drawn as numbers

    seq = plt.get_cmap(SEQUENTIAL_CMAP)  # layer 1 dark, the last layer light (not the palest)
    shades = [seq(0.85 * k / max(n_layers - 1, 1)) for k in range(n_layers)]

    def draw(lr: float, activation: str, bias: float | str) -> Figure:
        ok, seeds = runs(lr, activation, bias)
        fig, (ax,) = panels(1, height=2.8)
        for k in range(n_layers if len(ok) else 0):
            ax.plot(
                history.epochs, 100 * per_layer[:, ok, k].mean(1),
                color=shades[k], ls=["-", "--"][k % 2], marker="o", ms=3,
            )  # fmt: skip
        if len(ok) == 0:
            ax.text(
                last / 2, 50,
                f"{of(seeds, seeds, 'seed').capitalize()} diverged\n(loss above the baseline at epoch {last})",
                ha="center", va="center",
            )  # fmt: skip
        layers = ScalarMappable(Normalize(0.5, n_layers + 0.5), ListedColormap(shades))
        bar = fig.colorbar(layers, ax=ax, label="hidden layer", ticks=[1, n_layers // 2, n_layers])
        bar.ax.invert_yaxis()  # layer 1 (the input side) at the top
        short = "default bias" if bias == "default" else f"bias {num(bias, 'g')}"
        ax.set(
            xlim=(-1, last + 1), ylim=(-3, 103), xlabel="epoch", ylabel="dead units (%)",
            title=f"{LABELS[activation]}, lr {format_rate(lr)}, {short}: {of(len(ok), seeds, 'seed')} shown",
        )  # fmt: skip
        return fig

    def describe(lr: float, activation: str, bias: float | str) -> str:
        ok, seeds = runs(lr, activation, bias)
        head = f"{LABELS[activation]}, learning rate {format_rate(lr)}, {bias_text(bias)}"
        if len(ok) == 0:
            return f"{head}: {of(seeds, seeds, 'seed')} diverged, nothing drawn"
        end = 100 * per_layer[-1, ok].mean(0)
        return (
            f"{head}: after {last} epochs {end.mean():.0f} % of units are dead, layer 1 {end[0]:.0f} %, "
            f"layer {n_layers} {end[-1]:.0f} % ({of(len(ok), seeds, 'seed')} shown)"
        )

    shown_biases = ["default" if b is None else b for b in biases]
    return Explorer(
        draw,
        [
            Control("lr", list(lrs), label="learning rate", default=default_lr),
            Control("activation", list(activations), kind="buttons"),
            Control(
                "bias",
                shown_biases,
                label="hidden bias",
                kind="buttons",
                default="default" if None in biases else None,
            ),
        ],
        describe=describe,
        title="Learning rate × activation × hidden bias → dead units per layer",
    )
