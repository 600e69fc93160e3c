"""The course's data sets: generated here or shipped with a package (no downloads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's 8x8 digits, split and standardised (chapter 6).

    Attributes:
        X_train, X_val: inputs ``(N, 64)``, standardised with the training mean and std.
        y_train, y_val: class indices in ``0..9``.
        mean, std: the training statistics used (std 1 where a pixel is constant).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def digits_split(val_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """A fixed, stratified train/validation split of ``load_digits`` (bundled, no download).

    Every class keeps its share in both parts. Inputs are standardised per pixel with
    the *training* mean and standard deviation only, so nothing about the validation
    set leaks into training; pixels that are constant in training (always 0 at the
    image border) keep std 1 instead of dividing by zero.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, test_size=val_fraction, stratify=y, random_state=seed
    )
    mean = X_tr.mean(axis=0)
    std = X_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return DigitsSplit(
        X_train=((X_tr - mean) / std).astype(np.float32),
        y_train=y_tr.astype(np.int64),
        X_val=((X_va - mean) / std).astype(np.float32),
        y_val=y_va.astype(np.int64),
        mean=mean,
        std=std,
    )


# Chapter 5's texture targets: smooth, kinked, a jump, fast oscillation, a cubic.
TEXTURE_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin x": np.sin,
    "|x|": np.abs,
    "step": lambda x: (x > 0).astype(float),
    "sin 10x": lambda x: np.sin(10 * x),
    "x³": lambda x: x**3,
}


def per_member_targets(
    target_of_member: Sequence[str], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(E, N, 1)`` and targets ``(E, N, 1)``: member ``e`` learns ``TEXTURE_TARGETS[name_e]`` on ``x``.

    The shape :func:`actlab.ensemble.train_ensemble` takes for per-member data (chapter 5's
    texture experiment trains every target and activation in one ensemble).
    """
    x = np.asarray(x, dtype=float).reshape(-1, 1)
    X = np.broadcast_to(x, (len(target_of_member), *x.shape)).copy()
    y = np.stack([TEXTURE_TARGETS[name](x) for name in target_of_member])
    return X, y
