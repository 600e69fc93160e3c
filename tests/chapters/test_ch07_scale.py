"""Chapter 7's depth, initialisation, precision-training and gated experiments (small shapes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actlab.chapters.ch07_scale.depth import (
    BLOCKS,
    depth_explorer,
    first_last_ratio,
    gradient_table,
    healthy,
    summary_text,
    survival,
    train_formats,
    trainability,
    variance_table,
    within,
)
from actlab.chapters.ch07_scale.gated import GATES, gated_comparison, matched_hidden
from actlab.engine.data import digits_split

ACTS = ["relu", "sigmoid"]


@pytest.fixture(scope="module")
def data():
    split = digits_split()
    return split, split.X_train[:96], split.y_train[:96]


def test_summary_text_says_what_stops_a_mean() -> None:
    assert summary_text(np.array([1.0, 4.0])) == "2 (1 to 4)"
    assert summary_text(np.zeros(3)).startswith("0 (it underflows")
    assert summary_text(np.array([1.0, np.inf, np.nan])).startswith("not finite for 2 of 3 seeds")
    assert summary_text(np.array([1.0, 0.0])).startswith("0 for 1 of 2 seeds")


def test_within_is_a_factor_either_way_on_every_seed() -> None:
    assert within(np.array([0.2, 5.0]))
    assert not within(np.array([0.2, 11.0]))
    assert not within(np.array([0.09, 1.0]))
    assert not within(np.array([1.0, np.nan]))


def test_healthy_needs_both_the_ratio_and_what_is_left_at_depth() -> None:
    flat = np.ones((2, 8))
    table = {
        (2, "plain", "a"): np.ones((2, 2)),
        (8, "plain", "a"): flat,  # same level, flat: healthy
        (8, "plain", "b"): flat * 1e-6,  # flat but the whole gradient shrank
        (2, "plain", "b"): np.ones((2, 2)),
        (8, "plain", "c"): np.tile(np.logspace(-3, 0, 8), (2, 1)),  # fades on its way down
        (2, "plain", "c"): np.full((2, 2), 1e-3),
    }
    assert healthy(table, 8, "plain", "a", base=2)
    assert not healthy(table, 8, "plain", "b", base=2)
    np.testing.assert_allclose(survival(table, 8, "plain", "b", 2), 1e-6)
    assert not healthy(table, 8, "plain", "c", base=2)
    table[8, "plain", "d"], table[2, "plain", "d"] = np.zeros((2, 8)), np.ones((2, 2))
    assert summary_text(survival(table, 8, "plain", "d", 2)).startswith("0 (it underflows")


def test_first_last_ratio_is_block_one_over_the_last_and_undefined_on_zero() -> None:
    r = first_last_ratio(np.array([[2.0, 1.0, 4.0], [1.0, 1.0, 0.0]]))
    assert r[0] == pytest.approx(0.5)
    assert np.isnan(r[1])


def test_gradient_table_has_one_row_per_seed_and_one_column_per_block(data) -> None:
    _, X, y = data
    table = gradient_table(X, y, [2, 3], list(BLOCKS), ACTS, range(2), width=4, device="cpu")
    assert set(table) == {(d, b, a) for d in (2, 3) for b in BLOCKS for a in ACTS}
    for (depth, _, _), rms in table.items():
        assert rms.shape == (2, depth)
        assert np.all(np.isfinite(rms)) and np.all(rms > 0)
    # the two activations are different networks, the seeds too
    assert not np.allclose(table[3, "plain", "relu"], table[3, "plain", "sigmoid"])
    assert not np.allclose(table[3, "plain", "relu"][0], table[3, "plain", "relu"][1])


def test_explorer_has_a_frame_per_depth_and_stack(data) -> None:
    _, X, y = data
    table = gradient_table(X, y, [2, 3], ["plain", "pre-ln"], ACTS, range(2), width=4, device="cpu")
    explorer = depth_explorer(table, [2, 3], ["plain", "pre-ln"], ACTS)
    assert explorer.n_frames == 4
    assert "block 1's gradient per weight" in explorer.frame_finding((1, 1)).lower()


def test_zero_branches_keep_the_stream_and_unscaled_ones_grow_it(data) -> None:
    _, X, _ = data
    var = variance_table(X, 6, ["relu"], ["default", "zero"], range(2), width=8)
    zero = var["zero", "relu"]
    np.testing.assert_allclose(zero, zero[:, :1] * np.ones_like(zero), rtol=1e-5)
    grown = var["default", "relu"]
    assert np.all(grown[:, -1] > 2 * grown[:, 0])


def test_trainability_lowers_the_loss_and_keys_every_setting(data) -> None:
    _, X, y = data
    settings = [(2, "plain"), (2, "pre-ln")]
    short = trainability(X, y, settings, ACTS, range(2), width=8, num_epochs=1, batch_size=32,
                         device="cpu")  # fmt: skip
    longer = trainability(X, y, settings, ACTS, range(2), width=8, num_epochs=8, batch_size=32,
                          device="cpu")  # fmt: skip
    assert short.networks == 2 * len(ACTS) * 2
    assert set(longer.losses) == {(d, b, a) for d, b in settings for a in ACTS}
    assert longer.losses[2, "pre-ln", "relu"].mean() < short.losses[2, "pre-ln", "relu"].mean()


def test_train_formats_trains_the_same_members_in_each_format(data) -> None:
    _, X, y = data
    run = train_formats(X, y, "pre-ln", 2, ACTS, range(2), width=8, num_epochs=2, batch_size=32,
                        formats={"float32": None, "bfloat16": torch.bfloat16}, device="cpu")  # fmt: skip
    f32, b16 = run.losses["float32", "relu"], run.losses["bfloat16", "relu"]
    assert f32.shape == b16.shape == (2, 2)
    # the same start: the first epoch's losses agree to bfloat16's precision, yet differ
    np.testing.assert_allclose(f32[0], b16[0], rtol=0.05)
    assert not np.array_equal(f32, b16)
    assert run.nonfinite["bfloat16", "relu"].tolist() == [0, 0]


def test_matched_hidden_matches_the_weights() -> None:
    assert matched_hidden(48) == 32
    assert matched_hidden(3) == 2
    for m in (6, 48, 96, 300):
        d = 16
        assert abs(3 * d * matched_hidden(m) - 2 * d * m) <= 3 * d
    with pytest.raises(ValueError):
        matched_hidden(1)


def test_gated_comparison_matches_parameters_and_reads_each_unit(data) -> None:
    split, _, _ = data
    run = gated_comparison(split, range(2), width=8, hidden=6, depth=2, num_epochs=2,
                           batch_size=64, device="cpu")  # fmt: skip
    assert run.block_weights["relu"] == run.block_weights["swiglu"] == 2 * 8 * 6
    # whole networks differ only by biases and norms: within a few per cent
    assert abs(run.params["swiglu"] - run.params["relu"]) / run.params["relu"] < 0.1
    for unit in ["relu", "gelu", *GATES]:
        acc = run.accuracy(unit)
        assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 1))
        assert run.losses(unit).shape == (2, 2)
