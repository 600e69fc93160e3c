"""Hinge points, exact line partitions and region counts of piecewise-linear networks (chapter 5)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from actlab.chapters import ch05_hinges as R
from actlab.ensemble import Member, build_member, members_grid, train_ensemble


def one_layer(w, b, v, c=0.0, act: nn.Module | None = None) -> nn.Sequential:
    """``x -> sum_i v_i act(w_i x + b_i) + c`` as a float64 nn.Sequential (one input, one output)."""
    w, b, v = (torch.as_tensor(np.asarray(a, dtype=float)) for a in (w, b, v))
    net = nn.Sequential(nn.Linear(1, len(w)), act or nn.ReLU(), nn.Linear(len(w), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(w[:, None])
        net[0].bias.copy_(b)
        net[2].weight.copy_(v[None, :])
        net[2].bias.fill_(c)
    return net


def plane_layer(W, b) -> nn.Sequential:
    """One hidden ReLU layer on the plane with the given lines (output weights all 1)."""
    W = torch.as_tensor(np.asarray(W, dtype=float))
    net = nn.Sequential(nn.Linear(2, len(W)), nn.ReLU(), nn.Linear(len(W), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(W)
        net[0].bias.copy_(torch.as_tensor(np.asarray(b, dtype=float)))
        net[2].weight.fill_(1.0)
    return net


def random_net(seed: int, in_dim: int, widths: list[int], leaky: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    prev = in_dim
    for w in widths:
        layers += [nn.Linear(prev, w), nn.LeakyReLU(0.1) if leaky else nn.ReLU()]
        prev = w
    layers.append(nn.Linear(prev, 2))
    return nn.Sequential(*layers).double()


def torch_out(net: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(np.asarray(X, dtype=float))).numpy()


def torch_patterns(net: nn.Sequential, X: np.ndarray) -> np.ndarray:
    """Active units from the pre-activations that PyTorch computes (Linear outputs before an activation)."""
    pats, h = [], torch.as_tensor(np.asarray(X, dtype=float))
    mods = list(net)
    with torch.no_grad():
        for k, m in enumerate(mods):
            h = m(h)
            if isinstance(m, nn.Linear) and k + 1 < len(mods):
                pats.append((h > 0).numpy())
    return np.concatenate(pats, axis=1)


def torch_pre_activations(net: nn.Sequential, X: np.ndarray) -> list[np.ndarray]:
    """The input of each hidden activation, in float64 (one array ``(N, width)`` per layer)."""
    out, h = [], torch.as_tensor(np.asarray(X, dtype=float))
    mods = list(net.double())
    with torch.no_grad():
        for k, m in enumerate(mods):
            h = m(h)
            if isinstance(m, nn.Linear) and k + 1 < len(mods):
                out.append(h.numpy().copy())
    return out


# --------------------------------------------------------------------------- hinges, 1-D formulas


def test_worked_example_hinges_and_interval_formulas() -> None:
    # ReLU(x + 1) - 2 ReLU(x - 1): hinges at -1 and 1.
    w, b, v = [1.0, 1.0], [1.0, -1.0], [1.0, -2.0]
    assert R.hinge_points(w, b).tolist() == [-1.0, 1.0]
    f = R.interval_formulas(w, b, v)
    assert f.edges.tolist() == [-np.inf, -1.0, 1.0, np.inf]
    assert f.slopes.tolist() == [0.0, 1.0, -1.0]
    assert f.intercepts.tolist() == [0.0, 1.0, 3.0]
    x = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(f(x), torch_out(one_layer(w, b, v), x[:, None])[:, 0], atol=1e-12)
    assert "-x + 3" in f.latex() and "x + 1" in f.latex()


def test_hinges_skip_units_with_zero_weight_and_merge_coincident_ones() -> None:
    # Unit 2 has w = 0 (a constant); units 1 and 3 both switch at x = 0.5.
    w, b = [2.0, 0.0, -4.0, 1.0], [-1.0, 3.0, 2.0, 2.0]
    np.testing.assert_allclose(R.hinge_points(w, b), [-2.0, 0.5])
    f = R.interval_formulas(w, b, v=[1.0, 1.0, 1.0, 1.0], c=0.5)
    assert f.n_intervals == 3
    x = np.linspace(-5, 5, 401)
    net = one_layer(w, b, [1.0, 1.0, 1.0, 1.0], c=0.5)
    np.testing.assert_allclose(f(x), torch_out(net, x[:, None])[:, 0], atol=1e-12)
    # The constant unit is active (b = 3 > 0): it adds 3 to every intercept.
    assert R.interval_formulas([0.0], [3.0], [1.0]).intercepts.tolist() == [3.0]
    assert R.interval_formulas([0.0], [-3.0], [1.0]).intercepts.tolist() == [0.0]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3])
def test_interval_formulas_match_pytorch_on_random_units(seed: int, slope: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    w, b, v = rng.normal(size=(3, n))
    c = float(rng.normal())
    f = R.interval_formulas(w, b, v, c, negative_slope=slope)
    assert f.n_intervals == n + 1  # distinct hinges almost surely: n + 1 pieces
    act = nn.LeakyReLU(slope) if slope else nn.ReLU()
    x = rng.uniform(-10, 10, 500)
    np.testing.assert_allclose(f(x), torch_out(one_layer(w, b, v, c, act), x[:, None])[:, 0],
                               rtol=1e-10, atol=1e-10)  # fmt: skip


def test_at_most_n_plus_one_pieces() -> None:
    rng = np.random.default_rng(3)
    for n in range(1, 20):
        w, b, v = rng.normal(size=(3, n))
        w[rng.random(n) < 0.2] = 0.0  # some units without a hinge
        f = R.interval_formulas(w, b, v)
        assert f.n_intervals <= n + 1
        assert f.n_intervals == len(R.hinge_points(w, b)) + 1


# --------------------------------------------------------------------------- exact line partition


def test_line_partition_of_one_layer_equals_the_interval_formulas() -> None:
    w, b, v = [1.0, 1.0, -0.5], [1.0, -1.0, 1.0], [1.0, -2.0, 3.0]
    lp = R.line_partition(one_layer(w, b, v, c=0.25), -5.0, 5.0)
    f = R.interval_formulas(w, b, v, c=0.25)
    np.testing.assert_allclose(lp.breakpoints, [-1.0, 1.0, 2.0])
    np.testing.assert_allclose(lp.slopes[:, 0], f.slopes)
    np.testing.assert_allclose(lp.intercepts[:, 0], f.intercepts)
    assert lp.patterns.tolist() == [
        [False, False, True], [True, False, True], [True, True, True], [True, True, False],
    ]  # fmt: skip
    assert lp.n_regions == 4 and lp.layer_sizes == (3,)


def test_hinges_outside_the_segment_do_not_count() -> None:
    lp = R.line_partition(one_layer([1.0, 1.0], [1.0, -1.0], [1.0, -2.0]), 0.0, 3.0)
    assert lp.breakpoints.tolist() == [1.0]
    assert lp.edges.tolist() == [0.0, 1.0, 3.0]


def test_coincident_hinges_give_one_breakpoint() -> None:
    # Three units switching at x = 0.5, from different (w, b), one of them pointing the other way.
    net = one_layer([2.0, 1.0, -3.0], [-1.0, -0.5, 1.5], [1.0, 1.0, 1.0])
    lp = R.line_partition(net, -2.0, 2.0)
    assert lp.n_regions == 2
    np.testing.assert_allclose(lp.breakpoints, [0.5])
    assert lp.patterns.tolist() == [[False, False, True], [True, True, False]]


def test_a_unit_that_switches_without_changing_the_output() -> None:
    # The second unit's output weight is 0: it splits the line into two regions, one affine piece.
    lp = R.line_partition(one_layer([1.0, 1.0], [0.0, -1.0], [1.0, 0.0]), 0.5, 3.0)
    assert lp.n_regions == 2
    assert lp.n_affine_pieces() == 1


def test_a_deep_hand_made_network() -> None:
    # Layer 1: h = (ReLU(x), ReLU(-x)), i.e. |x| = h1 + h2. Layer 2: ReLU(h1 + h2 - 1) = ReLU(|x| - 1):
    # hinges at x = 0 (layer 1) and at x = -1 and x = 1 (layer 2): 4 regions.
    net = nn.Sequential(
        nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1)
    ).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 1.0]]))
        net[2].bias.fill_(-1.0)
        net[4].weight.fill_(1.0)
        net[4].bias.zero_()
    lp = R.line_partition(net, -3.0, 3.0)
    np.testing.assert_allclose(lp.breakpoints, [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(lp.slopes[:, 0], [-1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(lp.intercepts[:, 0], [-1.0, 0.0, 0.0, -1.0])
    # The two middle regions have different patterns but the same (zero) map.
    assert lp.n_affine_pieces() == 3
    assert lp.patterns.tolist() == [[False, True, True], [False, True, False],
                                    [True, False, False], [True, False, True]]  # fmt: skip


def test_two_affine_layers_in_a_row_are_composed() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 3), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    lp = R.line_partition(net, -4.0, 4.0)
    x = np.linspace(-4, 4, 1001)
    np.testing.assert_allclose(lp(x), torch_out(net, x[:, None]), atol=1e-12)
    assert lp.layer_sizes == (4,)


def test_non_piecewise_linear_modules_are_refused() -> None:
    with pytest.raises(ValueError, match="Tanh"):
        R.line_partition(nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)), -1, 1)
    with pytest.raises(ValueError, match="LayerNorm"):
        R.activation_patterns(
            nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.ReLU(), nn.Linear(3, 1)),
            np.zeros((1, 2)),
        )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("leaky", [False, True])
def test_exact_line_partition_agrees_with_fine_sampling(seed: int, leaky: bool) -> None:
    """Random deep nets: sampled patterns and outputs match the exact pieces; sampling never finds more."""
    rng = np.random.default_rng(seed)
    in_dim = int(rng.integers(1, 4))
    widths = [int(w) for w in rng.integers(3, 12, size=int(rng.integers(1, 5)))]
    net = random_net(seed, in_dim, widths, leaky)
    origin, direction = rng.normal(size=in_dim), rng.normal(size=in_dim)
    lp = R.line_partition(net, -3.0, 3.0, origin, direction)

    t = np.linspace(-3.0, 3.0, 60_001)
    X = origin + t[:, None] * direction
    # Outputs: the pieces' affine maps, along t and in input space, equal PyTorch's forward pass.
    np.testing.assert_allclose(lp(t), torch_out(net, X), rtol=1e-9, atol=1e-9)
    k = lp.piece_of(t)
    via_jacobian = np.einsum("poi,pi->po", lp.jacobians[k], X) + lp.offsets[k]
    np.testing.assert_allclose(via_jacobian, torch_out(net, X), rtol=1e-9, atol=1e-9)
    # Patterns: every sample away from a breakpoint has its piece's pattern.
    sampled = torch_patterns(net, X)
    gap = np.min(np.abs(t[:, None] - lp.breakpoints[None, :]), axis=1, initial=np.inf)
    far = gap > 1e-7
    np.testing.assert_array_equal(sampled[far], lp.patterns[k[far]])
    # Counts: distinct sampled patterns never exceed the exact count; the fine grid finds them all
    # except pieces shorter than its spacing.
    _, n_sampled = R.pattern_ids(sampled)
    assert n_sampled <= lp.n_regions
    n_long = int((np.diff(lp.edges) > 2 * (t[1] - t[0])).sum())
    assert n_sampled >= n_long
    # One pattern per region along a line (regions are convex): patterns of pieces are distinct.
    assert R.pattern_ids(lp.patterns)[1] == lp.n_regions


def test_line_partition_of_ensemble_members() -> None:
    """Members of a trained ensemble work through member_module, and equal build_member at init."""
    X = np.linspace(-2, 2, 64)[:, None]
    members = members_grid(range(2), ["relu", "leaky_relu"])
    counts = {}

    def probe(model, X_t):
        return [R.count_line_regions(model.member_module(i), -2.0, 2.0) for i in range(model.size)]

    res = train_ensemble(members, X, np.abs(X), depth=3, width=8, num_epochs=5, progress=False,
                         probe=probe, probe_epochs=[0, 5], dtype=torch.float64)  # fmt: skip
    for i, m in enumerate(members):
        net = res.model.member_module(i)
        lp = R.line_partition(net, -2.0, 2.0)
        xs = np.linspace(-2, 2, 777)
        np.testing.assert_allclose(lp(xs), torch_out(net.double(), xs[:, None]), atol=1e-6)
        counts[i] = lp.n_regions
        init = R.count_line_regions(build_member(m, 1, 8, 3, 1), -2.0, 2.0)
        assert res.probes[0][i] == init
    assert res.probes[5] == [counts[i] for i in range(len(members))]


def test_ensemble_member_with_per_member_targets() -> None:
    X = np.broadcast_to(np.linspace(-1, 1, 32)[:, None], (2, 32, 1)).copy()
    y = np.stack([np.abs(X[0]), X[0] ** 2])
    res = train_ensemble(
        [Member(0), Member(1)], X, y, depth=2, width=6, num_epochs=3, progress=False
    )
    for i in range(2):
        lp = R.line_partition(res.model.member_module(i), -1.0, 1.0)
        assert lp.n_regions >= 1
        assert lp.n_regions <= R.serra_upper_bound(1, [6, 6])


# --------------------------------------------------------------------------- the plane


def test_general_position_formula() -> None:
    assert [R.general_position_regions(n) for n in range(6)] == [1, 2, 4, 7, 11, 16]
    for n in range(30):
        assert R.general_position_regions(n, 2) == 1 + n + n * (n - 1) // 2
        assert R.general_position_regions(n, 1) == n + 1


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_random_lines_are_in_general_position(n: int) -> None:
    rng = np.random.default_rng(n)
    W, b = rng.normal(size=(n, 2)), rng.normal(size=n)
    assert R.arrangement_regions(W, b) == 1 + n + n * (n - 1) // 2
    pts, mult = R.arrangement_vertices(W, b)
    assert len(pts) == n * (n - 1) // 2 and set(mult.tolist()) <= {2}


def test_degenerate_arrangements() -> None:
    # n parallel lines: n + 1 strips.
    assert R.arrangement_regions([[1.0, 2.0]] * 4, [0.0, 1.0, 2.0, -3.0]) == 5
    # Two pencils of 2 parallel lines: a 3 x 3 grid.
    assert R.arrangement_regions([[1, 0], [1, 0], [0, 1], [0, 1]], [0, 1, 0, 1]) == 9
    # Three lines through one point: 6 sectors, not 7.
    assert R.arrangement_regions([[1, 0], [0, 1], [1, 1]], [0, 0, 0]) == 6
    # A unit with w = 0 draws no line; a scaled or negated copy draws the same line.
    assert R.arrangement_regions([[1, 0], [0, 0], [0, 1]], [0, 5, 0]) == 4
    assert R.arrangement_regions([[1, 1], [-2, -2], [3, 3]], [1, -2, 3]) == 2
    assert R.arrangement_regions(np.zeros((3, 2)), [1.0, -1.0, 0.0]) == 1
    # Mixed: x = 0, x = -0.5 (parallel), y = 0, x + y = 0 (through the origin with x = 0, y = 0).
    assert R.arrangement_regions([[1, 0], [2, 0], [0, 1], [1, 1], [0, 0]], [0, 1, 0, 0, 3]) == 9


# Hand-made, well separated arrangements of lines (weights, biases).
HAND_MADE = [
    ([[1, 0], [0, 1], [1, 1]], [0, 0, -1]),  # general position
    ([[1, 0], [0, 1], [1, 1]], [0, 0, 0]),  # concurrent
    ([[1, 0], [1, 0], [0, 1]], [0, -1, 0]),  # two parallel
    ([[1, 0], [0, 0], [0, 1], [-2, 0]], [0.5, 1, 0, 1]),  # w = 0, duplicate line
]


def test_arrangement_count_equals_the_patterns_on_a_grid() -> None:
    """Hand-made, well separated lines: a grid of the box finds every region, never more."""
    for W, b in HAND_MADE:
        lo, hi = R.arrangement_box(W, b)
        exact = R.arrangement_regions(W, b)
        assert R.count_grid_regions(plane_layer(W, b), lo, hi, n=301) == exact


@pytest.mark.parametrize("seed", range(4))
def test_grid_counts_are_lower_bounds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(7, 2)), rng.normal(size=7)
    exact = R.arrangement_regions(W, b)
    lo, hi = R.arrangement_box(W, b)
    counts = [R.count_grid_regions(plane_layer(W, b), lo, hi, n) for n in (20, 80, 320)]
    assert all(c <= exact for c in counts)
    assert counts == sorted(counts) or counts[-1] == exact


def test_box_regions_count_what_a_fine_grid_of_the_box_finds() -> None:
    """Regions meeting a box: exact, equal to a fine grid's patterns when none is thin."""
    for W, b in HAND_MADE:
        for lo, hi in [((-3, -3), (3, 3)), ((-0.7, -0.4), (0.6, 0.9)), ((0.2, 0.3), (2.0, 2.5))]:
            grid = R.count_grid_regions(plane_layer(W, b), lo, hi, n=401)
            assert R.box_regions(W, b, lo, hi) == grid, (W, b, lo, hi)
        big_lo, big_hi = R.arrangement_box(W, b)
        assert R.box_regions(W, b, big_lo, big_hi) == R.arrangement_regions(W, b)


