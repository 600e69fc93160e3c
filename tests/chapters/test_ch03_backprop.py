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


def test_gradient_norm_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    depths, acts, inits = [2, 4], ["sigmoid", "relu"], ["xavier", "he"]
    table = {
        (d, act, init): np.geomspace(10.0 ** -(d * (k + 1) + j), 1.0, d + 1)
        for d in depths
        for k, act in enumerate(acts)
        for j, init in enumerate(inits)
    }
    explorer = gradient_norm_explorer(table, depths, acts, inits)
    assert explorer.n_frames == 8
    assert len(set(explorer.render_all())) == 8
    live = explorer.live()
    depth, activation, init = controls(live)
    text = live.children[-1]
    before = text.value
    depth.index = 1
    assert text.value != before
    activation.index = 1
    init.index = 1
    assert text.value == explorer.frame_text_html((1, 1, 1))
    assert explorer.frame_alt((1, 1, 1)).startswith(
        "4 hidden layers of ReLU with He initialisation: the first layer's gradient "
        "norm is 1.0e\N{MINUS SIGN}09 times the last layer's"
    )
    # the buttons name the schemes as a reader knows them
    assert [label for label, _ in init.options] == ["Xavier", "He"]


def test_gradient_norm_frames_follow_the_figure_rule() -> None:
    import matplotlib.pyplot as plt

    from actlab.chapters.ch03_backprop import gradient_norm_figure
    from actlab.presentation.figures import check_figure

    table = {(3, "gelu", "default"): np.geomspace(1e-3, 1.0, 4)}
    fig = gradient_norm_figure(table, 3, "gelu", "default")
    check_figure(fig)  # content width, one panel a row, no text under 10 pt
    assert fig.axes[0].get_title().startswith("GELU, PyTorch default init")
    plt.close(fig)


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
