"""Model builders and initialisation shared by the chapters and the ensemble trainer."""

from __future__ import annotations

import torch
from torch import nn

from actlab.engine.activations import ACTIVATIONS, get, is_activation

_IDENTITY_NAMES = ("none", "linear")
NORMS = ("none", "layer")


def activation_module(name: str) -> nn.Module:
    """A fresh ``nn.Module`` for the activation called ``name`` (``"none"`` is the identity).

    Names other than ``"none"``/``"linear"`` come from the registry in ``actlab.engine.activations``.
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
        if is_activation(m, identity=True):
            outs.append(h)
    return outs


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` in the order they were registered."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


INIT_SCHEMES = ("default", "xavier", "he", "default-zero-bias")


@torch.no_grad()
def init_mlp_(model: nn.Module, scheme: str = "default") -> nn.Module:
    """Re-initialise every linear layer of ``model`` in place (chapter 3).

    Args:
        scheme: ``"default"`` keeps PyTorch's ``U(±1/sqrt(fan_in))`` weights and biases;
            ``"default-zero-bias"`` keeps PyTorch's weights and zeroes every bias (chapter 3
            measures what the default's biases do);
            ``"xavier"`` is Glorot & Bengio's uniform scheme, variance ``2/(fan_in+fan_out)``;
            ``"he"`` is He et al.'s normal scheme for ReLU, variance ``2/fan_in``;
            ``"normal:STD"`` draws weights from ``N(0, STD^2)``. Biases are zeroed
            by every scheme but ``"default"``.

    Returns:
        ``model``, for chaining.
    """
    if scheme == "default":
        return model
    if scheme == "default-zero-bias":
        for layer in linear_layers(model):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        return model
    for layer in linear_layers(model):
        if scheme == "xavier":
            nn.init.xavier_uniform_(layer.weight)
        elif scheme == "he":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        elif scheme.startswith("normal:"):
            nn.init.normal_(layer.weight, 0.0, float(scheme.split(":", 1)[1]))
        else:
            raise ValueError(
                f"unknown init {scheme!r}; use default, default-zero-bias, xavier, he or normal:STD"
            )
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model
