"""The one rule that decides ties, bests and 'fastest' over seeds."""

import numpy as np
import pytest

from actlab.engine.stats import geometric_summary, separated, standard_error, tied_with_best


def test_standard_error_ignores_non_finite_runs() -> None:
    mean, se, n = standard_error([1.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 2)
    assert np.isclose(se, np.std([1.0, 3.0], ddof=1) / np.sqrt(2))


def test_a_gap_inside_the_noise_is_not_separated() -> None:
    a = [0.937, 0.925, 0.948, 0.931, 0.944]
    b = [0.941, 0.930, 0.951, 0.935, 0.949]
    assert not separated(a, b)
    far = [x + 0.1 for x in a]
    assert separated(a, far) and separated(far, a)


def test_ties_include_every_row_inside_the_rule_and_exclude_the_rest() -> None:
    rng = np.random.default_rng(0)
    runs = {
        "relu": 0.937 + 0.01 * rng.standard_normal(5),
        "leaky": 0.941 + 0.01 * rng.standard_normal(5),
        "sigmoid": 0.60 + 0.01 * rng.standard_normal(5),
        "gone": [np.nan] * 5,
    }
    tied = tied_with_best(runs)
    assert set(tied) == {"relu", "leaky"}
    assert tied[0] == max(["relu", "leaky"], key=lambda k: np.mean(runs[k]))
    assert tied_with_best({"fast": [1.0, 1.1, 0.9], "slow": [5.0, 5.1, 4.9]}, False) == ["fast"]
    assert tied_with_best({"gone": [np.nan]}) == []


def test_geometric_summary_is_the_mean_on_a_log_axis_with_the_range() -> None:
    s = geometric_summary([1e-9, 1e-7, 1e-8])
    assert np.isclose(s.mean, 1e-8) and (s.low, s.high) == (1e-9, 1e-7)
    # unlike the arithmetic mean, not set by the largest value alone
    assert s.mean < np.mean([1e-9, 1e-7, 1e-8]) / 3
    # the ratio of two geometric means is the geometric mean of the ratios
    a, b = np.array([2e-3, 5e-6, 1e-4]), np.array([0.5, 0.1, 0.3])
    assert np.isclose(geometric_summary(a).mean / geometric_summary(b).mean,
                      geometric_summary(a / b).mean)  # fmt: skip
    table = np.array([[1.0, 1e-6], [4.0, 1e-4]])
    by_column = geometric_summary(table, axis=0)
    np.testing.assert_allclose(by_column.mean, [2.0, 1e-5])
    np.testing.assert_array_equal(by_column.low, [1.0, 1e-6])
    np.testing.assert_array_equal(by_column.high, [4.0, 1e-4])
    for bad in ([1.0, 0.0], [1.0, -2.0], []):
        with pytest.raises(ValueError):
            geometric_summary(bad)
