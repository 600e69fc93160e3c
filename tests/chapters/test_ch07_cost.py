"""Chapter 7's cost measurements: the MLP block's timing table and time to a target loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actlab.chapters.ch07_scale.cost import (
    COST_ACTIVATIONS,
    time_mlp_block,
    time_to_target,
    timing_line,
)


def test_time_mlp_block_on_tiny_shapes():
    table = time_mlp_block(tokens=16, width=32, expansion=4, repeats=3, threads=1)
    assert table.attrs["names"] == list(COST_ACTIVATIONS)
    assert list(table.index) == ["GELU", "GELU (tanh)", "SiLU", "ReLU"]
    for column in ("matrix products s", "activation s", "block s"):
        assert (table[column] > 0).all(), column
    assert ((table["activation share"] > 0) & (table["activation share"] < 1)).all()
    assert table.attrs["hidden"] == 128
    assert table.attrs["device"] == "cpu (1 thread)"
    line = timing_line(table)
    assert line.startswith("timed on cpu (1 thread): 16 tokens × 32 → 128 hidden units")
    assert line.endswith("float32, median of 3")


def test_time_to_target_by_hand():
    # two members: one reaches 0.5 at its third recorded step, one never does
    losses = np.array([[2.0, 1.0], [1.0, 0.9], [0.5, 0.8], [0.4, np.nan]])
    seconds = time_to_target(losses, 0.5, 0.1)
    assert seconds[0] == pytest.approx(0.3)
    assert seconds[1] == math.inf
    # per-member step times and the step counts of a sparser record
    seconds = time_to_target(losses, 0.9, np.array([0.1, 0.2]), steps=np.array([0, 10, 20, 30]))
    np.testing.assert_allclose(seconds, [0.1 * 20, 0.2 * 10])
    assert time_to_target(np.array([3.0, 2.0, 1.0]), 2.0, 2.0) == 4.0
    assert time_to_target(np.array([3.0, np.inf]), 0.0, 1.0) == math.inf
    with pytest.raises(ValueError, match="steps"):
        time_to_target(losses, 1.0, 1.0, steps=np.arange(3))
