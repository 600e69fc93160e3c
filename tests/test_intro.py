"""The introduction: its worked example (the learning signal per layer at initialisation),
the notation table, and where the course's files are published (from ``_config.yml``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT

from actlab.chapters.intro import (
    Published,
    binder_url,
    find_config,
    first_layer_table,
    how_to_get_the_files,
    line_key,
    pre_activation_grads,
    published,
    published_from,
    relative_signal,
    signal_figure,
    signal_per_layer,
)
from actlab.engine.activations import get
from actlab.engine.data import noisy_sine
from actlab.engine.models import mlp
from actlab.presentation.figures import check_figure

INTRO = ROOT / "book" / "intro.md"


def _config(**context: str) -> dict:
    """The book's _config.yml with ``html_context`` settings replaced by ``context``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"]["html_context"] = {"default_mode": "auto", **context}
    return config


# ---------------------------------------------------------------------------
# The signal: dL/dz per hidden layer, as the notation table writes backprop
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_the_signal_is_the_notation_tables_backward_pass(activation: str) -> None:
    """dL/dz_k by autograd equals the table's recursion: the output layer's W^T times the
    loss's gradient, then each layer's W^T (delta * dphi(z)) one layer down."""
    torch.manual_seed(3)
    net = mlp(2, 5, 3, 1, activation=activation).double()
    X, y = torch.randn(7, 2, dtype=torch.float64), torch.randn(7, 1, dtype=torch.float64)
    got = pre_activation_grads(net, X, y)

    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        zs, h = [], X
        for layer in linears[:-1]:
            zs.append(layer(h))
            h = get(activation).torch_fn(zs[-1])
        y_hat = linears[-1](h)
        delta = 2 * (y_hat - y) / y_hat.numel()  # dL/dy_hat of the mean squared error
        want = [None] * len(zs)
        for k in reversed(range(len(zs))):
            delta = delta @ linears[k + 1].weight  # W^T(...), examples as rows
            want[k] = delta * get(activation).torch_dfn(zs[k])
            delta = want[k]
    assert len(got) == len(want) == 3
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(g, w, msg=f"layer {k + 1}")
    assert all(p.grad is None for p in net.parameters()), "the network keeps no gradients"


def test_signal_per_layer_is_the_root_mean_square() -> None:
    torch.manual_seed(0)
    net = mlp(1, 4, 2, 1, activation="tanh")
    X, y = torch.randn(9, 1), torch.randn(9, 1)
    rms = signal_per_layer(net, X, y)
    grads = pre_activation_grads(net, X, y)
    assert rms.shape == (2,)
    np.testing.assert_allclose(rms, [float(g.pow(2).mean().sqrt()) for g in grads], rtol=1e-6)


def test_relative_signal_is_per_seed_and_ends_at_one() -> None:
    X, y = noisy_sine(40)
    r = relative_signal(["sigmoid", "relu"], ["default", "he"], range(3), X, y, depth=4, width=8)
    assert set(r) == {
        ("sigmoid", "default"),
        ("sigmoid", "he"),
        ("relu", "default"),
        ("relu", "he"),
    }
    for ratios in r.values():
        assert ratios.shape == (3, 4)
        np.testing.assert_allclose(ratios[:, -1], 1.0)
        assert len({tuple(row) for row in ratios.round(12)}) == 3, "each seed its own network"
    # the same seed builds the same network: the computation repeats exactly
    again = relative_signal(["relu"], ["he"], range(3), X, y, depth=4, width=8)
    np.testing.assert_array_equal(again["relu", "he"], r["relu", "he"])


def test_the_sigmoid_signal_fades_with_depth_at_the_default_initialisation() -> None:
    """The introduction's finding at a small scale: sigmoid's slope is at most 1/4, and
    PyTorch's default weights (variance 1/(3 fan-in)) give a factor well below 1 per layer."""
    X, y = noisy_sine(50)
    r = relative_signal(["sigmoid"], ["default"], range(5), X, y, depth=6, width=32)
    per_layer = r["sigmoid", "default"][:, 0] ** (1 / 5)
    assert np.all(per_layer < 0.25), per_layer


