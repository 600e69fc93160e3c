"""Depth at scale (chapter 7): plain stacks against residual streams, at initialisation and in training.

Every measurement here is one call of the batched ensemble per depth and block kind, the
members being every activation times every seed: :func:`gradient_table` takes one
forward and backward pass at initialisation (:func:`actlab.ensemble.block_gradient_norms_at_init`),
:func:`trainability` trains (:func:`actlab.ensemble.train_ensemble`), and
:func:`variance_table` reads the residual stream's variance
(:func:`actlab.ensemble.stream_variances`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from actlab.chapters.ch03_backprop import gm_text, log_limits
from actlab.engine.activations import LABELS
from actlab.engine.device import cpu_threads, get_device
from actlab.ensemble import (
    block_gradient_norms_at_init,
    members_grid,
    stream_variances,
    train_ensemble,
)
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import activation_style, panels
from actlab.presentation.prose import count, of


class Block(NamedTuple):
    """A block kind as the ensemble builds it: its ``Member.block`` and ``Member.norm``."""

    kind: str
    norm: str
    label: str
    branch: str = "default"


BLOCKS: dict[str, Block] = {
    "plain": Block("plain", "none", "plain stack"),
    "residual": Block("residual", "none", "residual, no norm"),
    "scaled": Block("residual", "none", "residual, branch × 1/√D", "scaled"),
    "pre-ln": Block("residual", "layer", "residual, pre-LN"),
}
"""The stacks the chapter compares: ``h = act(W h + b)``; ``h + W2 act(W1 h + b1) + b2``; the
same with each branch's last layer scaled by ``1/sqrt(L)`` at initialisation; and the
same (unscaled) with a LayerNorm before the branch and before the head."""

GradTable = dict[tuple[int, str, str], np.ndarray]
"""``(depth, block, activation)`` -> per-weight RMS gradient per block, ``(seeds, depth)``."""


def _members(seeds: Sequence[int], activations: Sequence[str], block: str, **kw):
    b = BLOCKS[block]
    return members_grid(
        seeds, activations, inits=[kw.pop("init", "he")], norms=[b.norm], blocks=[b.kind],
        branches=[b.branch], **kw,
    )  # fmt: skip


def gradient_table(
    X: np.ndarray,
    y: np.ndarray,
    depths: Sequence[int],
    blocks: Sequence[str],
    activations: Sequence[str],
    seeds: Sequence[int],
    *,
    width: int,
    loss: str = "ce",
    device: torch.device | str | None = None,
) -> GradTable:
    """Each block's root-mean-square gradient per weight at initialisation (He), per seed.

    One stacked forward and backward pass per depth and block kind, every activation and
    seed at once.
    """
    device = torch.device(device) if device is not None else get_device()
    seeds = list(seeds)
    table: GradTable = {}
    with cpu_threads("auto", device):
        for depth in depths:
            for block in blocks:
                members = _members(seeds, activations, block)
                rms = block_gradient_norms_at_init(
                    members, X, y, depth=depth, width=width, loss=loss, device=device
                )
                for i, act in enumerate(activations):
                    table[depth, block, act] = rms[i * len(seeds) : (i + 1) * len(seeds)]
    return table


def first_last_ratio(rms: np.ndarray) -> np.ndarray:
    """Block 1's gradient per weight over the last block's, per seed (below 1: it fades
    on the way down). Where the last block's is 0 the ratio is undefined (NaN)."""
    rms = np.asarray(rms, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rms[:, -1] > 0, rms[:, 0] / rms[:, -1], np.nan)


def summary_text(values: np.ndarray, spec: str = ".2g") -> str:
    """Geometric mean over seeds with the range in brackets, or what stops it: "0 (it
    underflows in float32)" where every seed's value is 0, "not finite (float32 overflows)"
    where some seed's is infinite or undefined, "0 for k of n seeds" where some are 0."""
    v = np.asarray(values, dtype=float).ravel()
    if np.all(v == 0):
        return "0 (it underflows in float32)"
    if np.any(~np.isfinite(v)):
        bad = int(np.sum(~np.isfinite(v)))
        return f"not finite for {of(bad, v.size, 'seed')} (float32 overflows)"
    if np.any(v <= 0):
        return f"0 for {of(int(np.sum(v <= 0)), v.size, 'seed')} (it underflows in float32)"
    return gm_text(v, spec)


