"""Chapter 6's swap experiment: digits data, batched activation swaps, their measures, a module swapper."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from actlab.engine.activations import LABELS, is_activation
from actlab.engine.data import DigitsSplit
from actlab.engine.device import cpu_threads
from actlab.engine.models import activation_module
from actlab.engine.stats import tied_with_best
from actlab.ensemble import EnsembleMLP, EnsembleResult, Member, train_ensemble, train_single
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import OKABE_ITO, STYLES, panels
from actlab.presentation.prose import listing, nums


def accuracy_probe(
    X_val: np.ndarray, y_val: np.ndarray
) -> Callable[[EnsembleMLP, torch.Tensor], np.ndarray]:
    """A probe for ``train_ensemble``: every member's validation accuracy, shape ``(E,)``.

    The probe ignores the training inputs it is handed and scores the members on the
    held-out set; it costs one forward pass of the validation set per probed epoch.
    """

    def probe(model: EnsembleMLP, X_t: torch.Tensor) -> np.ndarray:
        xv = torch.as_tensor(X_val, dtype=X_t.dtype, device=X_t.device)
        yv = torch.as_tensor(y_val, device=X_t.device)
        pred = model(xv).argmax(dim=-1)
        # The mean in float64 on the host: MPS has no float64 (the same numbers on the CPU).
        return (pred == yv).cpu().to(torch.float64).mean(dim=1).numpy()

    return probe


@dataclass
class SwapRun:
    """One batched swap experiment: the training result and its validation curves.

    Attributes:
        result: what :func:`actlab.ensemble.train_ensemble` returned.
        depth: hidden layers of every member.
        epochs: the probed epochs, ascending (0 = initialisation).
        accuracy: validation accuracy, shape ``(len(epochs), E)``.
    """

    result: EnsembleResult
    depth: int
    epochs: np.ndarray
    accuracy: np.ndarray

    @property
    def members(self) -> list[Member]:
        return self.result.members

    def where(self, **attrs: object) -> np.ndarray:
        return self.result.where(**attrs)

    def final(self, **attrs: object) -> np.ndarray:
        """Validation accuracy after the last epoch of the members whose fields equal ``attrs``."""
        return self.accuracy[-1, self.where(**attrs)]


def run_swap(
    members: Sequence[Member],
    split: DigitsSplit,
    *,
    depth: int,
    width: int,
    num_epochs: int,
    batch_size: int | None,
    probe_every: int = 1,
    device: torch.device | str | None = None,
) -> SwapRun:
    """Train every member on the digits at once (cross-entropy, Adam) and probe validation accuracy.

    This is one call of :func:`actlab.ensemble.train_ensemble`: the members may differ
    in activation, norm, learning rate and seed, but share depth and width.
    """
    epochs = sorted({*range(0, num_epochs + 1, probe_every), num_epochs})
    result = train_ensemble(
        list(members),
        split.X_train,
        split.y_train,
        depth=depth,
        width=width,
        num_epochs=num_epochs,
        loss="ce",
        batch_size=batch_size,
        grad_epochs=[0],
        probe=accuracy_probe(split.X_val, split.y_val),
        probe_epochs=epochs,
        device=device,
        progress=False,
    )
    accuracy = np.stack([np.asarray(result.probes[e]) for e in epochs])
    return SwapRun(result=result, depth=depth, epochs=np.array(epochs), accuracy=accuracy)


def epochs_to_target(accuracy: np.ndarray, epochs: np.ndarray, target: float) -> np.ndarray:
    """First probed epoch at which each member's accuracy reaches ``target`` (``nan`` if never).

    Args:
        accuracy: ``(len(epochs), E)`` validation accuracy.
        epochs: the probed epochs, ascending.
        target: accuracy to reach (inclusive).

    Returns:
        ``(E,)`` float array of epochs.
    """
    accuracy = np.asarray(accuracy)
    reached = accuracy >= target
    first = np.argmax(reached, axis=0)
    out = np.asarray(epochs, dtype=float)[first]
    out[~reached.any(axis=0)] = np.nan
    return out


def loss_climb(losses: np.ndarray) -> np.ndarray:
    """Roughness of training-loss curves: the total climb of ``ln L`` over the epochs.

    ``climb = sum_t max(0, ln L_{t+1} - ln L_t)``: the sum of every epoch-to-epoch
    *increase* of the log loss. A curve that only goes down has climb 0; a curve
    that bounces back by a factor ``f`` once has climb ``ln f``. Logs make a bounce
    from 0.01 to 0.02 count as much as one from 1 to 2. Non-finite losses (a diverged
    member) give ``inf``.

    Args:
        losses: ``(num_epochs,)`` or ``(num_epochs, E)`` positive losses.

    Returns:
        A float (1-D input) or an ``(E,)`` array.
    """
    losses = np.asarray(losses, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.diff(np.log(losses), axis=0)
        climb = np.clip(steps, 0, None).sum(axis=0)
    bad = ~np.isfinite(losses).all(axis=0) | (losses <= 0).any(axis=0)
    climb = np.where(bad, np.inf, climb)
    return float(climb) if climb.ndim == 0 else climb


def epoch_seconds(
    members: Sequence[Member],
    split: DigitsSplit,
    *,
    depth: int,
    width: int,
    batch_size: int | None,
    num_epochs: int = 1,
    repeats: int = 5,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Wall time of one epoch for each network trained ALONE (``train_single``, cross-entropy).

    The ensemble shares its time among its members, so a per-activation cost must be
    measured on a network of its own. Each member is timed ``repeats`` times, the members
    taking turns (one round of all of them, then the next), so that a slow spell of the
    machine falls on every member alike rather than on one; an untimed first round warms
    up the kernels. On one CPU thread, so that a time is one core's work and does not
    depend on how many cores were free.

    Returns:
        ``(len(members), repeats)`` seconds per epoch.
    """
    times = np.zeros((len(members), repeats))
    with cpu_threads(1, device or "cpu"):
        for r in range(-1, repeats):
            for i, member in enumerate(members):
                start = time.perf_counter()
                train_single(
                    member, split.X_train, split.y_train, depth=depth, width=width,
                    num_epochs=num_epochs, loss="ce", batch_size=batch_size, device=device,
                )  # fmt: skip
                if r >= 0:
                    times[i, r] = (time.perf_counter() - start) / num_epochs
    return times


