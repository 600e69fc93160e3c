"""Linear collapse (chapter 1): stacked affine layers are one affine layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

Layer = tuple[np.ndarray, np.ndarray]


def collapse(layers: Sequence[Layer]) -> Layer:
    """Compose affine layers ``x -> W_k x + b_k`` (applied first to last) into one ``(W, b)``.

    Uses ``W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`` repeatedly.
    """
    if len(layers) == 0:
        raise ValueError("need at least one layer")
    W, b = (np.asarray(a, dtype=float) for a in layers[0])
    for W_k, b_k in layers[1:]:
        W_k = np.asarray(W_k, dtype=float)
        if W_k.shape[1] != W.shape[0]:
            raise ValueError(f"layer shapes do not chain: {W.shape} then {W_k.shape}")
        W, b = W_k @ W, W_k @ b + np.asarray(b_k, dtype=float)
    return W, b


def affine_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` in order; raises if anything else would act."""
    layers = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            layers.append(m)
        elif not isinstance(m, nn.Sequential | nn.Identity):
            raise ValueError(f"{type(m).__name__} is not affine; cannot collapse")
    return layers


@torch.no_grad()
def collapse_module(model: nn.Module) -> nn.Linear:
    """One ``nn.Linear`` computing the same map as a stack of linear layers (closed form)."""
    layers = affine_layers(model)
    first = layers[0]
    W = first.weight.detach().clone()
    b = first.bias.detach().clone() if first.bias is not None else torch.zeros(W.shape[0])
    for layer in layers[1:]:
        b = layer.weight @ b + (layer.bias if layer.bias is not None else 0.0)
        W = layer.weight @ W
    out = nn.Linear(W.shape[1], W.shape[0]).to(W.dtype)
    out.weight.copy_(W)
    out.bias.copy_(b)
    return out


def collapsed_rank(layers: Sequence[Layer], tol: float | None = None) -> int:
    """Rank of the collapsed weight: at most the narrowest layer's width."""
    W, _ = collapse(layers)
    return int(np.linalg.matrix_rank(W, tol=tol))


def is_affine(
    f: Callable[[np.ndarray], np.ndarray],
    in_dim: int,
    n_trials: int = 20,
    seed: int = 0,
    rtol: float = 1e-6,
) -> bool:
    """Test numerically whether ``f`` is affine: ``g = f - f(0)`` must be additive and homogeneous.

    Random probes at several scales; a nonlinear activation almost surely breaks
    ``g(a x + b y) = a g(x) + b g(y)`` on one of them.
    """
    rng = np.random.default_rng(seed)
    zero = np.zeros(in_dim)
    f0 = np.asarray(f(zero), dtype=float)
    for _ in range(n_trials):
        scale = 10.0 ** rng.uniform(-1, 1)
        x, y = rng.normal(size=(2, in_dim)) * scale
        a, c = rng.normal(size=2)
        lhs = np.asarray(f(a * x + c * y), dtype=float) - f0
        rhs = a * (np.asarray(f(x), dtype=float) - f0) + c * (np.asarray(f(y), dtype=float) - f0)
        if not np.allclose(lhs, rhs, rtol=rtol, atol=rtol * (1 + np.abs(rhs).max())):
            return False
    return True
