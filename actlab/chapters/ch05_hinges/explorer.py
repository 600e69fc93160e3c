"""Chapter 5's explorer: three ReLU units on the plane, their hinges on the x₁-axis and the
regions their lines cut."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from actlab.chapters.ch05_hinges.lines import Stage, line_partition, stages_from_weights
from actlab.chapters.ch05_hinges.plane import (
    arrangement_regions,
    box_regions,
    general_position_regions,
    plot_partition,
)
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import CATEGORICAL, OKABE_ITO, panels
from actlab.presentation.prose import num, nums, plural

#: The square of the plane the explorer draws, and the segment of the x₁-axis.
BOX = (-3.0, 3.0)


def three_units(w1: float, b2: float, b3: float) -> tuple[np.ndarray, np.ndarray, list[Stage]]:
    """``f(x) = ReLU(z₁) - ReLU(z₂) + ReLU(z₃)`` with ``z₁ = w₁x₁ + x₂``, ``z₂ = x₁ + x₂ + b₂``
    and ``z₃ = x₁ - x₂ + b₃``: the hidden layer's ``W`` and ``b``, and the network as stages."""
    W, b = np.array([[w1, 1.0], [1.0, 1.0], [1.0, -1.0]]), np.array([0.0, b2, b3])
    return W, b, stages_from_weights([(W, b), ([[1.0, -1.0, 1.0]], [0.0])])


def three_units_figure(w1: float, b2: float, b3: float) -> Figure:
    """One frame of :func:`three_unit_explorer`: ``f`` along the x₁-axis with its hinges
    (left) and the plane coloured by activation pattern with the units' lines (right)."""
    W, b, net = three_units(w1, b2, b3)
    fig, (ax1, ax2) = panels(2, height=3.2)
    part = line_partition(net, *BOX)
    ts = np.linspace(*BOX, 601)
    ax1.plot(ts, part(ts)[:, 0], color=CATEGORICAL[4], lw=2)
    for h in part.breakpoints:
        ax1.axvline(h, color=OKABE_ITO["black"], ls=":", lw=1)
    ax1.set(
        xlabel="$x_1$ (with $x_2 = 0$)", ylabel="$f$", xlim=BOX, ylim=(-2.5, 6.5),
        title=f"{part.n_regions} pieces on the axis",
    )  # fmt: skip
    plot_partition(ax2, net, *BOX, n=220)
    ax2.axhline(0, color=OKABE_ITO["grey"], lw=2, alpha=0.6)
    ax2.set_title(_regions_title(W, b))
    return fig


def _regions_title(W: np.ndarray, b: np.ndarray) -> str:
    """The plane panel's title: the exact regions, and how many of them meet the square drawn."""
    total, seen = arrangement_regions(W, b), box_regions(W, b, *BOX)
    where = "all in view" if seen == total else f"{seen} in view"
    return f"{total} regions ({where})"


def _describe_three_units(w1: float, b2: float, b3: float) -> str:
    """The finding of one frame: the pieces and hinges on the axis, the regions of the plane."""
    W, b, net = three_units(w1, b2, b3)
    part = line_partition(net, *BOX)
    k = len(part.breakpoints)
    hinges = f"{plural(k, 'hinge')} at {nums(part.breakpoints, 'g')}" if k else "no hinge"
    return (
        f"w₁ = {num(w1, 'g')}, b₂ = {num(b2, 'g')}, b₃ = {num(b3, 'g')}: {part.n_regions} "
        f"pieces on the x₁-axis ({hinges}); the lines cut the plane into "
        f"{arrangement_regions(W, b)} regions, {general_position_regions(3)} in general position"
    )


def three_unit_explorer(
    w1s: Sequence[float] = (-1.0, 0.0, 1.0, 2.0),
    b2s: Sequence[float] = (0.0, 1.0),
    b3s: Sequence[float] = (0.0, -1.0),
    start: tuple[float, float, float] = (2.0, 1.0, -1.0),
) -> Explorer:
    """Chapter 5's explorer: ``w₁ x b₂ x b₃`` -> hinges on a line and regions of the plane.

    Args:
        w1s, b2s, b3s: the values of the three controls, in display order.
        start: the ``(w₁, b₂, b₃)`` shown first; each must be one of its control's values.
    """
    w1, b2, b3 = start
    return Explorer(
        three_units_figure,
        [
            Control("w1", [float(v) for v in w1s], label="w₁", default=w1),
            Control("b2", [float(v) for v in b2s], label="b₂", kind="buttons", default=b2),
            Control("b3", [float(v) for v in b3s], label="b₃", kind="buttons", default=b3),
        ],
        describe=_describe_three_units,
        title="Three units → hinges on a line and regions of the plane",
    )