def seconds_per_epoch(
    member: Member,
    split: DigitsSplit,
    *,
    depth: int,
    width: int,
    batch_size: int | None,
    num_epochs: int = 2,
    repeats: int = 5,
    device: torch.device | str | None = None,
) -> float:
    """The shortest of :func:`epoch_seconds`'s ``repeats`` times of one network: on a busy
    machine other work only ever adds time."""
    times = epoch_seconds(
        [member], split, depth=depth, width=width, batch_size=batch_size,
        num_epochs=num_epochs, repeats=repeats, device=device,
    )  # fmt: skip
    return float(times.min())


def summary_table(
    run: SwapRun,
    *,
    target: float,
    activations: Sequence[str],
    norm: str,
    times: dict[str, float] | None = None,
    **select: object,
) -> pd.DataFrame:
    """Per activation: final accuracy (mean, std, min, max), epochs to target, climb, time.

    The members with ``norm`` (and the other fields in ``select``, e.g. ``lr``) are used;
    ``times`` maps activation -> seconds per epoch. ``std`` is the sample standard
    deviation over the seeds (``ddof=1``). The column ``tied`` marks the activations the
    book's rule (:func:`actlab.engine.stats.tied_with_best`, over the seeds' final
    accuracies) cannot tell apart from the one with the best mean accuracy.
    """
    rows = []
    for act in activations:
        idx = run.where(activation=act, norm=norm, **select)
        acc = run.accuracy[-1, idx]
        reach = epochs_to_target(run.accuracy[:, idx], run.epochs, target)
        climb = loss_climb(run.result.losses[:, idx])
        rows.append(
            {
                "activation": act,
                "accuracy": acc.mean(),
                "std": acc.std(ddof=1) if len(acc) > 1 else np.nan,
                "min": acc.min(),
                "max": acc.max(),
                "seeds reaching target": int(np.isfinite(reach).sum()),
                "epochs to target": float(np.nanmedian(reach))
                if np.isfinite(reach).any()
                else np.nan,
                "loss climb": float(np.median(climb)),
                "ms per epoch": np.nan if times is None else 1e3 * times[act],
            }
        )
    table = pd.DataFrame(rows).set_index("activation")
    finals = {act: run.final(activation=act, norm=norm, **select) for act in activations}
    table["tied"] = table.index.isin(tied_with_best(finals))
    return table