@pytest.mark.parametrize("seed", range(4))
def test_box_regions_of_random_lines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(6, 2)), rng.normal(size=6)
    lo, hi = R.view_box(W, b)
    inside = R.box_regions(W, b, lo, hi)
    assert R.count_grid_regions(plane_layer(W, b), lo, hi, n=300) <= inside
    assert inside <= R.arrangement_regions(W, b)
    # A box that holds every crossing meets every region.
    assert R.box_regions(W, b, *R.arrangement_box(W, b)) == R.arrangement_regions(W, b)
    # A box that no line crosses is one region.
    far = np.array([1e6, 1e6])
    assert R.box_regions(W, b, far, far + 1) == 1


def test_view_box_frames_where_the_lines_cross() -> None:
    # Two nearly parallel lines cross far away; the view stays near the other crossings.
    W = [[1, 0], [0, 1], [1, 1], [1, 1.001]]
    b = [0, 0, -1, -1.5]
    far, _ = R.arrangement_vertices(W, b)
    lo, hi = R.view_box(W, b)
    assert np.abs(far).max() > 100  # the nearly parallel pair
    assert (hi - lo).max() < 10 and np.allclose(hi - lo, (hi - lo)[0])  # a small square
    assert R.box_regions(W, b, lo, hi) < R.arrangement_regions(W, b)
    # No crossing at all (parallel lines): a unit square around the lines' nearest points.
    lo, hi = R.view_box([[1, 0], [1, 0]], [0, -1])
    assert np.all(hi - lo >= 2) and R.box_regions([[1, 0], [1, 0]], [0, -1], lo, hi) == 3


