"""Gated feed-forward blocks against plain ones at a matched parameter count (chapter 7).

A plain feed-forward block ``d -> m -> d`` has ``2 d m`` weights; a gated one has three
matrices, ``W`` and ``V`` (``d -> m'``) and ``W2`` (``m' -> d``), so ``m' = 2m/3`` matches the
count (Shazeer 2020). :func:`gated_comparison` trains both kinds as pre-LN residual stacks on
the same data: one batched ensemble per block kind (the members' shapes differ between the
kinds), every activation and seed at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from actlab.chapters.ch06_choosing import accuracy_probe
from actlab.engine.data import DigitsSplit
from actlab.ensemble import EnsembleResult, members_grid, train_ensemble

GATES: dict[str, str] = {"glu": "sigmoid", "reglu": "relu", "geglu": "gelu", "swiglu": "silu"}
"""Each gated unit by the activation of its gate: GLU's is the sigmoid, SwiGLU's SiLU."""

GATED_LABELS: dict[str, str] = {
    "glu": "GLU",
    "reglu": "ReGLU",
    "geglu": "GEGLU",
    "swiglu": "SwiGLU",
}


def matched_hidden(hidden: int) -> int:
    """The gated block's hidden width with about the plain block's weights: ``round(2 m / 3)``."""
    if hidden < 2:
        raise ValueError("the plain block's hidden width must be at least 2")
    return round(2 * hidden / 3)


class GatedRun(NamedTuple):
    """Both ensembles of :func:`gated_comparison`, and what the page reads from them."""

    plain: EnsembleResult
    gated: EnsembleResult
    epochs: np.ndarray
    """The epochs at which validation accuracy was probed."""
    params: dict[str, int]
    """Parameters of one network, by unit (``"relu"``, ..., ``"swiglu"``)."""
    block_weights: dict[str, int]
    """Weights of one block's matrices (biases and norm left out), counted on the network, by unit."""

    def losses(self, unit: str) -> np.ndarray:
        """Training loss per epoch and seed, ``(epochs, seeds)``."""
        res, act = self._where(unit)
        return res.losses[:, res.where(activation=act)]

    def accuracy(self, unit: str, epoch: int | None = None) -> np.ndarray:
        """Validation accuracy per seed at ``epoch`` (default: the last)."""
        res, act = self._where(unit)
        e = int(self.epochs[-1]) if epoch is None else epoch
        return np.asarray(res.probes[e])[res.where(activation=act)]

    def _where(self, unit: str) -> tuple[EnsembleResult, str]:
        return (self.gated, GATES[unit]) if unit in GATES else (self.plain, unit)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def gated_comparison(
    split: DigitsSplit,
    seeds: Sequence[int],
    *,
    plain: Sequence[str] = ("relu", "gelu"),
    gated: Sequence[str] = tuple(GATES),
    width: int,
    hidden: int,
    depth: int,
    num_epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    probe_every: int = 1,
    device: torch.device | str | None = None,
) -> GatedRun:
    """Train pre-LN residual stacks of plain blocks (hidden ``hidden``) and of gated blocks
    (hidden :func:`matched_hidden`) on the digits, cross-entropy and Adam, and probe the
    validation accuracy every ``probe_every`` epochs."""
    seeds = list(seeds)
    epochs = sorted({*range(0, num_epochs + 1, probe_every), num_epochs})
    common = dict(
        depth=depth, width=width, num_epochs=num_epochs, loss="ce", batch_size=batch_size,
        grad_epochs=[], probe=accuracy_probe(split.X_val, split.y_val), probe_epochs=epochs,
        device=device, progress=False,
    )  # fmt: skip
    runs = {}
    for kind, acts, m in (
        ("residual", list(plain), hidden),
        ("gated", [GATES[u] for u in gated], matched_hidden(hidden)),
    ):
        members = members_grid(seeds, acts, lrs=[lr], inits=["he"], norms=["layer"], blocks=[kind])
        runs[kind] = train_ensemble(members, split.X_train, split.y_train, branch_width=m, **common)
    params, block_weights = {}, {}
    for unit in [*plain, *gated]:
        res = runs["gated"] if unit in GATES else runs["residual"]
        act = GATES.get(unit, unit)
        net = res.model.member_module(int(res.where(activation=act)[0]))
        params[unit] = _count(net)
        block = net.blocks[0]
        block_weights[unit] = sum(
            layer.weight.numel()
            for layer in (block.fc1, block.gate, block.fc2)
            if layer is not None
        )
    return GatedRun(runs["residual"], runs["gated"], np.array(epochs), params, block_weights)
