"""Dead, sparse and saturated units (chapter 4): probes, their bookkeeping and the sweep tables.

A hidden unit is *dead on a data set* when its pre-activation ``z`` is ``<= 0`` for every
example (for ReLU every weight feeding it then gets exactly zero gradient), and
*gradient-dead* when ``phi'(z) == 0`` for every example. For ReLU the two coincide; a
never-positive Leaky ReLU unit still passes a gradient, and so does a GELU unit above a
threshold that depends on the backend (:func:`zero_slope_threshold`).

The probes count, per member, layer and unit, the examples with ``z > 0`` and with
``phi'(z) != 0``: ``E x depth x width`` integers, cheap to record at several epochs of
:func:`actlab.ensemble.train_ensemble` (``probe=count_units``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from actlab.engine.activations import LABELS, is_activation
from actlab.engine.device import get_device
from actlab.engine.models import activation_module
from actlab.ensemble import EnsembleMLP, EnsembleResult, Member
from actlab.presentation.explorer import Control, Explorer

# --------------------------------------------------------------------------- counts


@dataclass
class UnitCounts:
    """Per-unit counts over a data set, for ``E`` networks of ``depth`` hidden layers.

    Attributes:
        positive: ``(E, depth, width)`` number of examples with ``z > 0``.
        passing: ``(E, depth, width)`` number of examples with ``phi'(z) != 0`` (the
            unit passes some gradient back for that example).
        n_examples: number of examples the counts are taken over.
        hist: optional ``(E, depth, bins)`` histogram of the activations ``a = phi(z)``
            over ``edges`` (values outside the edges are counted in the end bins).
        edges: the histogram's bin edges, ``(bins + 1,)``.
    """

    positive: np.ndarray
    passing: np.ndarray
    n_examples: int
    hist: np.ndarray | None = None
    edges: np.ndarray | None = None

    @property
    def dead(self) -> np.ndarray:
        """``(E, depth, width)`` True where the unit is positive for no example."""
        return self.positive == 0

    @property
    def grad_dead(self) -> np.ndarray:
        """``(E, depth, width)`` True where ``phi'(z) == 0`` for every example."""
        return self.passing == 0

    def dead_fraction(self, per_layer: bool = False, gradient: bool = False) -> np.ndarray:
        """Fraction of dead units per network ``(E,)``, or per network and layer ``(E, depth)``.

        Args:
            per_layer: one fraction per hidden layer instead of one for the whole network.
            gradient: count gradient-dead units instead of never-positive ones.
        """
        mask = self.grad_dead if gradient else self.dead
        return mask.mean(axis=2) if per_layer else mask.mean(axis=(1, 2))

    def active_fraction(self) -> np.ndarray:
        """``(E, depth, width)`` fraction of examples for which each unit is positive (1 - sparsity)."""
        return self.positive / self.n_examples


def _slopes(activation: str | nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``phi'(z)`` elementwise, as PyTorch's backward pass computes it (what training sees).

    Not chapter 2's closed form, nor the same on every backend: float32 GELU's slope is 0
    below about z = -6.2 through oneDNN on a CPU, -14.3 in PyTorch's own CPU and CUDA
    kernels (:func:`zero_slope_threshold`). Counts follow the gradient training applies.
    """
    phi = activation_module(activation) if isinstance(activation, str) else activation
    leaf = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(phi(leaf).sum(), leaf)
    return slope


def backward_backend(activation: str, device: torch.device | str, dtype: torch.dtype) -> str:
    """Which kernel computes ``activation``'s backward pass, in words.

    For example ``"float32 GELU on the CPU with oneDNN"``: on a CPU, PyTorch computes
    float32 GELU with oneDNN when its build has it (``torch.backends.mkldnn.is_available()``)
    and it is switched on (``torch.backends.mkldnn.enabled``), elsewhere with its own kernels.
    """
    device, mkldnn = torch.device(device), torch.backends.mkldnn
    head = f"{str(dtype).removeprefix('torch.')} {LABELS.get(activation, activation)}"
    if device.type == "cpu" and activation == "gelu" and dtype == torch.float32:
        onednn = mkldnn.is_available() and bool(mkldnn.enabled)
        return f"{head} on the CPU {'with' if onednn else 'without'} oneDNN"
    if device.type == "cuda":
        return f"{head} on CUDA ({torch.cuda.get_device_name(device)})"
    where = {"cpu": "the CPU", "mps": "MPS (Apple silicon)"}
    return f"{head} on {where.get(device.type, device.type)}"


def zero_slope_threshold(
    activation: str, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
    lo: float = -30.0, hi: float = 0.0, n: int = 30001, onednn: bool | None = None,
) -> float:  # fmt: skip
    """The lowest ``z`` of ``n`` points on ``[lo, hi]`` where ``activation``'s slope is not 0.

    The slopes are the probes' (:func:`_slopes`, the module's backward) on ``device``
    (default :func:`get_device`) in ``dtype``: below that ``z`` each is exactly 0.
    ``onednn`` switches oneDNN on or off for the call (``None``: as set). ``-inf`` when
    the slope is not 0 even at ``lo``, NaN when it is 0 at every point.
    """
    z = torch.linspace(lo, hi, n, device=device or get_device(), dtype=dtype)
    if onednn is None:
        slope = _slopes(activation, z)
    else:
        with warnings.catch_warnings():  # the flags also set TF32, which warns without an Intel GPU
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=onednn):
                slope = _slopes(activation, z)
    nonzero = torch.nonzero(slope != 0).flatten()
    if len(nonzero) == 0:
        return math.nan
    return -math.inf if int(nonzero[0]) == 0 else float(z[int(nonzero[0])])


def _histogram(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Counts of ``values`` ``(E, N, width)`` in the bins of ``edges``, per member: ``(E, bins)``."""
    bins = len(edges) - 1
    idx = (torch.bucketize(values.flatten(1), edges, right=True) - 1).clamp_(0, bins - 1)
    offset = torch.arange(values.shape[0], device=values.device)[:, None] * bins
    flat = torch.bincount((idx + offset).flatten(), minlength=values.shape[0] * bins)
    return flat.view(values.shape[0], bins)