def test_slope_probe_measures_each_members_own_activation() -> None:
    x = np.linspace(-np.pi, np.pi, 16)[:, None]
    members = members_grid(range(2), ["sigmoid", "tanh", "relu"])
    res = train_ensemble(members, x, np.sin(x), depth=3, width=5, num_epochs=2, progress=False,
                         probe=R.slope_probe(threshold=0.05), probe_epochs=[0, 2])  # fmt: skip
    got = res.probes[0]
    assert got.mean_slope.shape == got.below.shape == got.spread.shape == (6, 3)
    assert got.threshold == 0.05
    from actlab.engine.activations import ACTIVATIONS

    # Against each member as a plain network, its pre-activations taken by hand.
    fresh = train_ensemble(members, x, np.sin(x), depth=3, width=5, num_epochs=0, progress=False)
    for i, m in enumerate(members):
        act = ACTIVATIONS[m.activation]
        for layer, z in enumerate(torch_pre_activations(fresh.model.member_module(i), x)):
            slope = act.grad(z)
            np.testing.assert_allclose(got.mean_slope[i, layer], slope.mean(), rtol=1e-4)
            np.testing.assert_allclose(got.below[i, layer], (slope < 0.05).mean(), atol=1e-6)
            np.testing.assert_allclose(got.spread[i, layer], act(z).std(0).mean(), rtol=1e-4)
    sig = res.where(activation="sigmoid")
    assert (got.mean_slope[sig] <= 0.25 + 1e-6).all()
    relu = res.where(activation="relu")
    np.testing.assert_allclose(got.below[relu], 1 - got.mean_slope[relu], atol=1e-6)  # 0 or 1


