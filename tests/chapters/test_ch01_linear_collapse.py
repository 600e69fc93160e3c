"""Chapter 1's library: collapse, the affinity test and rank; and the geometry helpers
(probabilities, accuracy, training, decision boundaries, bent grids)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from actlab.chapters.ch01_linear_collapse import (  # noqa: E402
    FrameFinding,
    accuracy,
    best_line,
    collapse,
    collapse_module,
    collapse_summary,
    collapsed_rank,
    depth_activation_explorer,
    frame_sentence,
    grid_lines,
    grid_state,
    image_dimension,
    is_affine,
    map_through,
    plot_boundary,
    plot_grid,
    positive_probability,
    straight_fraction,
    train_classifier,
)
from actlab.engine.data import circles  # noqa: E402
from actlab.engine.device import set_seed  # noqa: E402
from actlab.engine.models import mlp  # noqa: E402


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


def test_explorer_frames_follow_the_figure_rule_and_name_activations_by_label() -> None:
    from actlab.presentation.figures import check_figure

    X, y = circles(60, noise=0.05, seed=0)
    explorer = depth_activation_explorer(
        X, y, depths=(1, 2), activations=("none", "leaky_relu"), num_epochs=5
    )
    fig = explorer.draw(depth=1, activation="leaky_relu")
    check_figure(fig)  # content width, two panels side by side, no text under 10 pt
    plt.close(fig)
    assert explorer.frame_alt((0, 1)).startswith("1 hidden layer with Leaky ReLU: accuracy")
    assert explorer.frame_alt((1, 0)).startswith("2 hidden layers with no activation")


def test_each_explorer_frame_says_what_it_measured_and_the_page_quotes_the_same() -> None:
    X, y = circles(60, noise=0.05, seed=0)
    explorer = depth_activation_explorer(
        X, y, depths=(1, 2), activations=("none", "relu"), num_epochs=5, line_accuracy=0.6
    )
    for key in explorer.keys():
        depth, activation = explorer.params(key).values()
        alt = explorer.frame_alt(key)  # draws the frame, which records its finding
        found = explorer.findings[depth, activation]
        assert alt.startswith(frame_sentence(found))
        assert f"accuracy {found.accuracy_text}" in alt
        assert found.best_line == 0.6 and "0.60" in alt  # the caller's best line, quoted
        plt.close("all")


def finding(depth: int, activation: str, acc: float, dim: int) -> FrameFinding:
    return FrameFinding(depth, activation, acc, dim, best_line=0.69)


def test_a_collapsed_frame_is_called_collapsed_never_bent() -> None:
    collapsed = frame_sentence(finding(4, "relu", 0.5, 0))
    assert "maps every point to one point" in collapsed and "collapsed" in collapsed
    assert "bent" not in collapsed
    assert "bent" in frame_sentence(finding(3, "relu", 1.0, 2))
    not_better = frame_sentence(finding(1, "tanh", 0.6, 2))
    assert "no better than the best straight line (0.69)" in not_better
    assert "bent" not in not_better
    linear = frame_sentence(finding(2, "none", 0.497, 1))
    assert "straight line" in linear and "one straight segment" in linear


def test_the_page_sentence_on_collapsed_frames_quotes_the_frames_own_accuracy() -> None:
    findings = {
        (3, "relu"): finding(3, "relu", 1.0, 2),
        (4, "relu"): finding(4, "relu", 0.4975, 0),
        (5, "relu"): finding(5, "relu", 0.4975, 0),
        (4, "tanh"): finding(4, "tanh", 1.0, 1),
    }
    page = collapse_summary(findings, "relu")
    assert "4 and 5 hidden layers" in page
    for depth in (4, 5):
        frame = frame_sentence(findings[depth, "relu"])
        assert f"accuracy {findings[depth, 'relu'].accuracy_text}" in frame
        assert f"is {findings[depth, 'relu'].accuracy_text}," in page
    assert collapse_summary(findings, "tanh").startswith("None of the explorer's tanh frames")


def test_image_dimension_tells_a_point_a_segment_and_a_region_apart() -> None:
    rng = np.random.default_rng(0)
    assert image_dimension(np.full((20, 2), 3.0)) == 0
    t = rng.normal(size=(20, 1))
    assert image_dimension(np.hstack([t, 2 * t + 1])) == 1
    assert image_dimension(rng.normal(size=(20, 2))) == 2


def relu_net_onto_axis() -> nn.Sequential:
    """Two 2-unit ReLU layers; the second's first unit is off for every input (weights 0,
    bias -1), so layer 2 maps the whole plane onto its second axis: a segment."""
    net = mlp(2, 2, 2, 1, "relu")
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        net[2].bias.copy_(torch.tensor([-1.0, 0.0]))
    return net


def test_a_grid_collapsed_onto_a_segment_is_not_scored_as_straight() -> None:
    net = relu_net_onto_axis()
    lines = grid_lines(lim=2.0, n_lines=5)
    assert grid_state(net, 0, lines) == "100 % of lines straight"
    assert grid_state(net, 2, lines) == "collapsed onto a segment"
    # a line that layer 1 sends to the origin is crushed to a point, not kept straight
    assert straight_fraction(net, 1, [np.stack([np.linspace(-2, -1, 5), np.full(5, -1.0)], 1)]) == 0
    with torch.no_grad():
        net[2].bias.copy_(torch.tensor([-1.0, -100.0]))  # both units off: one point
    assert grid_state(net, 2, lines) == "collapsed to a point"


def exact_best_line(X: np.ndarray, y: np.ndarray) -> float:
    """Best line accuracy by brute force: one direction inside each range of directions that
    keeps the order of the projections, every threshold tried one by one."""
    diffs = [X[i] - X[j] for i in range(len(X)) for j in range(i)]
    critical = sorted({(np.arctan2(d[1], d[0]) + np.pi / 2) % np.pi for d in diffs})
    ends = critical[1:] + [critical[0] + np.pi]
    best = 0.0
    for a, b in zip(critical, ends):
        direction = np.array([np.cos((a + b) / 2), np.sin((a + b) / 2)])
        p = X @ direction
        for t in np.concatenate([[p.min() - 1], np.sort(p) + 1e-12]):
            right = float(np.mean((p > t) == (y == 1)))
            best = max(best, right, 1 - right)
    return best


def test_best_line_separates_two_distant_clouds_perfectly() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(50, 2)) - 10, rng.normal(size=(50, 2)) + 10])
    y = np.repeat([0, 1], 50)
    assert best_line(X, y)[0] == 1.0
    assert best_line(X, 1 - y)[0] == 1.0


@pytest.mark.parametrize("quarter_turns", range(4))
def test_best_line_finds_a_narrow_gap_whichever_way_it_faces(quarter_turns: int) -> None:
    # class 1 at y = -1 and class 0 at y = +1, spread wide along x: only directions within
    # about 0.1 rad of one normal separate them; rotating the set turns that normal around
    x = np.linspace(-10.0, 10.0, 11)
    X = np.concatenate([np.stack([x, np.full_like(x, -1.0)], 1), np.stack([x, np.ones_like(x)], 1)])
    y = np.repeat([1, 0], len(x))
    c, s = np.cos(quarter_turns * np.pi / 2), np.sin(quarter_turns * np.pi / 2)
    rotated = X @ np.array([[c, s], [-s, c]])
    assert best_line(rotated, y, n_angles=360)[0] == 1.0


def test_best_line_on_xor_gets_three_of_four() -> None:
    X = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    assert best_line(X, np.array([1, 1, 0, 0]))[0] == 0.75


def test_best_line_cannot_split_points_that_coincide() -> None:
    # two points at the same place with different labels: no line puts them on different sides
    X = np.array([[0.0, 0.0], [0.0, 0.0]])
    assert best_line(X, np.array([0, 1]))[0] == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_best_line_matches_brute_force_on_small_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(9, 2))
    y = rng.integers(0, 2, size=9)
    exact = exact_best_line(X, y)
    assert best_line(X, y, n_angles=36)[0] <= exact + 1e-12
    assert best_line(X, y, n_angles=100_000)[0] == pytest.approx(exact)


def test_best_line_on_the_chapter_rings_beats_chance_by_far() -> None:
    X, y = circles(n=400, noise=0.1, seed=0)
    best = best_line(X, y)[0]
    assert 0.6 < best < 0.8


def test_best_line_returns_a_line_that_scores_its_accuracy() -> None:
    X, y = circles(n=400, noise=0.1, seed=0)
    acc, w, t = best_line(X, y)
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert float(np.mean((X @ w > t) == (y == 1))) == acc
