"""Small data sets the chapters generate themselves (no downloads)."""

from __future__ import annotations

import numpy as np
import torch


def two_moons(n: int = 400, noise: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in the plane: no straight line separates them.

    Returns:
        ``X`` of shape ``(n, 2)`` (standardised) and labels ``y`` in ``{0, 1}``.
    """
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    X = np.concatenate(
        [
            np.stack([np.cos(t0), np.sin(t0)], 1),
            np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1),
        ]
    )
    X += rng.normal(scale=noise, size=X.shape)
    X = (X - X.mean(0)) / X.std(0)
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    perm = rng.permutation(n)
    return X[perm], y[perm]


def noisy_sine(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``y = sin(x) + N(0, noise^2)`` on an even grid of ``n`` points of ``[-pi, pi]``."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-np.pi, np.pi, n)
    return x[:, None], np.sin(x)[:, None] + rng.normal(scale=noise, size=(n, 1))


def to_tensors(*arrays: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """float32 tensors on ``device``."""
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in arrays)
