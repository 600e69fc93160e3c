"""Models and initialisation (actlab.engine.models): activation modules from the registry,
the course's MLP, its hidden outputs and the initialisation schemes."""

from __future__ import annotations

import pytest
import torch

from actlab.engine import activations as A
from actlab.engine.models import activation_module, hidden_outputs, init_mlp_, mlp


def test_activation_module_comes_from_the_registry(act: A.Activation) -> None:
    module = activation_module(act.name)
    z = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(module(z), act.torch_fn(z))
    assert activation_module(act.name) is not module  # a fresh module each call


def test_activation_module_identity_and_unknown() -> None:
    z = torch.randn(7)
    assert torch.equal(activation_module("none")(z), z)
    assert torch.equal(activation_module("linear")(z), z)
    with pytest.raises(ValueError, match="none"):
        activation_module("swishy")


def test_hidden_outputs_lists_each_layer() -> None:
    net = mlp(2, 5, 3, 1, activation="tanh")
    outs = hidden_outputs(net, torch.zeros(7, 2))
    assert [o.shape for o in outs] == [(7, 2), (7, 5), (7, 5), (7, 5)]


def test_unknown_activation_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="relu"):
        activation_module("nope")


@pytest.mark.parametrize(
    "scheme, variance", [("xavier", 2 / (400 + 300)), ("he", 2 / 400), ("normal:0.1", 0.01)]
)
def test_init_schemes_have_their_variance(scheme: str, variance: float) -> None:
    torch.manual_seed(0)
    model = init_mlp_(mlp(400, 300, 1, 300, activation="relu"), scheme)
    w = model[2].weight.detach()
    first = model[0].weight.detach()
    assert first.var().item() == pytest.approx(variance, rel=0.05)
    assert model[0].bias.abs().max().item() == 0.0
    assert w.shape == (300, 300)
    with pytest.raises(ValueError, match="unknown init"):
        init_mlp_(mlp(2, 2, 1, 1), "orthogonal")


def test_default_init_is_untouched() -> None:
    torch.manual_seed(1)
    a = mlp(4, 4, 1, 1)
    torch.manual_seed(1)
    b = init_mlp_(mlp(4, 4, 1, 1), "default")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