@dataclass
class RateComparison:
    """One setting (depth, norm) at several learning rates: final validation accuracy of each
    activation at each rate, and the book's rule (:func:`actlab.engine.stats.tied_with_best`
    over the seeds) applied at each rate and to each activation at its own best rate.

    Attributes:
        lrs: the learning rates, ascending.
        mean, std: ``(activation, lr)`` tables of the mean and sample standard deviation
            over the seeds.
        tied: ``(activation, lr)`` booleans: tied with the best activation at that rate.
        best_lr: each activation's rate with its highest mean accuracy.
        tied_tuned: whether the activation, at its own best rate, is tied with the best of
            the activations each at its own best rate.
    """

    lrs: list[float]
    mean: pd.DataFrame
    std: pd.DataFrame
    tied: pd.DataFrame
    best_lr: pd.Series
    tied_tuned: pd.Series

    def rates_tied(self, activation: str) -> list[float]:
        """The rates at which ``activation`` is tied with the best."""
        return [lr for lr in self.lrs if self.tied.loc[activation, lr]]

    def always_tied(self) -> list[str]:
        """The activations tied with the best at every rate, in table order."""
        return [a for a in self.tied.index if self.tied.loc[a].all()]

    def cells(self, mark: str = " ●") -> pd.DataFrame:
        """The table a reader sees: ``mean ± std`` per rate (``mark`` where tied with the best
        at that rate) and each activation at its own best rate, with that rate."""

        def cell(a: str, lr: float, tied: bool) -> str:
            text = f"{self.mean.loc[a, lr]:.3f} ± {self.std.loc[a, lr]:.3f}"
            return text + (mark if tied else "")

        out = pd.DataFrame(
            {f"{lr:g}": [cell(a, lr, self.tied.loc[a, lr]) for a in self.mean.index] for lr in self.lrs},
            index=self.mean.index,
        )  # fmt: skip
        out["own best rate"] = [
            f"{cell(a, self.best_lr[a], self.tied_tuned[a])} ({self.best_lr[a]:g})"
            for a in self.mean.index
        ]
        return out

    def ties_sentence(self, labels: dict[str, str] = LABELS) -> str:
        """Which activations tie with the best at which rates, in words (semicolons between
        the activations, whose clauses may hold an "and")."""
        always = self.always_tied()
        if always:
            verb = "ties" if len(always) == 1 else "tie"
            clauses = [f"{listing(labels[a] for a in always)} {verb} with the best at every rate"]
        else:
            clauses = ["no activation ties with the best at every rate"]
        for a in self.tied.index:
            if a in always:
                continue
            yes = self.rates_tied(a)
            no = [lr for lr in self.lrs if lr not in yes]
            if not yes:
                where = "at no rate"
            elif len(yes) > len(no):
                where = f"at every rate but {nums(no, 'g')}"
            else:
                where = f"only at {nums(yes, 'g')}"
            clauses.append(f"{labels[a]} {where}")
        return "; ".join(clauses)


def compare_rates(
    run: SwapRun, activations: Sequence[str], lrs: Sequence[float], *, norm: str
) -> RateComparison:
    """:class:`RateComparison` of the members of ``run`` with ``norm``, one batched run."""
    lrs = sorted(lrs)
    finals = {(a, lr): run.final(activation=a, lr=lr, norm=norm) for a in activations for lr in lrs}
    if any(len(v) == 0 for v in finals.values()):
        missing = [k for k, v in finals.items() if len(v) == 0]
        raise ValueError(f"no members for (activation, lr) {missing[:3]} with norm {norm!r}")

    def table(fn: Callable[[np.ndarray], float]) -> pd.DataFrame:
        data = {lr: [fn(finals[a, lr]) for a in activations] for lr in lrs}
        return pd.DataFrame(data, index=pd.Index(list(activations), name="activation"))

    tied = pd.DataFrame(False, index=pd.Index(list(activations), name="activation"), columns=lrs)
    for lr in lrs:
        tied.loc[tied_with_best({a: finals[a, lr] for a in activations}), lr] = True
    mean = table(np.mean)
    best_lr = mean.idxmax(axis=1)
    tuned = tied_with_best({a: finals[a, best_lr[a]] for a in activations})
    return RateComparison(
        lrs=lrs,
        mean=mean,
        std=table(lambda v: float(np.std(v, ddof=1))),
        tied=tied,
        best_lr=best_lr,
        tied_tuned=pd.Series([a in tuned for a in activations], index=mean.index),
    )


def tie_phrase(names: Sequence[str], word: str) -> str:
    """``"ReLU is fastest"`` for one name, ``"ReLU and ELU tie for fastest"`` for several."""
    if not names:
        raise ValueError("tie_phrase needs at least one name")
    if len(names) == 1:
        return f"{names[0]} is {word}"
    return f"{listing(names)} tie for {word}"


def activation_names(model: nn.Module) -> list[str]:
    """Class names of every elementwise activation module in ``model``, in ``modules()`` order.

    A module object used in two places is listed once (as ``modules()`` does).
    """
    return [type(m).__name__ for m in model.modules() if is_activation(m)]


