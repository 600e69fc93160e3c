"""Chapter 3's backprop helpers, checked against torch.autograd and the syllabus facts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actlab.chapters.ch03_backprop import (
    chain_autograd,
    chain_pass,
    chain_table,
    dphi,
    epochs_at_baseline,
    gradient_norm_explorer,
    layer1_texts,
    layer_grad_norms,
    max_slope,
    same_sign_fraction,
    sgd_path,
    slope_factors,
    vanishing_bound,
)
from actlab.engine.models import mlp


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "gelu"])
@pytest.mark.parametrize("depth", [1, 3, 6])
def test_chain_matches_autograd(activation: str, depth: int) -> None:
    rng = np.random.default_rng(depth)
    for _ in range(5):
        x, y = rng.normal(size=2)
        w, b = rng.normal(size=(2, depth)) * 1.5
        cp = chain_pass(x, y, w, b, activation)
        ag = chain_autograd(x, y, w, b, activation)
        for key in ("z", "a", "slope", "dL_da", "dL_dz", "dL_dw", "dL_db", "dL_dx", "loss"):
            np.testing.assert_allclose(
                getattr(cp, key), ag[key], rtol=1e-10, atol=1e-14, err_msg=key
            )


def test_chain_formula_for_w1() -> None:
    """dL/dw1 = (y_hat - y) s3 w3 s2 w2 s1 x, the product derived in the chapter."""
    x, y, w, b = 0.8, 0.3, [1.2, -0.7, 2.0], [0.1, 0.2, -0.3]
    cp = chain_pass(x, y, w, b)
    s = cp.slope
    expected = (cp.a[-1] - y) * s[2] * w[2] * s[1] * w[1] * s[0] * x
    assert cp.dL_dw[0] == pytest.approx(expected, rel=1e-12)
    assert np.allclose(s, cp.a * (1 - cp.a))  # sigma' from the cached output


def test_table_is_complete_and_consistent() -> None:
    table = chain_table(chain_pass(1.0, 0.0, [1, 1, 1], [0, 0, 0]))
    assert len(table) == 3 * 2 + 1 + 3 * 5
    assert table["|difference|"].max() < 1e-12
    assert {"∂L/∂w1", "∂L/∂b3", "φ'(z2)"} <= set(table["quantity"])
    factors = slope_factors(chain_pass(1.0, 0.0, [2, 2, 2], [0, 0, 0]))
    np.testing.assert_allclose(factors["w·φ'(z)"], 2 * factors["φ'(z)"])


def test_syllabus_facts() -> None:
    assert max_slope("sigmoid") == pytest.approx(0.25)
    assert max_slope("tanh") == pytest.approx(1.0)
    assert max_slope("relu") == pytest.approx(1.0)
    assert vanishing_bound(3) == 0.015625
    assert vanishing_bound(10) == pytest.approx(9.54e-7, rel=1e-3)
    assert vanishing_bound(10, slope=1.0) == 1.0
    assert vanishing_bound(5, slope=0.25, weight=8.0) == 32.0  # |w phi'| = 2 explodes
    assert dphi("sigmoid", -10.0) == pytest.approx(4.54e-5, rel=1e-3)
    with pytest.raises(ValueError):
        vanishing_bound(-1)


def test_layer_grad_norms_match_manual() -> None:
    torch.manual_seed(0)
    model = mlp(3, 5, 2, 1, activation="tanh")
    with pytest.raises(ValueError, match="backward"):
        layer_grad_norms(model)
    X, y = torch.randn(7, 3), torch.randn(7, 1)
    F.mse_loss(model(X), y).backward()
    norms = layer_grad_norms(model)
    expected = [model[i].weight.grad.pow(2).sum().sqrt().item() for i in (0, 2, 4)]
    np.testing.assert_allclose(norms, expected, rtol=1e-6)


def test_positive_inputs_give_same_sign_gradients() -> None:
    rng = np.random.default_rng(0)
    u = rng.normal(size=(100, 2))
    w_true = np.array([1.0, -1.0])
    pos = 1 / (1 + np.exp(-u))
    path, grads = sgd_path(pos, pos @ w_true, [-1.0, 1.0], lr=0.5, steps=50)
    assert path.shape == (51, 2) and grads.shape == (50, 2)
    assert same_sign_fraction(grads) == 1.0
    centred = np.tanh(u)
    _, grads_c = sgd_path(centred, centred @ w_true, [-1.0, 1.0], lr=0.5, steps=50)
    assert same_sign_fraction(grads_c) < 0.8


def test_epochs_at_baseline() -> None:
    losses = np.array([[1.0, 1.0], [0.95, 1.0], [0.5, 0.99], [0.1, 0.98]])
    np.testing.assert_array_equal(epochs_at_baseline(losses, baseline=1.0), [2, 4])


def _table(depths, acts, inits, seeds=3):
    """A made-up gradient table: layer 1 smaller the deeper, per activation and init."""
    rng = np.random.default_rng(0)
    return {
        (d, act, init): np.geomspace(10.0 ** -(d * (k + 1) + j), 1.0, d + 1)
        * np.exp(rng.normal(size=(seeds, 1)))
        for d in depths
        for k, act in enumerate(acts)
        for j, init in enumerate(inits)
    }


def test_gradient_norm_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    depths, acts, inits = [2, 4], ["sigmoid", "relu"], ["xavier", "he"]
    table = _table(depths, acts, inits)
    explorer = gradient_norm_explorer(table, depths, acts, inits)
    assert explorer.n_frames == 4
    assert len(set(explorer.render_all())) == 4
    live = explorer.live()
    depth, init = controls(live)
    text = live.children[-1]
    before = text.value
    depth.index = 1
    assert text.value != before
    init.index = 1
    assert text.value == explorer.frame_text_html((1, 1))
    said = layer1_texts(table, 4, "relu", "he")
    assert explorer.frame_alt((1, 1)).startswith(
        f"4 hidden layers, He initialisation. Layer 1's gradient per weight (geometric mean "
        f"over 3 seeds, range in brackets): sigmoid {layer1_texts(table, 4, 'sigmoid', 'he')['gradient']}"
    )
    assert f"ReLU {said['gradient']}, {said['ratio']} of layer 4's" in explorer.frame_alt((1, 1))
    # the buttons name the schemes as a reader knows them
    assert [label for label, _ in init.options] == ["Xavier", "He"]


def test_explorer_frames_share_one_axis_that_frames_every_value() -> None:
    import matplotlib.pyplot as plt

    from actlab.chapters.ch03_backprop import gradient_norm_figure, log_limits
    from actlab.presentation.figures import check_figure

    depths, acts, inits = [2, 20], ["sigmoid", "gelu"], ["default"]
    table = _table(depths, acts, inits)
    lo, hi = log_limits(list(table.values()))
    assert lo <= min(v.min() for v in table.values()) and hi >= max(v.max() for v in table.values())
    explorer = gradient_norm_explorer(table, depths, acts, inits)
    for d in depths:
        fig = explorer.draw(depth=d, init="PyTorch default")
        assert fig.axes[0].get_ylim() == pytest.approx((lo, hi))  # the deepest sigmoid layer shows
        check_figure(fig)  # content width, one panel a row, no text under 10 pt
        plt.close(fig)
    fig = gradient_norm_figure(table, 2, "default", acts)
    assert fig.axes[0].get_title() == "2 hidden layers, PyTorch default initialisation"
    plt.close(fig)


def test_per_weight_rms_is_fair_to_layers_of_different_shapes() -> None:
    from actlab.chapters.ch03_backprop import first_last_ratio, per_weight_rms, weight_counts

    np.testing.assert_array_equal(weight_counts(3, 64), [64, 4096, 4096, 64])
    np.testing.assert_array_equal(weight_counts(2, 8, in_dim=2, out_dim=3), [16, 64, 24])
    # every weight's gradient 1e-3: the norms differ by shape alone, the per-weight RMS does not
    norms = 1e-3 * np.sqrt(weight_counts(3, 64))
    np.testing.assert_allclose(per_weight_rms(norms, 64), 1e-3)
    assert first_last_ratio(per_weight_rms(norms, 64)) == pytest.approx(1.0)
    assert norms[0] / norms[-2] == pytest.approx(1 / 8)  # the Frobenius ratio is off by 8
    # first over last hidden: below 1 when the gradient vanishes on its way down
    assert first_last_ratio(np.array([1e-6, 1e-3, 1e-2, 1.0])) == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        first_last_ratio(np.array([1.0, 1.0]))


def test_gm_text_writes_the_geometric_mean_and_the_range() -> None:
    from actlab.chapters.ch03_backprop import gm_text

    m = "\N{MINUS SIGN}"
    assert gm_text([1e-9, 1e-7, 1e-8]) == f"1e{m}08 (1e{m}09 to 1e{m}07)"
    assert gm_text([0.05, 0.2]) == "0.1 (0.05 to 0.2)"
    assert gm_text([4.54e-10, 4.56e-10], ".1e") == f"4.5e{m}10 (4.5e{m}10 to 4.6e{m}10)"


@pytest.fixture(scope="module")
def sine_table():
    """The chapter's data and seeds at 10 hidden layers, every activation of the deep experiment."""
    from actlab.chapters.ch03_backprop import gradient_table
    from actlab.engine.data import noisy_sine

    X, y = noisy_sine(n=200, noise=0.1, seed=0)
    acts = ["sigmoid", "relu", "leaky_relu", "gelu"]
    return X, y, acts, gradient_table(X, y, [10], acts, ["default"], range(5), device="cpu")