def test_activation_patterns_match_pytorch() -> None:
    net = random_net(4, 2, [5, 7, 3])
    X = np.random.default_rng(0).normal(size=(300, 2)) * 3
    np.testing.assert_array_equal(R.activation_patterns(net, X), torch_patterns(net, X))
    ids, n = R.pattern_ids(R.activation_patterns(net, X))
    assert ids.shape == (300,) and n == len({tuple(r) for r in torch_patterns(net, X)})


def test_stages_from_weights_equal_the_module() -> None:
    net = random_net(5, 2, [4, 3])
    lin = [m for m in net if isinstance(m, nn.Linear)]
    stages = R.stages_from_weights(
        [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in lin]
    )
    X = np.random.default_rng(1).normal(size=(50, 2))
    np.testing.assert_array_equal(R.activation_patterns(stages, X), R.activation_patterns(net, X))
    a = R.line_partition(stages, -2, 2, direction=[1.0, 0.5])
    c = R.line_partition(net, -2, 2, direction=[1.0, 0.5])
    np.testing.assert_allclose(a.edges, c.edges)


# --------------------------------------------------------------------------- bounds


def test_bounds_one_hidden_layer_equal_general_position() -> None:
    for d in (1, 2, 3):
        for n in (3, 5, 10):
            assert R.serra_upper_bound(d, [n]) == R.general_position_regions(n, d)
            assert R.montufar_lower_bound(d, [n]) == R.general_position_regions(n, d)