def count_units(model: EnsembleMLP, X: torch.Tensor, edges: np.ndarray | None = None) -> UnitCounts:
    """Probe for :func:`actlab.ensemble.train_ensemble`: per-unit counts of every member.

    Pass it as ``probe=count_units`` (or ``probe=unit_probe(edges)`` to add activation
    histograms). ``pre[k]`` of :meth:`EnsembleMLP.trace` is the input of layer ``k``'s
    activation (after the LayerNorm of members that have one).

    Args:
        model: the ensemble.
        X: the data, ``(N, in_dim)`` or ``(E, N, in_dim)``.
        edges: bin edges for a histogram of the activations, or ``None``.
    """
    with torch.no_grad():
        _, pre, hidden = model.trace(X)
        positive = torch.stack([(z > 0).sum(dim=1) for z in pre], dim=1)
        runs = model.activation_runs
        passing = torch.stack(
            [
                torch.cat([(_slopes(a, z[s:e]) != 0).sum(dim=1) for s, e, a in runs], dim=0)
                for z in pre
            ],
            dim=1,
        )
        hist = None
        if edges is not None:
            e_t = torch.as_tensor(np.asarray(edges), dtype=pre[0].dtype, device=pre[0].device)
            hist = torch.stack([_histogram(h, e_t) for h in hidden], dim=1).cpu().numpy()
    return UnitCounts(
        positive=positive.cpu().numpy(),
        passing=passing.cpu().numpy(),
        n_examples=int(pre[0].shape[1]),
        hist=hist,
        edges=None if edges is None else np.asarray(edges, dtype=float),
    )


def unit_probe(
    edges: np.ndarray | None = None,
) -> Callable[[EnsembleMLP, torch.Tensor], UnitCounts]:
    """A probe that also records activation histograms over ``edges`` (see :func:`count_units`)."""

    def probe(model: EnsembleMLP, X: torch.Tensor) -> UnitCounts:
        return count_units(model, X, edges)

    return probe


# --------------------------------------------------------------------------- plain networks


def pre_activations(net: nn.Sequential, X: torch.Tensor) -> list[tuple[torch.Tensor, nn.Module]]:
    """``(z, phi)`` for every activation module of an ``nn.Sequential``, input side first.

    ``z`` is the tensor the activation module receives (after a LayerNorm, if any).
    """
    out, h = [], X
    with torch.no_grad():
        for m in net:
            if is_activation(m, identity=True):
                out.append((h, m))
            h = m(h)
    return out


