"""Chapter 1's library: collapse, affinity test, rank, and the model/data builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actlab.chapters.ch01_linear_collapse import (
    collapse,
    collapse_module,
    collapsed_rank,
    is_affine,
)
from actlab.engine.data import circles, noisy_sine
from actlab.engine.device import get_device, set_seed
from actlab.engine.models import activation_module, hidden_outputs, mlp


def random_layers(
    widths: list[int], rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(widths, widths[1:])]


def apply(layers, x):
    for W, b in layers:
        x = W @ x + b
    return x


def test_collapse_equals_layer_by_layer() -> None:
    rng = np.random.default_rng(0)
    layers = random_layers([3, 5, 4, 2], rng)
    W, b = collapse(layers)
    for x in rng.normal(size=(10, 3)):
        np.testing.assert_allclose(W @ x + b, apply(layers, x), rtol=1e-12, atol=1e-12)


def test_collapse_rejects_bad_chains() -> None:
    with pytest.raises(ValueError):
        collapse([])
    with pytest.raises(ValueError, match="chain"):
        collapse([(np.ones((3, 2)), np.zeros(3)), (np.ones((2, 4)), np.zeros(2))])


def test_collapse_module_matches_the_stack_in_float32() -> None:
    set_seed(1)
    net = mlp(4, 16, 5, 3, activation="none")
    one = collapse_module(net)
    x = torch.randn(256, 4)
    diff = (net(x) - one(x)).abs().max().item()
    assert diff < 1e-5


def test_collapse_module_refuses_a_nonlinear_network() -> None:
    with pytest.raises(ValueError, match="not affine"):
        collapse_module(mlp(2, 4, 2, 1, activation="relu"))


def test_rank_is_capped_by_the_bottleneck() -> None:
    rng = np.random.default_rng(2)
    assert collapsed_rank(random_layers([6, 8, 2, 8], rng)) == 2
    assert collapsed_rank(random_layers([6, 8, 8], rng)) == 6


@pytest.mark.parametrize("act,expected", [("none", True), ("relu", False), ("tanh", False)])
def test_is_affine(act: str, expected: bool) -> None:
    set_seed(3)
    net = mlp(3, 8, 3, 2, activation=act).double()

    def f(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(x)).numpy()

    assert is_affine(f, 3) is expected


def test_hidden_outputs_lists_each_layer() -> None:
    net = mlp(2, 5, 3, 1, activation="tanh")
    outs = hidden_outputs(net, torch.zeros(7, 2))
    assert [o.shape for o in outs] == [(7, 2), (7, 5), (7, 5), (7, 5)]


def test_unknown_activation_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="relu"):
        activation_module("nope")


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


def test_device_choice_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTLAB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert isinstance(get_device(), torch.device)
    assert isinstance(nn.Linear(1, 1).to(get_device()), nn.Linear)


def test_cpu_threads_is_scoped() -> None:
    from actlab.engine.device import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cpu_threads(1):
        raise RuntimeError("restored even when the block fails")
    assert torch.get_num_threads() == before
