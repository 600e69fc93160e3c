"""Dead-unit probes (chapter 4): hand-built networks with known dead units, ensemble vs alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.chapters.ch04_dead_relu import (
    DeadHistory,
    UnitCounts,
    backward_backend,
    count_units,
    dead_at_ends,
    dead_masks,
    diverged,
    first_layer_dead_on_interval,
    format_mean_std,
    format_rate,
    gaussian_sine,
    kept_mean_std,
    layer_groups,
    left_out,
    network_unit_counts,
    rate_phrase,
    revival_demo,
    sweep_table,
    unit_hinges,
    unit_probe,
    verdicts,
    versus,
    zero_slope_threshold,
)
from actlab.engine.device import get_device
from actlab.ensemble import EnsembleMLP, Member, build_member, members_grid, train_ensemble

X1 = torch.linspace(-1, 1, 21, dtype=torch.float64)[:, None]


@pytest.fixture
def device() -> torch.device:
    """The device the course trains on (``ACTLAB_DEVICE``, else CUDA, MPS or the CPU)."""
    return get_device()


def planted(activation: nn.Module) -> nn.Sequential:
    """1 -> 3 -> 2 -> 1: layer 1 unit 2 and layer 2 unit 0 are dead on [-1, 1], nothing else."""
    net = nn.Sequential(
        nn.Linear(1, 3), activation, nn.Linear(3, 2), type(activation)(), nn.Linear(2, 1)
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0], [0.5]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.2, -2.0]))  # unit 2: z = 0.5x - 2 < 0 on [-1, 1]
        net[2].weight.copy_(torch.tensor([[-1.0, -1.0, 3.0], [1.0, 1.0, 0.0]]))
        net[2].bias.copy_(torch.tensor([-0.1, 0.0]))  # unit 0: -(h0 + h1) - 0.1 < 0 when h >= 0
        net[4].weight.fill_(1.0)
    return net.double()


def test_planted_dead_units_are_found() -> None:
    masks = dead_masks(planted(nn.ReLU()), X1)
    assert [m.tolist() for m in masks] == [[False, False, True], [True, False]]
    positive, passing = network_unit_counts(planted(nn.ReLU()), X1)
    # unit 0 of layer 1 is positive for x in (0, 1]: 10 of the 21 points
    assert positive[0].tolist() == [10, int((0.2 - X1[:, 0] > 0).sum()), 0]
    assert np.array_equal(positive[0], passing[0])  # ReLU: positive <=> slope 1


def test_leaky_relu_units_are_never_positive_but_not_gradient_dead() -> None:
    positive, passing = network_unit_counts(planted(nn.LeakyReLU(0.01)), X1)
    assert positive[0][2] == 0
    assert all((p == len(X1)).all() for p in passing)


def test_gradient_dead_relu_unit_gets_zero_weight_gradient() -> None:
    net = planted(nn.ReLU())
    loss = F.mse_loss(net(X1), torch.sin(3 * X1))
    loss.backward()
    assert torch.all(net[0].weight.grad[2] == 0) and net[0].bias.grad[2] == 0
    assert torch.all(net[2].weight.grad[0] == 0) and net[2].bias.grad[0] == 0
    assert net[0].weight.grad[0].abs().item() > 0


@pytest.mark.device
def test_ensemble_probe_matches_plain_network_counts_at_init(device: torch.device) -> None:
    members = [
        Member(0, "relu"),
        Member(1, "leaky_relu", bias=-0.3),
        Member(2, "gelu"),
        Member(3, "relu", norm="layer"),
    ]
    X = torch.linspace(-3, 3, 40, dtype=torch.float64, device=device)[:, None]
    model = EnsembleMLP(members, 1, 8, 4, 1, dtype=torch.float64).to(device)
    counts = count_units(model, X)
    assert counts.positive.shape == (4, 4, 8) and counts.n_examples == 40
    for i, m in enumerate(members):
        net = build_member(m, 1, 8, 4, 1, dtype=torch.float64).to(device)
        positive, passing = network_unit_counts(net, X)  # arrays, wherever the network is
        assert np.array_equal(counts.positive[i], np.stack(positive))
        assert np.array_equal(counts.passing[i], np.stack(passing))


def test_probes_of_a_member_equal_the_network_trained_alone() -> None:
    rng = np.random.default_rng(0)
    X = np.linspace(-np.pi, np.pi, 30)[:, None]
    y = np.sin(X) + 0.1 * rng.normal(size=X.shape)
    members = [
        Member(0, "relu", lr=0.05),
        Member(1, "leaky_relu", lr=0.02),
        Member(2, "relu", lr=0.05, bias=-0.2),
    ]
    epochs = [0, 3, 10]
    result = train_ensemble(members, X, y, depth=4, width=8, num_epochs=10, dtype=torch.float64,
                            progress=False, probe=count_units, probe_epochs=epochs, device="cpu")  # fmt: skip
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for i, m in enumerate(members):
        net = build_member(m, 1, 8, 4, 1, dtype=torch.float64)
        opt = torch.optim.Adam(net.parameters(), lr=m.lr, foreach=False)
        for epoch in range(11):
            if epoch in epochs:
                positive, passing = network_unit_counts(net, Xt)
                assert np.array_equal(result.probes[epoch].positive[i], np.stack(positive)), (
                    i,
                    epoch,
                )
                assert np.array_equal(result.probes[epoch].passing[i], np.stack(passing)), (
                    i,
                    epoch,
                )
            if epoch == 10:
                break
            opt.zero_grad()
            F.mse_loss(net(Xt), yt).backward()
            opt.step()


def test_hinges_outside_the_data_range_mean_a_dead_first_layer_unit() -> None:
    w = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 1.0])
    b = np.array([-4.0, -1.0, 0.2, -1.0, 1.0, 4.0])
    assert np.allclose(unit_hinges(w, b)[:3], [4.0, -0.5, -0.4]) and np.isinf(unit_hinges(w, b)[3])
    expected = np.array([True, False, False, True, False, False])
    assert first_layer_dead_on_interval(w, b, -np.pi, np.pi).tolist() == expected.tolist()
    x = np.linspace(-np.pi, np.pi, 1001)
    assert np.array_equal(((w[:, None] * x + b[:, None]) <= 0).all(1), expected)


def test_history_separates_init_died_and_revived() -> None:
    def counts(pos: list[int]) -> UnitCounts:
        p = np.array(pos).reshape(1, 1, -1)
        return UnitCounts(positive=p, passing=p, n_examples=5)

    # units: dead throughout, alive->dead, dead->alive, dead->alive->dead, alive throughout
    h = DeadHistory.from_probes(
        {0: counts([0, 3, 0, 0, 5]), 5: counts([0, 0, 2, 1, 5]), 9: counts([0, 0, 4, 0, 5])}
    )
    assert h.at_init.ravel().tolist() == [True, False, True, True, False]
    assert h.died.ravel().tolist() == [False, True, False, False, False]
    assert h.stayed_dead.ravel().tolist() == [True, False, False, True, False]
    assert h.revived.ravel().tolist() == [False, False, True, True, False]
    s = h.summary()
    assert s["dead"][0] == pytest.approx(0.6) and s["died in training"][0] == pytest.approx(0.2)
    assert np.allclose(h.fraction()[:, 0], [0.6, 0.4, 0.6])


def test_diverged_runs_are_left_out_of_the_table() -> None:
    losses = np.array([[1.0, 1.0, 1.0], [0.5, np.nan, 0.2], [0.4, 0.3, 3.0]])
    assert diverged(losses, baseline=1.0).tolist() == [False, True, True]
    p = np.zeros((3, 1, 2), dtype=int)
    p[0] = 1
    h = DeadHistory.from_probes({0: UnitCounts(p, p, 4), 2: UnitCounts(p * 0, p * 0, 4)})
    members = [Member(s, "relu", lr=0.1) for s in range(3)]
    table = sweep_table(members, h, losses, baseline=1.0)
    assert len(table) == 1 and table["diverged"].iloc[0] == 2 and table["seeds"].iloc[0] == 3
    assert table["dead"].iloc[0] == 1.0 and table["final loss"].iloc[0] == pytest.approx(0.4)


def test_dead_at_init_counts_every_seed_even_those_that_diverge_later() -> None:
    # three runs; the last two diverge. At epoch 0 run 0 has 0 dead units of 2, runs 1 and 2 both.
    losses = np.array([[1.0, 1.0, 1.0], [0.5, np.nan, 0.2], [0.4, 0.3, 3.0]])
    p0 = np.ones((3, 1, 2), dtype=int)
    p0[1:] = 0
    p1 = np.zeros((3, 1, 2), dtype=int)
    h = DeadHistory.from_probes({0: UnitCounts(p0, p0, 4), 2: UnitCounts(p1, p1, 4)})
    table = sweep_table([Member(s, "relu", lr=0.1) for s in range(3)], h, losses, baseline=1.0)
    assert table["dead at init"].iloc[0] == pytest.approx(2 / 3)  # every seed
    assert table["dead at init std"].iloc[0] == pytest.approx(np.std([0.0, 1.0, 1.0]))
    assert table["dead"].iloc[0] == 1.0  # after training: the one run that did not diverge


def test_histogram_probe_counts_every_activation_once() -> None:
    members = [Member(0, "relu"), Member(1, "sigmoid")]
    model = EnsembleMLP(members, 1, 6, 3, 1)
    X = torch.linspace(-2, 2, 17)[:, None]
    edges = np.linspace(-1, 2, 7)
    c = unit_probe(edges)(model, X)
    assert c.hist.shape == (2, 3, 6) and (c.hist.sum(axis=2) == 17 * 6).all()
    _, _, hidden = model.trace(X)
    ref = np.histogram(np.clip(hidden[1][1].detach().numpy().ravel(), -1, 2 - 1e-9), bins=edges)[0]
    assert np.array_equal(c.hist[1, 1], ref)


def test_revival_demo_unit_revives_without_own_gradient() -> None:
    trace = revival_demo()
    dead = trace.positive == 0
    assert dead[0] and not dead[-1]
    first_alive = int(np.argmax(~dead))
    assert np.all(trace.own_grad[:first_alive] == 0) and trace.own_grad[first_alive] > 0
    assert trace.input_max[first_alive] > 1.0 >= trace.input_max[first_alive - 1]


@pytest.mark.device
def test_gelu_gradient_dead_follows_pytorchs_float32_backward(device: torch.device) -> None:
    # |w x| <= 1 on [-1, 1] (default init, one input): a bias 2 below the device's
    # threshold puts every first-layer z where that device's float32 GELU backward is 0.
    threshold = zero_slope_threshold("gelu", device, torch.float32)
    assert -20 < threshold < -1
    X = torch.linspace(-1, 1, 11, device=device)[:, None]
    member = Member(5, "gelu", bias=threshold - 2)
    counts = count_units(EnsembleMLP([member], 1, 6, 2, 1).to(device), X)
    assert (counts.positive[0, 0] == 0).all() and (counts.passing[0, 0] == 0).all()
    positive, passing = network_unit_counts(build_member(member, 1, 6, 2, 1).to(device), X)
    assert np.array_equal(counts.passing[0], np.stack(passing))
    assert np.array_equal(counts.positive[0], np.stack(positive))
    # just above the threshold the same units pass a gradient again
    member = Member(5, "gelu", bias=threshold + 2)
    counts = count_units(EnsembleMLP([member], 1, 6, 2, 1).to(device), X)
    assert (counts.passing[0, 0] == len(X)).all()


@pytest.mark.device
def test_zero_slope_threshold_is_where_the_devices_backward_stops(device: torch.device) -> None:
    t = zero_slope_threshold("gelu", device, torch.float32)
    below = torch.linspace(-30.0, t, 3001, device=device)[:-1]
    for z, zero in ((below, True), (torch.tensor([t, t / 2, -1.0], device=device), False)):
        leaf = z.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(F.gelu(leaf).sum(), leaf)
        assert bool((slope == 0).all()) == zero and bool((slope != 0).all()) != zero
    # the closed form Phi(z) + z phi(z) is far from 0 there: the zeros are rounding
    assert F.gelu(torch.tensor(t + 1.0, dtype=torch.float64, device=device)) != 0
    # slopes that never vanish, and one that is 0 all the way up to the grid's end
    assert zero_slope_threshold("leaky_relu", device) == -np.inf
    assert np.isnan(zero_slope_threshold("relu", device, hi=0.0))
    assert zero_slope_threshold("relu", device, lo=-1.0, hi=1.0, n=2001) == pytest.approx(
        1e-3, abs=1e-6
    )


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_gelu_threshold_and_its_description_depend_on_onednn() -> None:
    with_onednn = zero_slope_threshold("gelu", "cpu", torch.float32, onednn=True)
    without = zero_slope_threshold("gelu", "cpu", torch.float32, onednn=False)
    assert -7 < with_onednn < -6 and -15 < without < -14  # about -6.15 and -14.3
    assert torch.backends.mkldnn.enabled  # the switch was only for the call
    # float64 never goes through oneDNN: its slope is not 0 anywhere on [-30, 0]
    assert zero_slope_threshold("gelu", "cpu", torch.float64, onednn=True) == -np.inf
    assert backward_backend("gelu", "cpu", torch.float32) == "float32 GELU on the CPU with oneDNN"
    with torch.backends.mkldnn.flags(enabled=False):
        assert backward_backend("gelu", "cpu", torch.float32).endswith("CPU without oneDNN")
    assert backward_backend("gelu", "cpu", torch.float64) == "float64 GELU on the CPU"
    assert backward_backend("relu", "cpu", torch.float32) == "float32 ReLU on the CPU"


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_gelu_threshold_is_the_plain_kernels() -> None:
    # PyTorch's CUDA kernel computes cdf + z pdf in float32, as its CPU kernel does without oneDNN
    cuda = zero_slope_threshold("gelu", "cuda", torch.float32)
    plain = zero_slope_threshold("gelu", "cpu", torch.float32, onednn=False)
    assert cuda == pytest.approx(plain, abs=0.05)
    assert backward_backend("gelu", "cuda", torch.float32).startswith("float32 GELU on CUDA (")


def test_kept_mean_std_leaves_out_diverged_runs_and_says_so_when_none_is_left() -> None:
    values = np.array([0.1, 0.3, np.nan, 0.5])
    mean, std = kept_mean_std(values, np.array([False, False, True, False]))
    assert mean == pytest.approx(0.3) and std == pytest.approx(np.std([0.1, 0.3, 0.5]))
    assert kept_mean_std(values[:2]) == (pytest.approx(0.2), pytest.approx(0.1))
    gone = kept_mean_std(values, np.ones(4, dtype=bool))
    assert np.isnan(gone).all()
    assert format_mean_std(*gone) == "diverged"
    assert format_mean_std(mean, std) == "30.0 ± 16.3 %"
    assert format_mean_std(0.49, 5e-05, pct=False, digits=2) == "0.49 ± 5e\N{MINUS SIGN}05"
    assert format_mean_std(-0.0001, 0.02, pct=False) == "\N{MINUS SIGN}0.0001 ± 0.02"


def test_dead_units_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    from actlab.chapters.ch04_dead_relu import dead_units_explorer
    from actlab.ensemble import EnsembleResult, members_grid

    members = members_grid(range(2), ["relu", "leaky_relu"], [1e-2, 1e-1], biases=[-5.0, None])
    epochs, depth, width = np.array([0, 2, 4]), 3, 4
    dead = np.zeros((len(epochs), len(members), depth, width), dtype=bool)
    for t, e, layer in np.ndindex(dead.shape[:3]):
        dead[t, e, layer, : (e + layer + t) % (width + 1)] = True
    losses = np.full((4, len(members)), 0.5)
    for e, m in enumerate(members):
        if m.activation == "relu" and m.lr == 1e-1:
            losses[-1, e] = 2.0  # above the baseline: diverged
    result = EnsembleResult(
        members, losses, np.array([0]), np.zeros((1, len(members), 4)), None, 0.0, "cpu"
    )
    history = DeadHistory(epochs, dead, dead)
    explorer = dead_units_explorer(
        result, history, 1.0, [1e-2, 1e-1], ["relu", "leaky_relu"], biases=[-5.0, None]
    )
    assert explorer.n_frames == 8
    assert len(set(explorer.render_all())) == 8
    live = explorer.live()
    lr, activation, bias = controls(live)
    text = live.children[-1]
    assert text.value == explorer.frame_text_html((0, 0, 1))  # lr 0.01, ReLU, default bias
    lr.index = 1
    assert text.value == explorer.frame_text_html((1, 0, 1))
    assert explorer.frame_alt((1, 0, 1)).startswith(
        "ReLU, learning rate 0.1, the default hidden bias: both seeds diverged, nothing drawn"
    )
    lr.index, activation.index, bias.index = 0, 1, 0
    assert text.value == explorer.frame_text_html((0, 1, 0))
    shown = [
        e
        for e, m in enumerate(members)
        if (m.activation, m.lr, m.bias) == ("leaky_relu", 1e-2, -5.0)
    ]
    end = 100 * dead[-1, shown].mean(axis=(0, 2))
    assert explorer.frame_alt((0, 1, 0)).startswith(
        f"Leaky ReLU, learning rate 0.01, hidden bias −5: after 4 epochs {end.mean():.0f} % of "
        f"units are dead, layer 1 {end[0]:.0f} %, layer 3 {end[-1]:.0f} % (both seeds shown)"
    )


def test_format_rate_writes_short_decimals_and_powers_of_ten() -> None:
    rates = np.geomspace(1e-4, 1e-1, 6)
    assert [format_rate(r) for r in rates] == [
        "0.0001",
        "0.0004",
        "0.0016",
        "0.0063",
        "0.025",
        "0.1",
    ]
    assert format_rate(1.0) == "1" and format_rate(3e-5) == "0.00003"
    assert [format_rate(r, powers=True) for r in rates[[0, 1, 4, 5]]] == [
        "10⁻⁴", "4 × 10⁻⁴", "2.5 × 10⁻²", "10⁻¹"
    ]  # fmt: skip
    assert format_rate(1.0, powers=True) == "1" and format_rate(0.0996, powers=True) == "10⁻¹"
    assert format_rate(250.0, powers=True) == "2.5 × 10²"


def test_left_out_and_rate_phrase_say_nothing_about_none_and_name_the_rest() -> None:
    assert left_out(0, 5) == ""
    assert left_out(1, 5) == "1 of 5 seeds diverged and is left out"
    assert left_out(2, 5) == "2 of 5 seeds diverged and are left out"
    row = {"dead": 0.858, "dead std": 0.018, "diverged": 0, "seeds": 5}
    assert rate_phrase(row, "10⁻¹") == "85.8 ± 1.8 % at 10⁻¹"
    assert rate_phrase({**row, "diverged": 2}, "10⁻¹") == (
        "85.8 ± 1.8 % at 10⁻¹, where 2 of 5 seeds diverged and are left out"
    )
    gone = {"dead": np.nan, "dead std": np.nan, "diverged": 5, "seeds": 5}
    assert rate_phrase(gone, "10⁻¹") == "at 10⁻¹ all 5 seeds diverged"
    loss = {"final loss": 0.052, "final loss std": 0.019, "diverged": 0, "seeds": 5}
    assert (
        rate_phrase(loss, "rate 1", "final loss", pct=False, digits=2) == "0.052 ± 0.019 at rate 1"
    )


def test_versus_follows_the_books_rule() -> None:
    a, b = [1.0, 1.1, 0.9, 1.0, 1.0], [2.0, 2.1, 1.9, 2.0, 2.0]
    assert versus(a, b) == "lower" and versus(b, a) == "higher"
    assert versus(a, [1.05, 0.95, 1.0, 1.1, 0.9]) == "tie"
    assert versus([1.0, np.nan, np.nan], b) == "too few"  # one finite run cannot be compared
    # the rule is two standard errors of the difference (ddof=1): just inside is a tie
    x = np.array([0.0, 1.0, 0.0, 1.0])  # mean 0.5, se 0.289
    se = np.hypot(x.std(ddof=1) / 2, x.std(ddof=1) / 2)
    assert versus(x + 2 * se * 0.99, x) == "tie" and versus(x + 2 * se * 1.01, x) == "higher"


def test_verdicts_group_settings_with_the_same_outcome() -> None:
    ref = [0.5, 0.52, 0.48, 0.5, 0.5]
    low, same = [0.1, 0.12, 0.08, 0.1, 0.1], [0.49, 0.53, 0.5, 0.47, 0.51]
    dead = {"none": ref, "A": low, "B": same, "C": same, "D": [np.nan] * 5, "E": low}
    loss = {
        "none": ref,
        "A": same,
        "B": same,
        "C": same,
        "D": [np.nan] * 5,
        "E": [0.9] + [np.nan] * 4,
    }
    text = verdicts(dead, loss, "none")
    assert text == (
        "A ends with fewer dead units and a loss that ties; B and C tie with it on both; "
        "D diverged in every seed; E leaves too few runs that did not diverge to compare"
    )
    loss_hi = {**loss, "A": [0.9, 0.92, 0.88, 0.9, 0.9]}
    assert verdicts(dead, loss_hi, "none").startswith(
        "A ends with fewer dead units and a higher loss"
    )
    assert "too few" in verdicts(dead, {**loss, "none": [0.5] + [np.nan] * 4}, "none")


def test_layer_groups_average_the_layers_of_each_run() -> None:
    per_layer = np.array([[0.0, 0.2, 0.4, 0.6], [1.0, 1.0, 0.0, 0.0]])
    g = layer_groups(per_layer, [(1, 1), (2, 4), (1, 4)])
    assert g.shape == (2, 3)
    assert np.allclose(g, [[0.0, 0.4, 0.3], [1.0, 1 / 3, 0.5]])


def test_gaussian_sine_is_the_sine_along_one_direction() -> None:
    X, y = gaussian_sine(n=500, dim=8, noise=0.0, seed=3)
    assert X.shape == (500, 8) and y.shape == (500, 1)
    # without noise, y is sin(2 u.x) for a unit vector u: recover u from the generator's draws
    rng = np.random.default_rng(3)
    rng.normal(size=(500, 8))
    u = rng.normal(size=8)
    u /= np.linalg.norm(u)
    assert np.allclose(y[:, 0], np.sin(2 * X @ u))
    assert abs(X.mean()) < 0.1 and abs(X.std() - 1) < 0.05
    X2, y2 = gaussian_sine(n=500, dim=8, noise=0.1, seed=3)
    assert np.allclose(X2, X) and 0.07 < (y2 - y).std() < 0.13  # the same points, noise added


def test_ray_rule_holds_without_biases_and_only_there() -> None:
    X = torch.linspace(-np.pi, np.pi, 200)[:, None]
    he = EnsembleMLP(members_grid(range(4), ["relu"], inits=["he"]), 1, 32, 6, 1)
    on_data = count_units(he, X).dead
    assert np.array_equal(dead_at_ends(he, -np.pi, np.pi), on_data)
    assert on_data[:, 0].sum() == 0 and on_data[:, 1:].sum() > 0  # layer 1 never dies on two rays
    # PyTorch's default biases bend the curve off the rays: the two ends no longer decide
    default = EnsembleMLP(members_grid(range(4), ["relu"]), 1, 32, 6, 1)
    assert not np.array_equal(dead_at_ends(default, -np.pi, np.pi), count_units(default, X).dead)