def test_the_figure_and_table_follow_the_rules() -> None:
    X, y = noisy_sine(30)
    acts, inits = ["sigmoid", "tanh", "relu"], ["default", "he"]
    r = relative_signal(acts, inits, range(2), X, y, depth=3, width=8)
    fig = signal_figure(r, acts, inits)
    check_figure(fig)
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    low = min(v.min() for v in r.values())
    for ax in fig.axes:
        bottom, top = ax.get_ylim()
        assert bottom < low and top > 1, "the axes frame every seed's value"
    table = first_layer_table(r, acts, inits)
    assert list(table["activation"]) == ["sigmoid", "tanh", "ReLU"] * 2
    assert set(table["initialisation"]) == {"PyTorch default", "He"}
    assert not table.to_string().count("-"), "numbers carry a true minus sign"


def test_line_key_reads_the_registry_styles() -> None:
    assert line_key(["sigmoid", "relu"]) == (
        "sigmoid black, dotted, crosses; ReLU sky blue, solid, squares"
    )
    with pytest.raises(KeyError):
        line_key(["gelu"])  # its dash pattern has no words here


# ---------------------------------------------------------------------------
# Where the files are: _config.yml through the launch buttons' own code
# ---------------------------------------------------------------------------


def test_no_repository_address_gives_no_address_and_says_how_to_get_the_files() -> None:
    where = published(_config(actlab_repository_url=""), ROOT)
    assert where == Published()
    text = how_to_get_the_files(where)
    assert "without a published repository address" in text
    assert "_config.yml" in text and "folder" in text
    assert not re.search(r"ORG|REPO|https?://|binder\.org", text), text


def test_a_github_address_gives_the_clone_and_binder_links() -> None:
    where = published(_config(actlab_repository_url="https://github.com/someone/course/"), ROOT)
    assert where.repository == "https://github.com/someone/course"
    assert where.branch == "main"
    assert where.binder == (
        "https://mybinder.org/v2/gh/someone/course/main?urlpath=lab/tree/book/intro.md"
    )
    assert where.jupyterhub == ""
    text = how_to_get_the_files(where)
    assert "git clone https://github.com/someone/course" in text
    assert f"]({where.binder})" in text
    assert "without a published" not in text and "JupyterHub" not in text


def test_branch_binderhub_and_jupyterhub_settings_are_followed() -> None:
    config = _config(
        actlab_repository_url="https://gitlab.com/group/course",
        actlab_repository_branch="spring",
        actlab_binderhub_url="https://binder.example.org/",
        actlab_jupyterhub_url="https://hub.example.org/",
    )
    where = published(config, ROOT)
    assert where.branch == "spring"
    assert where.binder == (
        "https://binder.example.org/v2/gl/group%2Fcourse/spring?urlpath=lab/tree/book/intro.md"
    )
    assert where.jupyterhub == "https://hub.example.org"
    assert "<https://hub.example.org>" in how_to_get_the_files(where)


def test_binder_url_for_any_git_host() -> None:
    url = binder_url(
        "https://mybinder.org", "https://git.example.org/a/b.git", "main", "lab/tree", "x.md"
    )
    assert url == (
        "https://mybinder.org/v2/git/https%3A//git.example.org/a/b.git/main?urlpath=lab/tree/x.md"
    )


def test_the_page_reads_the_books_own_config(tmp_path) -> None:
    assert find_config(ROOT / "book") == ROOT / "_config.yml"
    assert find_config(tmp_path) == ROOT / "_config.yml", "found above the library"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["sphinx"]["config"]["html_context"].get("actlab_repository_url", "")
    assert bool(published_from(ROOT / "_config.yml").repository) == bool(url.strip())


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------


def test_the_page_glues_the_files_paragraph_and_types_no_address() -> None:
    text = INTRO.read_text()
    assert "{glue:md}`get_the_files`" in text
    assert "published_from(find_config())" in text
    prose = re.sub(r"^```\{code-cell\}.*?^```", "", text, flags=re.S | re.M)
    assert not re.search(r"ORG/REPO|mybinder|github\.com|clone the repository", prose)


def test_the_notation_table_has_the_backward_pass_and_the_depth() -> None:
    rows = [line for line in INTRO.read_text().splitlines() if line.startswith("| $")]
    by_symbol = {row.split("|")[1].strip(): row for row in rows}
    passes_back = by_symbol[r"$W^{\mathrm{T}}(\delta \odot \dact(\pre))$"]
    assert "what a layer passes back" in passes_back and "input" in passes_back
    assert "pre-activation" in by_symbol[r"$\partial L / \partial \pre = \delta \odot \dact(\pre)$"]
    assert "`depth`" in by_symbol["$D$"] and "layers" in by_symbol["$D$"]
    assert (
        "what a layer passes back"
        not in by_symbol[r"$\partial L / \partial \pre = \delta \odot \dact(\pre)$"]
    )