def network_unit_counts(
    net: nn.Sequential, X: torch.Tensor
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer counts of a plain network: examples with ``z > 0`` and with ``phi'(z) != 0``.

    The slopes are the backward pass of the network's own activation modules, on its
    device (:func:`count_units` does the same on the ensemble's stacked pre-activations).
    Returns ``(positive, passing)``: one ``(width_k,)`` integer array per hidden layer each.
    """
    positive, passing = [], []
    for z, phi in pre_activations(net, X):
        positive.append((z > 0).sum(dim=0).cpu().numpy())
        passing.append((_slopes(phi, z) != 0).sum(dim=0).cpu().numpy())
    return positive, passing


def dead_masks(net: nn.Sequential, X: torch.Tensor) -> list[np.ndarray]:
    """Per hidden layer, a boolean mask of the units dead on ``X`` (``z <= 0`` for every row)."""
    positive, _ = network_unit_counts(net, X)
    return [p == 0 for p in positive]


def unit_hinges(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Where each first-layer unit of a 1-D-input network switches: ``x = -b / w`` (inf when w = 0).

    One value per unit, in the units' order; :func:`actlab.chapters.ch05_hinges.hinge_points` gives
    the distinct hinges of a layer, sorted.
    """
    w = np.asarray(weight, dtype=float).reshape(-1)
    b = np.asarray(bias, dtype=float).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w != 0, -b / np.where(w != 0, w, 1.0), np.inf)


def first_layer_dead_on_interval(
    weight: np.ndarray, bias: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """Units ``z = w x + b`` of a 1-D input that are ``<= 0`` on all of ``[lo, hi]``.

    ``z`` is linear in ``x``, so it is non-positive on the interval exactly when it is
    at both ends: the hinge lies outside the data's range on the wrong side.
    """
    w = np.asarray(weight, dtype=float).reshape(-1)
    b = np.asarray(bias, dtype=float).reshape(-1)
    return (w * lo + b <= 0) & (w * hi + b <= 0)


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


# --------------------------------------------------------------------------- revival demo


@dataclass
class RevivalTrace:
    """The constructed revival example step by step (see :func:`revival_demo`)."""

    steps: np.ndarray
    positive: np.ndarray  # examples with z > 0 for the watched unit
    own_grad: np.ndarray  # norm of the gradient reaching the watched unit's own weights and bias
    input_max: np.ndarray  # largest value of the watched unit's input
    loss: np.ndarray


def revival_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """1 -> 1 -> 2 -> 1 ReLU network whose layer-2 unit 1 is dead on ``x in [0, 1]`` at the start.

    Layer 1: ``h = ReLU(0.5 x)``, at most 0.5 on the data. Layer 2: unit 0 is
    ``ReLU(h)`` (alive), unit 1 is ``ReLU(h - 1)``: dead while ``h < 1``. Output:
    ``a_0 + a_1``. The target ``3x`` needs a larger ``h``, so the alive path pulls
    layer 1's weight up until unit 1's input crosses 1 and it comes back.
    """
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0], [1.0]]))
        net[2].bias.copy_(torch.tensor([0.0, -1.0]))
        net[4].weight.fill_(1.0)
        net[4].bias.zero_()
    return net.to(dtype)


def revival_demo(steps: int = 60, lr: float = 0.05, n: int = 50) -> RevivalTrace:
    """Train :func:`revival_network` on ``y = 3x`` with plain gradient descent, watching unit 1 of layer 2.

    While the unit is dead its own weights and bias receive exactly zero gradient;
    it revives only because layer 1 (trained through the other unit) changes its input.
    """
    net = revival_network()
    X = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    y = 3 * X
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    rec: dict[str, list[float]] = {k: [] for k in ("positive", "own_grad", "input_max", "loss")}
    for _ in range(steps + 1):
        opt.zero_grad()
        h = net[1](net[0](X))
        z = net[2](h)
        loss = ((net[4](net[3](z)) - y) ** 2).mean()
        loss.backward()
        g = torch.cat([net[2].weight.grad[1], net[2].bias.grad[1:]])
        rec["positive"].append(float((z.detach()[:, 1] > 0).sum()))
        rec["own_grad"].append(float(g.norm()))
        rec["input_max"].append(float(h.detach().max()))
        rec["loss"].append(float(loss.detach()))
        opt.step()
    return RevivalTrace(steps=np.arange(steps + 1), **{k: np.array(v) for k, v in rec.items()})


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
            left_out.append(f"{label} at lr {lr:g}")
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

    def runs(lr: float, activation: str, bias: float | str) -> tuple[np.ndarray, int]:
        i = result.where(lr=lr, activation=activation, bias=None if bias == "default" else bias)
        return i[~gone[i]], len(i)  # diverged runs are left out, never drawn as numbers

    def draw(lr: float, activation: str, bias: float | str) -> Figure:
        ok, seeds = runs(lr, activation, bias)
        fig, ax = plt.subplots(figsize=(5, 2.8))
        for k in range(n_layers if len(ok) else 0):
            ax.plot(
                history.epochs, 100 * per_layer[:, ok, k].mean(1),
                color=plt.cm.viridis(0.85 * k / max(n_layers - 1, 1)), ls=["-", "--"][k % 2],
                marker="o", ms=2, label=f"layer {k + 1}" if k in (0, n_layers - 1) else None,
            )  # fmt: skip
        if len(ok) == 0:
            ax.text(
                last / 2, 50, f"all {seeds} seeds diverged\n(loss above the baseline at epoch {last})",
                ha="center", va="center",
            )  # fmt: skip
        ax.set(
            xlim=(-1, last + 1), ylim=(-3, 103), xlabel="epoch", ylabel="dead units (%)",
            title=f"{LABELS[activation]}, lr {lr:g}, bias {bias}: {len(ok)} of {seeds} seeds shown",
        )  # fmt: skip
        if len(ok):
            ax.legend(fontsize=7, loc="center right")
        return fig

    def describe(lr: float, activation: str, bias: float | str) -> str:
        ok, seeds = runs(lr, activation, bias)
        head = f"{LABELS[activation]}, learning rate {lr:g}, hidden bias {bias}"
        if len(ok) == 0:
            return f"{head}: all {seeds} seeds diverged, nothing drawn"
        end = 100 * per_layer[-1, ok].mean(0)
        return (
            f"{head}: after {last} epochs {end.mean():.0f} % of units are dead, layer 1 {end[0]:.0f} %, "
            f"layer {n_layers} {end[-1]:.0f} % ({len(ok)} of {seeds} seeds shown)"
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
        dpi=70,
        describe=describe,
        title="Learning rate × activation × hidden bias → dead units per layer",
    )
