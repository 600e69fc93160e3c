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
    count_units,
    dead_masks,
    diverged,
    first_layer_dead_on_interval,
    format_mean_std,
    kept_mean_std,
    network_unit_counts,
    revival_demo,
    sweep_table,
    unit_hinges,
    unit_probe,
)
from actlab.ensemble import EnsembleMLP, Member, build_member, train_ensemble

X1 = torch.linspace(-1, 1, 21, dtype=torch.float64)[:, None]


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


def test_ensemble_probe_matches_plain_network_counts_at_init() -> None:
    members = [
        Member(0, "relu"),
        Member(1, "leaky_relu", bias=-0.3),
        Member(2, "gelu"),
        Member(3, "relu", norm="layer"),
    ]
    X = torch.linspace(-3, 3, 40, dtype=torch.float64)[:, None]
    model = EnsembleMLP(members, 1, 8, 4, 1, dtype=torch.float64)
    counts = count_units(model, X)
    assert counts.positive.shape == (4, 4, 8) and counts.n_examples == 40
    for i, m in enumerate(members):
        positive, passing = network_unit_counts(build_member(m, 1, 8, 4, 1, dtype=torch.float64), X)
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


def test_gelu_gradient_dead_follows_pytorchs_float32_backward() -> None:
    # z = w x - 8 <= -7 on [-1, 1]: PyTorch's float32 GELU backward is exactly 0 there.
    X = torch.linspace(-1, 1, 11)[:, None]
    member = Member(5, "gelu", bias=-8.0)
    counts = count_units(EnsembleMLP([member], 1, 6, 2, 1), X)
    assert (counts.positive[0, 0] == 0).all() and (counts.passing[0, 0] == 0).all()
    positive, passing = network_unit_counts(build_member(member, 1, 6, 2, 1), X)
    assert np.array_equal(counts.passing[0], np.stack(passing))
    assert np.array_equal(counts.positive[0], np.stack(positive))


def test_kept_mean_std_leaves_out_diverged_runs_and_says_so_when_none_is_left() -> None:
    values = np.array([0.1, 0.3, np.nan, 0.5])
    mean, std = kept_mean_std(values, np.array([False, False, True, False]))
    assert mean == pytest.approx(0.3) and std == pytest.approx(np.std([0.1, 0.3, 0.5]))
    assert kept_mean_std(values[:2]) == (pytest.approx(0.2), pytest.approx(0.1))
    gone = kept_mean_std(values, np.ones(4, dtype=bool))
    assert np.isnan(gone).all()
    assert format_mean_std(*gone) == "diverged"
    assert format_mean_std(mean, std) == "30.0 ± 16.3 %"


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
        "ReLU, learning rate 0.1, hidden bias default: all 2 seeds diverged, nothing drawn"
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
        f"Leaky ReLU, learning rate 0.01, hidden bias -5.0: after 4 epochs {end.mean():.0f} % of "
        f"units are dead, layer 1 {end[0]:.0f} %, layer 3 {end[-1]:.0f} % (2 of 2 seeds shown)"
    )