def test_bounds_on_a_line() -> None:
    for n in (2, 4, 8):
        for L in (1, 2, 3, 5):
            assert R.serra_upper_bound(1, [n] * L) == (n + 1) ** L
            assert R.montufar_lower_bound(1, [n] * L) == n ** (L - 1) * (n + 1)


def test_lower_bound_below_upper_bound_and_both_grow_with_depth() -> None:
    for d in (1, 2):
        prev = 0
        for L in range(1, 6):
            lo, hi = R.montufar_lower_bound(d, [8] * L), R.serra_upper_bound(d, [8] * L)
            assert lo <= hi
            assert lo > prev
            prev = lo
    # A hand count of Serra et al.'s sum for n0 = 2, widths (2, 2): j1 in 0..2, j2 <= min(2, 2 - j1).
    assert R.serra_upper_bound(2, [2, 2]) == 1 * (1 + 2 + 1) + 2 * (1 + 2) + 1 * 1
    assert math.isclose(R.montufar_lower_bound(2, [4, 4]), 4 * 11)


def test_exact_counts_never_exceed_the_upper_bound() -> None:
    for seed in range(5):
        net = random_net(seed, 1, [6, 6, 6])
        assert R.count_line_regions(net, -50, 50) <= R.serra_upper_bound(1, [6, 6, 6])