def test_the_deep_experiment_the_text_and_the_explorer_use_one_table(sine_table) -> None:
    """The chapter glues layer1_texts(grads, 10, act, "default") into the text and the caption,
    trains the deep experiment, and builds the explorer from the same grads: the training's own
    first gradients are the table's, and the explorer's frame says the glued words."""
    from actlab.chapters.ch03_backprop import first_last_ratio, per_weight_rms
    from actlab.engine.stats import geometric_summary
    from actlab.ensemble import members_grid, train_ensemble
    from actlab.presentation.prose import num

    X, y, acts, table = sine_table
    deep = train_ensemble(members_grid(range(5), acts), X, y, depth=10, width=64, num_epochs=1,
                          device="cpu", progress=False)  # fmt: skip
    for act in acts:
        at_init = per_weight_rms(deep.grad_norms[0][deep.where(activation=act)], 64)
        np.testing.assert_allclose(at_init, table[10, act, "default"], rtol=1e-4)
    explorer = gradient_norm_explorer(table, [10], acts, ["default"])
    alt = explorer.frame_alt((0, 0))
    for act in acts:
        said = layer1_texts(table, 10, act, "default")
        g = table[10, act, "default"]
        # the geometric mean over seeds, not the arithmetic mean
        assert said["gradient"].startswith(num(np.exp(np.log(g[:, 0]).mean()), ".2g") + " (")
        assert said["ratio"].startswith(
            num(geometric_summary(first_last_ratio(g)).mean, ".2g") + " ("
        )
        assert f"{said['gradient']}, {said['ratio']} of layer 10's" in alt
    # sigmoid's layer 1 is far below the others', as the text says
    assert table[10, "sigmoid", "default"][:, 0].max() < table[10, "gelu", "default"][:, 0].min()


