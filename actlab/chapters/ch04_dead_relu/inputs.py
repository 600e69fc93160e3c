"""Chapter 4's check of its scalar input: a d-dimensional data set, and the ray rule of a
ReLU network without biases on one input."""

from __future__ import annotations

import numpy as np
import torch

from actlab.ensemble import EnsembleMLP

from .counts import count_units


def gaussian_sine(
    n: int = 200, dim: int = 8, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Chapter 3's noisy sine along one direction of a ``dim``-dimensional Gaussian input.

    ``x ~ N(0, I)`` and ``y = sin(2 u·x) + N(0, noise²)`` for a unit vector ``u`` drawn
    from ``seed``: the projection ``u·x`` is a standard normal, so ``2 u·x`` covers about
    the scalar task's ``[-π, π]`` while ``x`` varies in ``dim`` directions.

    Returns:
        ``X`` of shape ``(n, dim)`` and ``y`` of shape ``(n, 1)``.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    y = np.sin(2 * X @ u)[:, None] + rng.normal(scale=noise, size=(n, 1))
    return X, y


def dead_at_ends(model: EnsembleMLP, lo: float, hi: float) -> np.ndarray:
    """``(E, depth, width)``: the units with ``z <= 0`` at both ``x = lo`` and ``x = hi`` of a
    one-number input.

    The ray rule: in a ReLU network whose biases are all 0 (He initialisation), every
    layer is positively homogeneous, so a unit's ``z`` at ``x > 0`` is ``x`` times its
    ``z`` at 1 and at ``x < 0`` is ``|x|`` times its ``z`` at -1. Every hidden
    representation lies on two rays, and on data in ``[lo, hi]`` (``lo < 0 < hi``) that
    includes both ends a unit is dead exactly when it is dead at the two ends.
    """
    param = model.weights[0]
    ends = torch.tensor([[lo], [hi]], dtype=param.dtype, device=param.device)
    return count_units(model, ends).dead
