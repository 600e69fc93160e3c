"""Model builders shared by the chapters."""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ACTIVATIONS, get

_IDENTITY_NAMES = ("none", "linear")
NORMS = ("none", "layer")


def activation_module(name: str) -> nn.Module:
    """A fresh ``nn.Module`` for the activation called ``name`` (``"none"`` is the identity).

    Names other than ``"none"``/``"linear"`` come from the registry in ``actlab.activations``.
    """
    if name in _IDENTITY_NAMES:
        return nn.Identity()
    try:
        return get(name).module()
    except ValueError:
        known = sorted([*_IDENTITY_NAMES, *ACTIVATIONS])
        raise ValueError(f"unknown activation {name!r}; known: {known}") from None


def mlp(
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    activation: str = "relu",
    widths: list[int] | None = None,
    norm: str = "none",
) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units (or the given ``widths``), each followed by ``activation``.

    With ``activation="none"`` the network is a stack of affine maps (chapter 1). With
    ``norm="layer"`` an ``nn.LayerNorm`` sits between each hidden linear layer and its
    activation (chapter 4's normalisation fix, chapter 6's swap experiment).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")
    widths = widths if widths is not None else [width] * depth
    layers: list[nn.Module] = []
    prev = in_dim
    for w in widths:
        layers.append(nn.Linear(prev, w))
        if norm == "layer":
            layers.append(nn.LayerNorm(w))
        layers.append(activation_module(activation))
        prev = w
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def hidden_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The input followed by the output of every activation module of ``model`` (layer by layer)."""
    outs = [x]
    h = x
    for m in model:
        h = m(h)
        if not isinstance(m, nn.Linear | nn.LayerNorm):
            outs.append(h)
    return outs