def test_plot_partition_counts_what_it_draws() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W, b = [[1, 0], [0, 1], [1, 1]], [0, 0, -1]
    fig, ax = plt.subplots()
    found = R.plot_partition(ax, plane_layer(W, b), -3, 3, n=150)
    assert found == R.count_grid_regions(plane_layer(W, b), -3, 3, n=150) == 7
    assert len(ax.images) == 1 and len(ax.lines) == 3  # the coloured grid and one line per unit
    plt.close(fig)


def test_the_partition_palette_is_the_course_palette_in_its_order() -> None:
    from actlab.presentation.figures import CATEGORICAL, OKABE_ITO

    names = ["orange", "sky blue", "bluish green", "yellow", "blue", "vermillion"]
    names += ["reddish purple", "grey"]
    assert CATEGORICAL == tuple(OKABE_ITO[n] for n in names)  # chapter 5 picks hues by index
    assert not hasattr(R, "OKABE_ITO"), "one palette, in actlab.presentation.figures"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    R.plot_partition(ax, plane_layer([[1, 0], [0, 1]], [0, 0]), -1, 1, n=20)
    cmap = ax.images[0].get_cmap()
    drawn = {matplotlib.colors.to_hex(cmap(i)).upper() for i in range(cmap.N)}
    plt.close(fig)
    assert drawn == {c.upper() for c in CATEGORICAL}
    lines = ax.lines
    assert len({str(line.get_linestyle()) for line in lines}) == len(lines), "one style per unit"