def test_the_page_glues_one_wording_into_text_caption_and_explorer() -> None:
    """The glued layer-1 values come from layer1_texts on the table the explorer is built from,
    and the caption of the figure and the text use those glued keys (no typed numbers)."""
    import re

    from conftest import ROOT

    page = (ROOT / "book" / "ch03_backprop.md").read_text()
    assert re.search(r"layer1_texts\(grads, 10, act, \"default\"\)", page)
    assert re.search(r"gradient_norm_explorer\(grads,", page)
    caption = page.split("```{glue:figure} fig-ch03-init-gradients")[1].split("```")[0]
    section = page.split("(ch03-deep-experiment)=")[1].split("(ch03-sigmoid-baseline)=")[0]
    explorer = page.split("## Explorer")[1].split("## Summary")[0]
    for part in (caption, section, explorer):
        assert "{glue:text}`l1_sigmoid`" in part


def test_adam_first_step_is_the_epsilon_floor() -> None:
    """|g| / (|g| + eps): about the rate above eps, |g|/eps of it below, as torch.optim.Adam steps."""
    from actlab.chapters.ch03_backprop import adam_first_step, step_over_lr

    g = np.array([1e-3, 1e-8, 5e-10, 4e-14])
    np.testing.assert_allclose(
        adam_first_step(g), [1 / (1 + 1e-5), 0.5, 0.5 / 10.5, 4e-14 / (1e-8 + 4e-14)]
    )
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=1e-3)
    w.grad = torch.tensor(g)
    opt.step()
    moved = step_over_lr(np.zeros((4, 1)), w.detach().numpy()[:, None], 1e-3)
    np.testing.assert_allclose(moved, adam_first_step(g), rtol=1e-9)
    assert adam_first_step(g, eps=0.0)[-1] == 1.0  # without eps every step is the rate


