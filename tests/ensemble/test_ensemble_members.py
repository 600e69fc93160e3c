"""Members: what distinguishes them, and the plain network each one equals."""

from __future__ import annotations

import pytest
import torch
from ensemble_helpers import DEPTH, WIDTH

from actlab.ensemble import EnsembleMLP, Member, build_member, members_grid


def test_bias_fills_every_hidden_layer_but_not_the_output() -> None:
    net = build_member(Member(seed=4, bias=-5.0), 2, WIDTH, DEPTH, 1)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for layer in linears[:-1]:
        assert torch.all(layer.bias == -5.0)
    assert not torch.all(linears[-1].bias == -5.0)
    plain = build_member(Member(seed=4), 2, WIDTH, DEPTH, 1)
    for a, b in zip(linears, [m for m in plain if isinstance(m, torch.nn.Linear)], strict=True):
        torch.testing.assert_close(a.weight, b.weight)  # same weights, only biases differ


def test_layer_norm_sits_before_each_activation() -> None:
    net = build_member(Member(seed=0, norm="layer"), 2, WIDTH, DEPTH, 1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LayerNorm", "ReLU"] * DEPTH + ["Linear"]
    with pytest.raises(ValueError, match="unknown norm"):
        EnsembleMLP([Member(0, norm="batch")], 2, 2, 1, 1)


def test_members_grid_covers_biases_and_norms() -> None:
    grid = members_grid(range(2), ["relu"], biases=[None, 0.1], norms=["none", "layer"])
    assert len(grid) == 8
    assert {(m.bias, m.norm) for m in grid} == {
        (b, n) for b in (None, 0.1) for n in ("none", "layer")
    }
