"""Small data sets the chapters generate themselves (no downloads)."""

from __future__ import annotations

import numpy as np
import torch


def circles(
    n: int = 400, noise: float = 0.1, factor: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric rings in the plane (chapter 1): no straight line separates them.

    Args:
        n: number of points, half per ring.
        noise: standard deviation of the Gaussian noise added to each coordinate.
        factor: radius of the inner ring relative to the outer ring (radius 1).
        seed: seed of the generator.

    Returns:
        ``X`` of shape ``(n, 2)`` and labels ``y`` in ``{0, 1}`` (1 is the inner ring).
    """
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n_outer, 1.0, factor)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    X += rng.normal(scale=noise, size=X.shape)
    y = (np.arange(n) >= n_outer).astype(float)
    perm = rng.permutation(n)
    return X[perm] * 1.5, y[perm]


def noisy_sine(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``y = sin(x) + N(0, noise^2)`` on an even grid of ``n`` points of ``[-pi, pi]``."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-np.pi, np.pi, n)
    return x[:, None], np.sin(x)[:, None] + rng.normal(scale=noise, size=(n, 1))


def to_tensors(*arrays: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """float32 tensors on ``device``."""
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in arrays)
