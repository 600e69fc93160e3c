"""Chapter 6's swap experiment: digits data, batched activation swaps, their measures, a module swapper."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from actlab.engine.device import cpu_threads
from actlab.engine.models import activation_module
from actlab.ensemble import EnsembleMLP, EnsembleResult, Member, train_ensemble, train_single
from actlab.figures import OKABE_ITO

# Elementwise activation modules that swap_activations replaces. Softmax, LogSoftmax and
# Softmin are left alone: they act on a whole vector (an output layer), not per unit.
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Sigmoid,
    nn.Tanh,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.LogSigmoid,
    nn.Tanhshrink,
)


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's 8x8 digits, split and standardised (chapter 6).

    Attributes:
        X_train, X_val: inputs ``(N, 64)``, standardised with the training mean and std.
        y_train, y_val: class indices in ``0..9``.
        mean, std: the training statistics used (std 1 where a pixel is constant).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def digits_split(val_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """A fixed, stratified train/validation split of ``load_digits`` (bundled, no download).

    Every class keeps its share in both parts. Inputs are standardised per pixel with
    the *training* mean and standard deviation only, so nothing about the validation
    set leaks into training; pixels that are constant in training (always 0 at the
    image border) keep std 1 instead of dividing by zero.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, test_size=val_fraction, stratify=y, random_state=seed
    )
    mean = X_tr.mean(axis=0)
    std = X_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return DigitsSplit(
        X_train=((X_tr - mean) / std).astype(np.float32),
        y_train=y_tr.astype(np.int64),
        X_val=((X_va - mean) / std).astype(np.float32),
        y_val=y_va.astype(np.int64),
        mean=mean,
        std=std,
    )


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
        return (pred == yv).to(torch.float64).mean(dim=1).cpu().numpy()

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
    """Wall time of one epoch for ONE network trained alone (``train_single``, cross-entropy).

    The ensemble shares its time among its members, so a per-activation cost must be
    measured on a network of its own. The best of ``repeats`` runs is kept: on a
    busy machine other work only ever adds time. On one CPU thread, so that the figure
    is one core's work and does not depend on how many cores were free.
    """
    best = np.inf
    with cpu_threads(1, device or "cpu"):
        for _ in range(repeats):
            start = time.perf_counter()
            train_single(
                member, split.X_train, split.y_train, depth=depth, width=width,
                num_epochs=num_epochs, loss="ce", batch_size=batch_size, device=device,
            )  # fmt: skip
            best = min(best, (time.perf_counter() - start) / num_epochs)
    return float(best)


def overlaps_best(means: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """Which entries are within the seed spread of the best one (highest mean).

    An entry counts as indistinguishable from the best when its range over seeds
    ``[low, high]`` overlaps the best entry's range.
    """
    best = int(np.nanargmax(means))
    return (highs >= lows[best]) & (lows <= highs[best])


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
    ``times`` maps activation -> seconds per epoch.
    The column ``within spread`` marks activations whose seed range overlaps that of
    the activation with the best mean accuracy.
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
                "std": acc.std(),
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
    table["within spread"] = overlaps_best(
        table["accuracy"].to_numpy(), table["min"].to_numpy(), table["max"].to_numpy()
    )
    return table


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an elementwise activation that :func:`swap_activations` replaces."""
    return isinstance(module, ELEMENTWISE_ACTIVATIONS)


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


# The course palette (Okabe-Ito), with a distinct line style and marker per activation
# (chapter 6 figures): no two curves differ by colour alone.
STYLE: dict[str, dict[str, object]] = {
    "sigmoid": {"color": OKABE_ITO["black"], "ls": ":", "marker": "x"},
    "tanh": {"color": OKABE_ITO["orange"], "ls": "--", "marker": "o"},
    "relu": {"color": OKABE_ITO["sky blue"], "ls": "-", "marker": "s"},
    "leaky_relu": {"color": OKABE_ITO["bluish green"], "ls": "-.", "marker": "^"},
    "elu": {"color": OKABE_ITO["vermillion"], "ls": (0, (5, 1)), "marker": "v"},
    "gelu": {"color": OKABE_ITO["blue"], "ls": (0, (3, 1, 1, 1)), "marker": "D"},
    "silu": {"color": OKABE_ITO["reddish purple"], "ls": (0, (1, 1)), "marker": "P"},
}
LABELS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "silu": "SiLU",
}


def plot_accuracy_curves(ax, run: SwapRun, activations: Sequence[str], **select: object) -> None:
    """Mean validation accuracy over seeds with a min-max band, one line per activation."""
    for act in activations:
        idx = run.where(activation=act, **select)
        acc = run.accuracy[:, idx]
        style = STYLE.get(act, {})
        ax.plot(
            run.epochs, acc.mean(1), label=LABELS.get(act, act), color=style.get("color"),
            ls=style.get("ls", "-"), marker=style.get("marker"), ms=3, markevery=3, lw=1.4,
        )  # fmt: skip
        ax.fill_between(run.epochs, acc.min(1), acc.max(1), color=style.get("color"), alpha=0.12)
    ax.set(xlabel="epoch", ylabel="validation accuracy")
