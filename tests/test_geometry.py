"""Chapter 1's geometry helpers: probabilities, accuracy, training, grids."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from actlab.chapters.ch01_linear_collapse import (  # noqa: E402
    accuracy,
    grid_lines,
    map_through,
    plot_boundary,
    plot_grid,
    positive_probability,
    train_classifier,
)
from actlab.engine.data import circles  # noqa: E402
from actlab.engine.device import set_seed  # noqa: E402
from actlab.engine.models import mlp  # noqa: E402


def fixed_linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_one_logit_and_two_logits_give_the_same_probability() -> None:
    X = np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 1.0]])
    one = fixed_linear([[1.0, -0.5]], [0.2])
    two = fixed_linear([[0.0, 0.0], [1.0, -0.5]], [0.0, 0.2])  # softmax of (0, s) = sigmoid(s)
    s = X @ np.array([1.0, -0.5]) + 0.2
    np.testing.assert_allclose(positive_probability(one, X), 1 / (1 + np.exp(-s)), rtol=1e-6)
    np.testing.assert_allclose(positive_probability(two, X), 1 / (1 + np.exp(-s)), rtol=1e-6)
    assert accuracy(one, X, (s > 0).astype(float)) == 1.0
    assert accuracy(one, X, (s <= 0).astype(float)) == 0.0
    with pytest.raises(ValueError, match="1 or 2 outputs"):
        positive_probability(fixed_linear([[1.0, 0], [0, 1.0], [1.0, 1.0]], [0, 0, 0]), X)


def test_training_a_relu_net_separates_the_rings_and_a_linear_one_cannot() -> None:
    X, y = circles(200, noise=0.05, seed=1)
    set_seed(0)
    relu = train_classifier(mlp(2, 16, 2, 1, "relu"), X, y, num_epochs=300, lr=0.02)
    set_seed(0)
    linear = train_classifier(mlp(2, 16, 2, 1, "none"), X, y, num_epochs=300, lr=0.02)
    assert relu["losses"][-1] < relu["losses"][0] / 5
    assert relu["accuracy"] > 0.95
    assert linear["accuracy"] < 0.7


def test_grid_lines_cover_the_square() -> None:
    lines = grid_lines(lim=2.0, n_lines=5, n_points=11)
    assert len(lines) == 10 and all(line.shape == (11, 2) for line in lines)
    pts = np.concatenate(lines)
    assert pts.min() == -2.0 and pts.max() == 2.0


def test_map_through_follows_the_layers() -> None:
    set_seed(2)
    net = mlp(2, 2, 2, 1, "relu")
    pts = np.random.default_rng(0).normal(size=(7, 2))
    np.testing.assert_array_equal(map_through(net, pts, 0), pts.astype(np.float32))
    after_one = map_through(net, pts, 1)
    with torch.no_grad():
        expected = torch.relu(net[0](torch.as_tensor(pts, dtype=torch.float32))).numpy()
    np.testing.assert_allclose(after_one, expected)
    assert (after_one >= 0).all()


def test_plots_draw_and_reject_layers_that_are_not_2d() -> None:
    X, y = circles(50, seed=0)
    fig, (a, b) = plt.subplots(1, 2)
    plot_boundary(a, mlp(2, 4, 1, 1, "tanh"), X, y)
    assert a.collections, "the boundary plot drew nothing"
    plot_grid(b, mlp(2, 2, 1, 1, "tanh"), 1, grid_lines(n_lines=3))
    assert len(b.lines) == 6
    with pytest.raises(ValueError, match="a grid needs 2"):
        plot_grid(b, mlp(2, 3, 1, 1, "tanh"), 1, grid_lines(n_lines=3))
    plt.close(fig)
