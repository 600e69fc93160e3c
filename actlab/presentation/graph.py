"""Computational graphs of a chain of scalar operations, drawn with the numbers that flow
through them (chapter 3's backprop walk-through).

A chain ``x -> z1 -> a1 -> ... -> y_hat -> L`` is drawn as one row of circled nodes joined by
arrows. Above each arrow stands the value the forward pass sends along it (the value of the
node the arrow leaves); below it, in the gradient colour, the gradient the backward pass sends
back along it, ``dL/d(that node)``. Parameters (the weights) are boxes above the node they
enter, with their value and their gradient beside them in the same two colours. The last node
(the loss) carries its value above it and ``dL/dL = 1`` below it.

The figure follows the figure rule of :mod:`actlab.presentation.figures` (content width, no
text under 10 pt): make it with :func:`chain_graph` and show it with
:func:`actlab.presentation.figures.show`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from actlab.presentation.figures import OKABE_ITO, panels
from actlab.presentation.prose import num

#: Colour of the values the forward pass computes.
FORWARD_COLOUR = OKABE_ITO["black"]
#: Colour of the gradients the backward pass computes.
BACKWARD_COLOUR = OKABE_ITO["vermillion"]
#: Colour of the parameters' boxes.
PARAM_COLOUR = OKABE_ITO["blue"]


@dataclass(frozen=True)
class Param:
    """A parameter entering node ``target`` of the chain: its label, value and gradient."""

    target: int
    label: str
    value: float
    grad: float


def chain_graph(
    names: Sequence[str],
    values: Sequence[float],
    grads: Sequence[float],
    params: Sequence[Param] | Mapping[int, tuple[str, float, float]] = (),
    *,
    spec: str = ".3g",
    height: float = 2.9,
) -> Figure:
    """Draw the chain ``names[0] -> names[1] -> ...`` with forward values and gradients.

    Args:
        names: the label of each node in order (matplotlib mathtext allowed, ``"$z_1$"``).
        values: the forward value of each node.
        grads: the gradient of the loss with respect to each node (``1`` for the loss itself).
        params: parameters entering nodes of the chain, as :class:`Param` or as a mapping
            ``target -> (label, value, grad)``.
        spec: format of every number (through :func:`actlab.presentation.prose.num`).
        height: height of the figure in inches.

    Returns:
        The figure (one panel without axes). Every node and parameter has a ``gid`` of the
        form ``node:<i>`` or ``param:<target>``; every number is a text whose ``gid`` says what
        it is: ``forward:<i>``, ``backward:<i>``, ``param-forward:<target>``,
        ``param-backward:<target>``.
    """
    n = len(names)
    if n < 2 or len(values) != n or len(grads) != n:
        raise ValueError("names, values and grads need one entry per node (at least two)")
    if isinstance(params, Mapping):
        params = [Param(t, *p) for t, p in params.items()]
    for p in params:
        if not 0 <= p.target < n:
            raise ValueError(f"parameter {p.label!r} enters node {p.target}, not in the chain")

    fig, (ax,) = panels(1, height=height)
    ax.set_axis_off()
    ax.set(xlim=(-0.5, n - 0.5), ylim=(-0.75, 1.95 if params else 0.75), aspect="equal")
    radius = 0.25
    gap = radius + 0.06  # numbers sit clear of the nodes, above and below the arrows

    def number(x: float, y: float, value: float, kind: str, where: str, ha: str = "center") -> None:
        colour = FORWARD_COLOUR if kind.endswith("forward") else BACKWARD_COLOUR
        va = "bottom" if kind.endswith("forward") else "top"
        text = num(value, spec)
        ax.text(x, y, text, ha=ha, va=va, fontsize=10, color=colour, gid=f"{kind}:{where}")

    for i, name in enumerate(names):
        node = Circle((i, 0), radius, facecolor="white", edgecolor="0.2", lw=1.2, gid=f"node:{i}")
        ax.add_patch(node)
        ax.text(i, 0, name, va="center", ha="center", fontsize=12, gid=f"name:{i}")
    for i in range(n - 1):
        ax.add_patch(_arrow((i + radius, 0), (i + 1 - radius, 0)))
        number(i + 0.5, gap, values[i], "forward", str(i))
        number(i + 0.5, -gap, grads[i], "backward", str(i))
    # the loss has no arrow leaving it: its value stands above it, clear of the last arrow's
    last = n - 1
    number(last, gap + 0.25, values[last], "forward", str(last))
    number(last, -gap, grads[last], "backward", str(last))

    for p in params:
        x0, y0 = p.target, 1.5
        box = FancyBboxPatch(
            (x0 - 0.22, y0 - 0.2), 0.44, 0.4, boxstyle="round,pad=0.02",
            facecolor="white", edgecolor=PARAM_COLOUR, lw=1.2, gid=f"param:{p.target}",
        )  # fmt: skip
        ax.add_patch(box)
        ax.text(x0, y0, p.label, va="center", ha="center", fontsize=12, color=PARAM_COLOUR,
                gid=f"pname:{p.target}")  # fmt: skip
        ax.add_patch(_arrow((x0, y0 - 0.24), (x0, radius + 0.02), colour=PARAM_COLOUR))
        number(x0 + 0.3, y0 + 0.04, p.value, "param-forward", str(p.target), ha="left")
        number(x0 + 0.3, y0 - 0.04, p.grad, "param-backward", str(p.target), ha="left")

    handles = [
        Line2D([], [], color=FORWARD_COLOUR, lw=2, label="forward pass: the value (above)"),
        Line2D([], [], color=BACKWARD_COLOUR, lw=2, label="backward pass: ∂L/∂ that value (below)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    return fig


def _arrow(
    start: tuple[float, float], end: tuple[float, float], colour: str = "0.2"
) -> FancyArrowPatch:
    return FancyArrowPatch(
        start, end, arrowstyle="-|>", mutation_scale=12, color=colour, lw=1.2, shrinkA=0, shrinkB=0
    )


__all__ = ["BACKWARD_COLOUR", "FORWARD_COLOUR", "PARAM_COLOUR", "Param", "chain_graph"]
