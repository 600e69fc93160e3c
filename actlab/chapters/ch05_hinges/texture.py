"""Chapter 5's texture experiment: how steep each hidden layer's activations are, measured
on the trained networks before blaming saturation for a poor fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from actlab.engine.activations import ACTIVATIONS


@dataclass(frozen=True)
class LayerSlopes:
    """Each member's hidden layers at one moment of training; arrays ``(members, layers)``,
    layer 0 nearest the input.

    Attributes:
        mean_slope: the activation's slope ``phi'(z)`` averaged over inputs and units.
        below: the share of (input, unit) pairs whose slope is below ``threshold``: the
            flat tails of a saturating activation (a dead ReLU's zero slope counts too).
        spread: how much a unit's output varies with the input: its standard deviation
            over the inputs, averaged over the layer's units (as chapter 4 measures it).
        threshold: the slope below which a pair counts in ``below``.
    """

    mean_slope: np.ndarray
    below: np.ndarray
    spread: np.ndarray
    threshold: float


def slope_probe(threshold: float = 0.05) -> Callable[[Any, torch.Tensor], LayerSlopes]:
    """A probe for ``train_ensemble``: every member's :class:`LayerSlopes` on the training
    inputs, each member with its own activation's closed-form slope from the registry."""

    def probe(model: Any, X: torch.Tensor) -> LayerSlopes:
        _, pre, hidden = model.trace(X)
        names = [m.activation for m in model.members]
        groups = {
            name: torch.tensor([i for i, n in enumerate(names) if n == name], device=X.device)
            for name in dict.fromkeys(names)
        }
        mean, below, spread = [], [], []
        for z, h in zip(pre, hidden, strict=True):
            slope = torch.empty_like(z)
            for name, idx in groups.items():
                slope[idx] = ACTIVATIONS[name].torch_dfn(z[idx])
            mean.append(slope.mean(dim=(1, 2)))
            below.append((slope < threshold).to(z.dtype).mean(dim=(1, 2)))
            spread.append(h.std(dim=1, unbiased=False).mean(dim=1))
        return LayerSlopes(
            *(torch.stack(v, dim=1).cpu().numpy() for v in (mean, below, spread)),
            threshold=threshold,
        )

    return probe


__all__ = ["LayerSlopes", "slope_probe"]
