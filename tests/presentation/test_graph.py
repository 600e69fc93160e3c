"""The chain graph draws one node per quantity, every value and gradient, under the figure rule."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402

from actlab.presentation.figures import check_figure  # noqa: E402
from actlab.presentation.graph import BACKWARD_COLOUR, FORWARD_COLOUR, Param, chain_graph  # noqa: E402
from actlab.presentation.prose import MINUS  # noqa: E402

NAMES = ["$x$", "$z_1$", "$a_1$", "$z_2$", "$a_2$", "$L$"]
VALUES = [1.5, 1.3, 0.786, -0.543, 0.367, 0.138]
GRADS = [-0.00542, -0.00677, -0.0402, 0.0335, 0.144, 1.0]
PARAMS = [Param(1, "$w_1$", 0.8, -0.0102), Param(3, "$w_2$", -1.2, 0.0264)]


def texts_by_gid(fig: plt.Figure) -> dict[str, str]:
    return {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}


def test_one_node_per_name_and_one_box_per_parameter() -> None:
    fig = chain_graph(NAMES, VALUES, GRADS, PARAMS)
    patches = fig.axes[0].patches
    nodes = [p for p in patches if isinstance(p, Circle)]
    boxes = [p for p in patches if isinstance(p, FancyBboxPatch)]
    assert len(nodes) == len(NAMES)
    assert len(boxes) == len(PARAMS)
    texts = texts_by_gid(fig)
    assert [texts[f"name:{i}"] for i in range(len(NAMES))] == NAMES
    assert texts["pname:1"] == "$w_1$" and texts["pname:3"] == "$w_2$"
    plt.close(fig)


def test_every_value_and_gradient_is_written_in_its_colour() -> None:
    fig = chain_graph(NAMES, VALUES, GRADS, PARAMS)
    texts = {t.get_gid(): t for t in fig.axes[0].texts if t.get_gid()}
    for i, (v, g) in enumerate(zip(VALUES, GRADS)):
        assert texts[f"forward:{i}"].get_text() == f"{v:.3g}".replace("-", MINUS)
        assert texts[f"backward:{i}"].get_text() == f"{g:.3g}".replace("-", MINUS)
        assert texts[f"forward:{i}"].get_color() == FORWARD_COLOUR
        assert texts[f"backward:{i}"].get_color() == BACKWARD_COLOUR
    assert texts["param-forward:3"].get_text() == f"{MINUS}1.2"
    assert texts["param-backward:1"].get_text() == f"{MINUS}0.0102"
    # forward values above the arrows, gradients below them
    assert all(texts[f"forward:{i}"].get_position()[1] > 0 for i in range(len(NAMES)))
    assert all(texts[f"backward:{i}"].get_position()[1] < 0 for i in range(len(NAMES)))
    plt.close(fig)


def test_follows_the_figure_rule_with_a_key() -> None:
    fig = chain_graph(NAMES, VALUES, GRADS, {1: ("$w_1$", 0.8, -0.0102)})
    assert check_figure(fig) >= 10
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 2 and "forward" in labels[0] and "backward" in labels[1]
    plt.close(fig)


def test_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="one entry per node"):
        chain_graph(NAMES, VALUES[:-1], GRADS)
    with pytest.raises(ValueError, match="not in the chain"):
        chain_graph(NAMES, VALUES, GRADS, [Param(9, "$w$", 1.0, 0.0)])