def swap_activations(model: nn.Module, name: str) -> nn.Module:
    """A copy of ``model`` with every elementwise activation module replaced by ``name``'s (chapter 6).

    The swap walks the module tree, so activations nested in ``nn.Sequential``,
    ``nn.ModuleList``, ``nn.ModuleDict`` or any custom container are found. Every
    replacement is a fresh module from :func:`actlab.engine.models.activation_module`, and
    all other modules keep their weights, so networks swapped from one model start
    from the same weights and differ only in their activation. The original model is
    not changed. Activations called as functions inside ``forward`` (``F.relu``) are
    not modules and cannot be swapped this way; softmax-like modules are left alone.
    """
    activation_module(name)  # fail early on an unknown name
    if is_activation(model):
        return activation_module(name)
    swapped = copy.deepcopy(model)
    _swap_in_place(swapped, name)
    return swapped


def _swap_in_place(module: nn.Module, name: str) -> None:
    # _modules, not named_children(): the latter skips a second use of a shared module.
    for child_name, child in list(module._modules.items()):
        if child is None:
            continue
        if is_activation(child):
            setattr(module, child_name, activation_module(name))
        else:
            _swap_in_place(child, name)


def plot_accuracy_curves(ax, run: SwapRun, activations: Sequence[str], **select: object) -> None:
    """Mean validation accuracy over seeds with a min-max band, one line per activation."""
    for act in activations:
        idx = run.where(activation=act, **select)
        acc = run.accuracy[:, idx]
        style = STYLES.get(act, {})
        ax.plot(
            run.epochs, acc.mean(1), label=LABELS.get(act, act), color=style.get("color"),
            ls=style.get("ls", "-"), marker=style.get("marker"), ms=4, markevery=3, lw=1.4,
        )  # fmt: skip
        ax.fill_between(run.epochs, acc.min(1), acc.max(1), color=style.get("color"), alpha=0.12)
    ax.set(xlabel="epoch", ylabel="validation accuracy")


def validation_curve_explorer(
    run: SwapRun,
    activations: Sequence[str],
    lrs: Sequence[float],
    reference: tuple[str, float] = ("relu", 1e-3),
    norm: str = "none",
    default_lr: float = 1e-3,
    chance: float = 0.1,
) -> Explorer:
    """Chapter 6's explorer: activation x learning rate -> validation accuracy over the epochs.

    Each frame draws the mean and range over seeds of the members of ``run`` with that
    activation and learning rate (and ``norm``), against the mean curve of the
    ``reference`` (activation, learning rate) as a dashed grey line and the accuracy of
    guessing, ``chance``, as a dotted one. Frames are one panel at the page's content width
    (:func:`actlab.presentation.figures.panels`).

    Args:
        run: the swap experiment, its members of fields ``activation``, ``lr`` and ``norm``.
        activations, lrs: the values of the two controls, in display order.
        reference: the activation and learning rate drawn in every frame.
        norm: the members' norm.
        default_lr: the learning rate shown first.
        chance: the accuracy of a guess (one class in ten for the digits).
    """
    ref_act, ref_lr = reference
    ref = run.accuracy[:, run.where(activation=ref_act, lr=ref_lr, norm=norm)].mean(1)
    ref_label = f"{LABELS.get(ref_act, ref_act)}, lr {ref_lr:g}"

    def final_accuracy(activation: str, lr: float) -> np.ndarray:
        return run.accuracy[-1, run.where(activation=activation, lr=lr, norm=norm)]

    def draw(activation: str, lr: float) -> Figure:
        fig, (ax,) = panels(1, height=2.6)
        ax.plot(run.epochs, ref, color=OKABE_ITO["grey"], ls="--", lw=1.2, label=ref_label)
        ax.axhline(chance, color=OKABE_ITO["grey"], ls=":", lw=1, label="chance")
        plot_accuracy_curves(ax, run, [activation], lr=lr, norm=norm)
        final = final_accuracy(activation, lr)
        ax.set(
            xlim=(run.epochs[0], run.epochs[-1]),
            ylim=(0, 1),
            title=f"{LABELS[activation]}, lr {lr:g}: {final.mean():.3f} ± {final.std(ddof=1):.3f}",
        )
        ax.legend(loc="center right")
        return fig

    def describe(activation: str, lr: float) -> str:
        final = final_accuracy(activation, lr)
        return (
            f"{LABELS[activation]} at learning rate {lr:g}: validation accuracy after "
            f"{int(run.epochs[-1])} epochs {final.mean():.3f} ± {final.std(ddof=1):.3f} over "
            f"{len(final)} seeds, against {ref[-1]:.3f} for {LABELS.get(ref_act, ref_act)} "
            f"at {ref_lr:g}"
        )

    return Explorer(
        draw,
        [
            Control("activation", list(activations), kind="dropdown"),
            Control("lr", list(lrs), label="learning rate", default=default_lr),
        ],
        describe=describe,
        title=(
            f"Activation × learning rate → validation accuracy (digits, {run.depth} hidden layers)"
        ),
    )
