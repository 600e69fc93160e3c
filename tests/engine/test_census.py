"""The activation census: activation modules by hook, functional calls by a function mode,
softmax apart, each application counted once, on any device including meta."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.engine.census import SOFTMAX, activation_kind, census, path_pattern


class TanhInsideActivation(nn.Module):
    """A custom activation class (its name ends in "Activation") that calls torch.tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class OuterActivation(nn.Module):
    """An activation module holding another: the inner one is not counted again."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 2


class Block(nn.Module):
    """Modules and functional calls side by side: 4 -> 6 features."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(4, 6)
        self.act = nn.GELU(approximate="tanh")
        self.mish = TanhInsideActivation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mish(self.act(self.up(x)))
        weights = F.softmax(h, dim=-1)  # softmax: kept apart
        return weights * h.relu() + torch.sigmoid(h) + F.gelu(h) + h.tanh() + F.silu(h)


def by_kind(result) -> dict[str, tuple[int, int]]:
    return {k: (t.calls, t.elements) for k, t in result.summary().items()}


def test_modules_and_functional_calls_are_recorded_by_path_and_kind() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Sequential(Block()))
    x = torch.randn(3, 4)
    result = census(net, x)
    kinds = by_kind(result)
    n = 3 * 6  # every activation of the block acts on a 3 x 6 tensor
    assert kinds["ReLU"] == (1 + 1, 3 * 4 + n)  # nn.ReLU on 3 x 4, then h.relu()
    assert kinds["GELU (tanh)"] == (1, n)  # exact and tanh forms told apart
    assert kinds["GELU"] == (1, n)
    assert kinds["sigmoid"] == kinds["tanh"] == kinds["SiLU"] == (1, n)
    assert kinds["TanhInsideActivation"] == (1, n)  # its torch.tanh and softplus not counted
    assert kinds[SOFTMAX] == (1, n)
    assert result.elements() == sum(e for k, (c, e) in kinds.items() if k != SOFTMAX)
    where = {(r.path, r.via) for r in result.records}
    # every index is a layer index: net[1] is "*", net[2][0].act is "*.*.act"
    assert ("*", "ReLU") in where and ("*.*.act", "GELU") in where
    assert ("*.*", "Tensor.relu") in where and ("*.*", "F.softmax") in where  # innermost module
    assert ("*.*", "torch.sigmoid") in where and ("*.*", "Tensor.tanh") in where


def test_layer_indices_become_a_pattern_and_calls_add_up() -> None:
    net = nn.Sequential(*[nn.Sequential(nn.Linear(5, 5), nn.SiLU()) for _ in range(12)])
    result = census(net, torch.randn(2, 5))
    assert [(r.path, r.kind, r.calls, r.elements) for r in result.records] == [
        ("*.*", "SiLU", 12, 12 * 2 * 5)
    ]
    assert path_pattern("encoder.layer.11.mlp.act") == "encoder.layer.*.mlp.act"
    assert path_pattern("h.0") == "h.*" and path_pattern("fc1") == "fc1"


def test_an_activation_module_is_counted_once_whatever_it_calls_inside() -> None:
    net = nn.Sequential(nn.Linear(3, 3), OuterActivation())
    result = census(net, torch.randn(4, 3))
    assert [(r.path, r.kind, r.calls, r.elements) for r in result.records] == [
        ("*", "OuterActivation", 1, 12)
    ]


def test_the_kind_rule_for_modules() -> None:
    assert activation_kind(nn.GELU()) == "GELU"
    assert activation_kind(nn.GELU(approximate="tanh")) == "GELU (tanh)"
    assert activation_kind(nn.ReLU6()) == "ReLU6"
    assert activation_kind(nn.Softmax(dim=-1)) == SOFTMAX
    assert activation_kind(nn.SELU()) == "SELU"  # another torch.nn activation: its class name
    assert activation_kind(nn.Linear(2, 2)) is None
    assert activation_kind(nn.MultiheadAttention(4, 2)) is None

    class NewGELUActivation(nn.Module):  # named as transformers names its tanh-form GELU
        pass

    class SquaredReLU(nn.Module):
        pass

    assert activation_kind(NewGELUActivation()) == "GELU (tanh)"
    assert activation_kind(SquaredReLU()) == "SquaredReLU"  # by its name's ending


def test_softmax_in_attention_is_counted_as_batch_heads_queries_keys() -> None:
    q = torch.randn(2, 3, 5, 8)  # batch 2, 3 heads, 5 queries
    k = torch.randn(2, 3, 7, 8)  # 7 keys

    class Attend(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, k)

    assert by_kind(census(Attend(), q, k)) == {SOFTMAX: (1, 2 * 3 * 5 * 7)}
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(3, 6, 8)
    assert by_kind(census(mha, x, x, x)) == {SOFTMAX: (1, 3 * 2 * 6 * 6)}
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    assert by_kind(census(layer, x)) == {SOFTMAX: (1, 3 * 2 * 6 * 6), "ReLU": (1, 3 * 6 * 16)}


def test_on_the_meta_device_nothing_is_computed_and_the_census_is_the_same() -> None:
    def net() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Sequential(Block()))

    torch.manual_seed(0)
    on_cpu = census(net(), torch.randn(3, 4))
    with torch.device("meta"):
        model, x = net(), torch.randn(3, 4)
    assert next(model.parameters()).is_meta
    assert census(model, x) == on_cpu


def test_hooks_are_removed_even_when_the_forward_fails() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    census(net, torch.randn(1, 2))
    assert not net[1]._forward_hooks and not net[1]._forward_pre_hooks
    with pytest.raises(RuntimeError):
        census(net, torch.randn(1, 3))  # a failing forward still removes the hooks
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks
