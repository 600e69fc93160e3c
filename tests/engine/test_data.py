"""The course's data sets (actlab.engine.data): seeded, shaped, split and standardised."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.engine.data import circles, digits_split, noisy_sine, per_member_targets


def test_data_sets_are_seeded_and_shaped() -> None:
    X, y = circles(100, noise=0.0, seed=4)
    X2, y2 = circles(100, noise=0.0, seed=4)
    assert X.shape == (100, 2) and set(np.unique(y)) == {0.0, 1.0}
    radius = np.linalg.norm(X, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.5)
    np.testing.assert_allclose(radius[y == 1], 0.75)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    x, t = noisy_sine(200, seed=0)
    assert x.shape == t.shape == (200, 1)
    assert x.min() == pytest.approx(-np.pi) and x.max() == pytest.approx(np.pi)
    assert np.std(t - np.sin(x)) == pytest.approx(0.1, rel=0.2)


def test_digits_split_is_stratified_standardised_and_fixed() -> None:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    s = digits_split(val_fraction=0.25, seed=0)
    assert s.X_train.shape[1] == s.X_val.shape[1] == 64
    assert len(s.y_train) + len(s.y_val) == len(y) == 1797
    # stratified: each class's share differs by at most one example from proportional
    counts_val = np.bincount(s.y_val, minlength=10)
    expected = np.bincount(y, minlength=10) * len(s.y_val) / len(y)
    assert np.all(np.abs(counts_val - expected) <= 1)
    # standardised with the training statistics only
    nonconst = s.std != 1.0
    np.testing.assert_allclose(s.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.X_train.std(0)[nonconst], 1, atol=1e-4)
    raw_val = s.X_val * s.std + s.mean
    assert np.allclose(raw_val, np.round(raw_val), atol=1e-3)  # pixel counts 0..16 come back
    assert not np.allclose(s.X_val.mean(0), 0, atol=1e-5)  # val was not standardised on itself
    again = digits_split(val_fraction=0.25, seed=0)
    assert np.array_equal(again.X_val, s.X_val) and np.array_equal(again.y_train, s.y_train)


def test_per_member_targets() -> None:
    x = np.linspace(-1, 1, 9)
    X, y = per_member_targets(["|x|", "step", "x³"], x)
    assert X.shape == y.shape == (3, 9, 1)
    np.testing.assert_allclose(y[0, :, 0], np.abs(x))
    np.testing.assert_allclose(y[1, :, 0], (x > 0).astype(float))
    np.testing.assert_allclose(y[2, :, 0], x**3)
    np.testing.assert_array_equal(X[2, :, 0], x)