def survival(table: GradTable, depth: int, block: str, act: str, base: int) -> np.ndarray:
    """Block 1's gradient per weight in the stack of ``depth`` blocks over block 1's in the
    same stack of ``base`` blocks, per seed: how much of the shallow stack's gradient is
    left at depth (0 where it underflowed, not finite where it overflowed)."""
    deep, shallow = table[depth, block, act][:, 0], table[base, block, act][:, 0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return deep / shallow


def within(values: np.ndarray, factor: float = 10.0) -> bool:
    """True where every seed's value is finite and within ``factor`` of 1 either way."""
    v = np.asarray(values, dtype=float)
    return bool(np.all(np.isfinite(v)) and np.all(v >= 1 / factor) and np.all(v <= factor))


def healthy(table: GradTable, depth: int, block: str, act: str, base: int,
            factor: float = 10.0) -> bool:  # fmt: skip
    """The chapter's test of a gradient at initialisation, on every seed: block 1 gets within
    ``factor`` of the last block's gradient per weight (it neither fades nor grows on its
    way down), and within ``factor`` of what block 1 gets in the same stack of ``base``
    blocks (the whole gradient has not shrunk or grown with depth)."""
    return within(first_last_ratio(table[depth, block, act]), factor) and within(
        survival(table, depth, block, act, base), factor
    )


def _centre(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: geometric mean over the seeds whose value is positive, and the range;
    NaN (a gap in the line) where no seed's value is positive."""
    g = np.asarray(g, dtype=float)
    pos = np.where(g > 0, g, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.exp(np.nanmean(np.log(pos), axis=0)) if np.any(g > 0) else pos[0]
    return centre, np.nanmin(pos, axis=0), np.nanmax(pos, axis=0)


def gradient_panel(ax, table: GradTable, depth: int, block: str, activations: Sequence[str]):
    """One panel: each activation's per-block gradient against the block, log axis."""
    blocks_x = np.arange(1, depth + 1)
    for act in activations:
        style = activation_style(act)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centre, low, high = _centre(table[depth, block, act])
        ax.fill_between(blocks_x, low, high, color=style["color"], alpha=0.15, lw=0)
        ax.plot(blocks_x, centre, label=LABELS[act], markevery=max(1, depth // 8), **style)
    ax.set(yscale="log", xlim=(0.5, depth + 0.5), title=BLOCKS[block].label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def gradient_figure(
    table: GradTable,
    depth: int,
    blocks: Sequence[str],
    activations: Sequence[str],
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Per-block gradient per weight at initialisation, one panel per block kind, one line per
    activation (geometric mean over seeds, range shaded). Blocks where every seed's gradient
    is 0 in float32 leave a gap."""
    fig, axes = panels(len(blocks), height=2.7, sharey=True)
    for ax, block in zip(axes, blocks, strict=True):
        gradient_panel(ax, table, depth, block, activations)
        ax.set_xlabel("block (1 = input side)")
    axes[0].set_ylabel("RMS gradient per weight")
    lim = ylim or log_limits([table[depth, b, a] for b in blocks for a in activations], pad=3.0)
    for ax in axes:
        ax.set_ylim(*lim)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(activations)
    )
    return fig


def describe_frame(table: GradTable, depth: int, block: str, activations: Sequence[str]) -> str:
    """The finding of one explorer frame: each activation's first-to-last ratio."""
    parts = [
        f"{LABELS[a]} {summary_text(first_last_ratio(table[depth, block, a]))}" for a in activations
    ]
    n = len(table[depth, block, activations[0]])
    return (
        f"{count(depth, 'block')}, {BLOCKS[block].label}. Block 1's gradient per weight as a "
        f"fraction of block {depth}'s (geometric mean over {count(n, 'seed')}, range in "
        f"brackets): {'; '.join(parts)}"
    )


def depth_explorer(
    table: GradTable, depths: Sequence[int], blocks: Sequence[str], activations: Sequence[str]
) -> Explorer:
    """Depth x block kind -> per-block gradient per weight, one line per activation, on one log
    axis framed by every frame so that frames compare."""
    ylim = log_limits(
        [table[d, b, a] for d in depths for b in blocks for a in activations], pad=3.0
    )
    by_label = {BLOCKS[b].label: b for b in blocks}

    def draw(depth: int, block: str) -> Figure:
        fig, (ax,) = panels(1, height=3.0)
        gradient_panel(ax, table, depth, by_label[block], activations)
        ax.set(ylim=ylim, xlabel=f"block (1 = input side, {depth} = output side)",
               ylabel="RMS gradient per weight")  # fmt: skip
        fig.legend(loc="outside lower center", ncols=len(activations))
        return fig

    return Explorer(
        draw,
        [
            Control("depth", list(depths), label="blocks"),
            Control("block", list(by_label), label="stack", kind="buttons"),
        ],
        title="Depth × stack → gradient per weight and block at initialisation, one line per activation",
        describe=lambda depth, block: describe_frame(table, depth, by_label[block], activations),
    )


class Trained(NamedTuple):
    """Final training loss per member (mean of the last epoch), by depth and block kind."""

    losses: dict[tuple[int, str, str], np.ndarray]
    """``(depth, block, activation)`` -> final loss per seed."""
    seconds: float
    device: str
    networks: int


def trainability(
    X: np.ndarray,
    y: np.ndarray,
    settings: Sequence[tuple[int, str]],
    activations: Sequence[str],
    seeds: Sequence[int],
    *,
    width: int,
    num_epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
) -> Trained:
    """Train every activation and seed for each ``(depth, block)`` setting (cross-entropy,
    Adam, the same batches): one ensemble per setting."""
    seeds = list(seeds)
    losses: dict[tuple[int, str, str], np.ndarray] = {}
    seconds, where, n = 0.0, "", 0
    for depth, block in settings:
        members = _members(seeds, activations, block, lrs=[lr])
        res = train_ensemble(
            members, X, y, depth=depth, width=width, num_epochs=num_epochs, loss="ce",
            batch_size=batch_size, grad_epochs=[], device=device, progress=False,
        )  # fmt: skip
        seconds += res.seconds
        where, n = res.device, n + len(members)
        for i, act in enumerate(activations):
            losses[depth, block, act] = res.losses[-1, i * len(seeds) : (i + 1) * len(seeds)]
    return Trained(losses, seconds, where, n)


def variance_table(
    X: np.ndarray,
    depth: int,
    activations: Sequence[str],
    branches: Sequence[str],
    seeds: Sequence[int],
    *,
    width: int,
) -> dict[tuple[str, str], np.ndarray]:
    """The residual stream's variance after each block (no norm, He), per branch init:
    ``(branch, activation)`` -> ``(seeds, depth + 1)``, column 0 the input projection."""
    seeds = list(seeds)
    members = [
        m
        for branch in branches
        for m in members_grid(
            seeds, activations, inits=["he"], blocks=["residual"], branches=[branch]
        )
    ]
    var = stream_variances(members, X, depth=depth, width=width)
    out = {}
    i = 0
    for branch in branches:
        for act in activations:
            out[branch, act] = var[i : i + len(seeds)]
            i += len(seeds)
    return out


class FormatRun(NamedTuple):
    """The same members trained in float32 and under bfloat16 autocast."""

    losses: dict[tuple[str, str], np.ndarray]
    """``(format, activation)`` -> training loss per epoch and seed, ``(epochs, seeds)``."""
    nonfinite: dict[tuple[str, str], np.ndarray]
    """``(format, activation)`` -> steps with a non-finite loss, per seed."""
    seconds: dict[str, float]
    device: str


def train_formats(
    X: np.ndarray,
    y: np.ndarray,
    block: str,
    depth: int,
    activations: Sequence[str],
    seeds: Sequence[int],
    *,
    width: int,
    num_epochs: int,
    batch_size: int,
    formats: dict[str, torch.dtype | None],
    lr: float = 1e-3,
    device: torch.device | str | None = None,
) -> FormatRun:
    """Train the same members (same seeds, same batches) once per format: ``None`` for plain
    float32, a dtype for autocast to it (float32 master weights)."""
    seeds = list(seeds)
    members = _members(seeds, activations, block, lrs=[lr])
    losses, nonfinite, seconds, where = {}, {}, {}, ""
    for name, dtype in formats.items():
        res = train_ensemble(
            members, X, y, depth=depth, width=width, num_epochs=num_epochs, loss="ce",
            batch_size=batch_size, grad_epochs=[], device=device, progress=False, autocast=dtype,
        )  # fmt: skip
        seconds[name], where = res.seconds, res.device
        for act in activations:
            idx = res.where(activation=act)
            losses[name, act] = res.losses[:, idx]
            nonfinite[name, act] = np.asarray(res.nonfinite_steps)[idx]
    return FormatRun(losses, nonfinite, seconds, where)


def ratio_figure(table: GradTable, depths: Sequence[int], blocks: Sequence[str],
                 activations: Sequence[str]) -> Figure:  # fmt: skip
    """Block 1's gradient per weight over the last block's against depth, one panel per stack,
    one line per activation (geometric mean over the seeds whose ratio is finite and positive;
    a gap where none is), with the healthy band from a tenth to ten times shaded."""
    fig, axes = panels(len(blocks), height=2.4, sharex=True, sharey=True)
    for ax, block in zip(axes, blocks, strict=True):
        for act in activations:
            r = np.array([first_last_ratio(table[d, block, act]) for d in depths])
            pos = np.where(np.isfinite(r) & (r > 0), r, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                centre = np.exp(np.nanmean(np.log(pos), axis=1))
            ax.plot(depths, centre, label=LABELS[act], **activation_style(act))
        ax.axhspan(0.1, 10, color="0.9", lw=0)
        ax.set(xscale="log", yscale="log", title=BLOCKS[block].label)
        ax.set_xticks(list(depths), [str(d) for d in depths])
        ax.minorticks_off()
    for ax in axes[-min(2, len(axes)) :]:
        ax.set_xlabel("blocks")
    for ax in axes[::2]:
        ax.set_ylabel("block 1 / last")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncols=len(activations))  # fmt: skip
    return fig


def growth_phrase(variances: np.ndarray, spec: str = ".3g") -> str:
    """How much the stream's variance grows from the input projection to the last block, over
    seeds: "by a factor of 7.1 (5.4 to 9.4)", "not at all: exactly 1", or, where float32
    overflows, the block at which it first does on some seed."""
    v = np.asarray(variances, dtype=float)
    finite = np.isfinite(v).all(axis=0)
    if not finite.all():
        first = int(np.argmin(finite))
        return f"until float32 overflows, at block {first} on the first seed to overflow"
    growth = v[:, -1] / v[:, 0]
    if np.allclose(growth, 1.0, rtol=1e-6, atol=0):
        return "not at all: the factor is 1"
    return f"by a factor of {summary_text(growth, spec)}"