def test_three_unit_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    explorer = R.three_unit_explorer(w1s=[-1.0, 0.0, 2.0], b2s=[1.0], b3s=[0.0, -1.0])
    assert explorer.n_frames == 6
    assert len(set(explorer.render_all())) == 6
    live = explorer.live()
    w1, b2, b3 = controls(live)
    text = live.children[-1]
    assert text.value == explorer.frame_text_html((2, 0, 1))  # the start: w₁ = 2, b₂ = 1, b₃ = -1
    w1.index = 1
    assert text.value == explorer.frame_text_html((1, 0, 1))
    assert explorer.frame_alt((1, 0, 1)).startswith(
        "w₁ = 0, b₂ = 1, b₃ = −1: 3 pieces on the x₁-axis (hinges at −1 and 1); the lines cut "
        "the plane into 7 regions, 7 in general position"
    )
    for key in itertools.product(range(3), [0], range(2)):
        finding = explorer.frame_alt(key).split(". ", 1)[0]  # the frame's own sentence
        assert not re.search(r"-[\d.]|−0(?![.\d])", finding), "true minus signs, no negative zero"
    w1.index, b3.index = 0, 0  # lines 1 and 3 are one line
    assert text.value == explorer.frame_text_html((0, 0, 0))
    assert explorer.frame_alt((0, 0, 0)).startswith(
        "w₁ = −1, b₂ = 1, b₃ = 0: 3 pieces on the x₁-axis (hinges at −1 and 0); the lines cut "
        "the plane into 4 regions, 7 in general position"
    )


def test_three_unit_frames_follow_the_figure_rule() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from actlab.chapters.ch05_hinges.explorer import BOX
    from actlab.presentation.figures import check_figure

    for args in [(2.0, 1.0, -1.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]:
        fig = R.three_units_figure(*args)
        assert check_figure(fig) >= 10, "text of at least 10 pt at content width"
        f_axis, plane = fig.axes[:2]
        assert f_axis.get_xlim() == plane.get_xlim() == BOX  # one segment, one square
        lo, hi = f_axis.get_ylim()
        ys = np.concatenate(
            [line.get_ydata() for line in f_axis.lines if len(line.get_ydata()) > 2]
        )
        assert lo < ys.min() and ys.max() < hi, "the curve is in view"
        plt.close(fig)


def test_region_count_probe_counts_every_member_exactly() -> None:
    from actlab.ensemble import members_grid, train_ensemble

    x = np.linspace(-np.pi, np.pi, 32)[:, None]
    res = train_ensemble(members_grid(range(3), ["relu"]), x, np.sin(x), depth=2, width=6,
                         num_epochs=5, progress=False, probe=R.region_count_probe(-np.pi, np.pi),
                         probe_epochs=[0, 5])  # fmt: skip
    assert sorted(res.probes) == [0, 5]
    counts = [R.count_line_regions(res.model.member_module(i), -np.pi, np.pi) for i in range(3)]
    assert res.probes[5] == counts, "the last probe sees the trained members"
    assert all(isinstance(n, int) and 1 <= n <= 7 * 7 for n in res.probes[0])
