"""The one rule that decides ties, bests and 'fastest' over seeds."""

import numpy as np

from actlab.engine.stats import separated, standard_error, tied_with_best


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
