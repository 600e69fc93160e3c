"""Model builders shared by the chapters."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

_MODULES: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
}


def activation_module(name: str) -> nn.Module:
    """A fresh ``nn.Module`` for the activation called ``name`` (``"none"`` is the identity)."""
    try:
        return _MODULES[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_MODULES)}") from None


def mlp(
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    activation: str = "relu",
    widths: list[int] | None = None,
) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units (or the given ``widths``), each followed by ``activation``.

    With ``activation="none"`` the network is a stack of affine maps (chapter 1).
    """
    widths = widths if widths is not None else [width] * depth
    layers: list[nn.Module] = []
    prev = in_dim
    for w in widths:
        layers += [nn.Linear(prev, w), activation_module(activation)]
        prev = w
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def hidden_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The input followed by the output of every activation module of ``model`` (layer by layer)."""
    outs = [x]
    h = x
    for m in model:
        h = m(h)
        if not isinstance(m, nn.Linear):
            outs.append(h)
    return outs