def test_first_update_measures_the_trainers_adam(sine_table) -> None:
    """The first update the probe sees is Adam's |g| / (|g| + eps) of each layer-1 weight's
    gradient at initialisation (the network alone, autograd), in units of each member's rate."""
    import torch.nn.functional as F

    from actlab.chapters.ch03_backprop import adam_first_step, first_layer_weights, first_update
    from actlab.ensemble import build_member, members_grid, train_ensemble

    X, y, _, _ = sine_table
    members = members_grid(range(2), ["sigmoid", "gelu"], lrs=[1e-3, 1e-4])
    res = train_ensemble(members, X, y, depth=10, width=64, num_epochs=2, device="cpu",
                         progress=False, probe=first_layer_weights, probe_epochs=[0, 1])  # fmt: skip
    for act in ("sigmoid", "gelu"):
        upd = first_update(res, activation=act, lr=1e-3)
        expected = []
        for i in res.where(activation=act, lr=1e-3):
            net = build_member(res.members[i], 1, 64, 10, 1)
            F.mse_loss(
                net(torch.tensor(X, dtype=torch.float32)), torch.tensor(y, dtype=torch.float32)
            ).backward()
            expected.append(adam_first_step(net[0].weight.grad.double().numpy()).mean())
        np.testing.assert_allclose(upd.move, expected, rtol=1e-3)
        assert np.all(upd.changed > 0.9)
    sig = first_update(res, activation="sigmoid", lr=1e-3)
    # below eps: a fraction of the rate
    assert np.all(sig.gradient < 1e-8) and np.all(sig.move < 0.1)
    assert np.all(first_update(res, activation="gelu").move > 0.5)
    # in units of its own rate a ten times smaller rate takes the same first step
    np.testing.assert_allclose(
        first_update(res, activation="sigmoid", lr=1e-4).move, sig.move, rtol=1e-2
    )
    with pytest.raises(ValueError):
        first_update(train_ensemble(members[:1], X, y, depth=2, width=8, num_epochs=1, device="cpu",
                                    progress=False), seed=0)  # fmt: skip


def test_chain_graph_shows_the_walk_through_numbers() -> None:
    """The graph figure is drawn from the chain's own values: every forward value, every
    gradient and every weight appears, in the order of the chain."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from actlab.chapters.ch03_backprop import chain_graph_figure
    from actlab.presentation.figures import check_figure
    from actlab.presentation.prose import num

    cp = chain_pass(1.5, 0.0, [0.8, -1.2, 1.1], [0.1, 0.4, -0.3])
    fig = chain_graph_figure(cp)
    check_figure(fig)
    ax = fig.axes[0]
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert sum(isinstance(p, Circle) for p in ax.patches) == 2 * 3 + 2  # x, z/a per layer, L
    forward = [cp.x, cp.z[0], cp.a[0], cp.z[1], cp.a[1], cp.z[2], cp.a[2], cp.loss]
    backward = [cp.dL_dx, cp.dL_dz[0], cp.dL_da[0], cp.dL_dz[1], cp.dL_da[1], cp.dL_dz[2]]
    backward += [cp.dL_da[2], 1.0]
    assert [texts[f"forward:{i}"] for i in range(8)] == [num(v) for v in forward]
    assert [texts[f"backward:{i}"] for i in range(8)] == [num(g) for g in backward]
    for k in range(3):
        assert texts[f"param-forward:{2 * k + 1}"] == num(cp.w[k])
        assert texts[f"param-backward:{2 * k + 1}"] == num(cp.dL_dw[k])
    assert texts["name:6"] == r"$\hat y$" and texts["name:7"] == "$L$"
    plt.close(fig)


def test_default_zero_bias_init_keeps_the_default_weights() -> None:
    """The extra init kind changes only the biases: same weights as PyTorch's default for the
    same seed, every bias 0; the default's biases are not 0."""
    from actlab.ensemble.members import Member, build_member

    default = build_member(Member(seed=3, activation="relu"), 4, 8, 3, 1)
    zeroed = build_member(Member(seed=3, activation="relu", init="default-zero-bias"), 4, 8, 3, 1)
    linears = [(a, b) for a, b in zip(default, zeroed) if isinstance(a, torch.nn.Linear)]
    assert len(linears) == 4
    for a, b in linears:
        assert torch.equal(a.weight, b.weight)
        assert a.bias.abs().max() > 0
        assert torch.count_nonzero(b.bias) == 0
