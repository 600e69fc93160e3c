"""Figures that say what they show: one palette, one way to display, alt text from the values.

Every figure in the course goes through :func:`show` (or, inside an explorer,
:func:`describe_figure`). ``show(fig, summary, table=...)`` renders the figure
into an ``<img>`` whose ``alt`` text is the cell's own sentence about the
finding (an f-string over the computed values, never typed numbers) followed by
what the figure is made of, read off the matplotlib objects: the panels, their
axis labels and ranges, the curves in each legend. The numbers behind the
figure, when given, follow it as a table in a collapsible block, so a reader
who cannot see the plot can still read the data.

The palette is Okabe and Ito's colour-blind-safe set; :func:`use_style`
installs it as matplotlib's colour cycle together with a line-style cycle, so
curves differ by more than colour. Figures are drawn on an opaque white
background and stay legible when the page is in dark mode.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from actlab.engine.activations import ACTIVATIONS

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every
#: common form of colour blindness. Named so that chapters can refer to a hue.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "grey": "#999999",
    "black": "#000000",
}

#: The order of the colour cycle: yellow is left out (too little contrast on
#: white for a thin line), black is last.
CYCLE_COLOURS = tuple(
    OKABE_ITO[name]
    for name in (
        "blue",
        "vermillion",
        "bluish green",
        "reddish purple",
        "orange",
        "sky blue",
        "black",
    )
)
CYCLE_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))

#: The palette in Okabe and Ito's own order, for categorical fills where hues are picked
#: by index (chapter 5's region maps): black is left out.
CATEGORICAL = tuple(
    OKABE_ITO[name]
    for name in (
        "orange",
        "sky blue",
        "bluish green",
        "yellow",
        "blue",
        "vermillion",
        "reddish purple",
        "grey",
    )
)


def activation_style(name: str) -> dict[str, Any]:
    """The line of activation ``name`` in every figure (colour, dash pattern, marker), from
    the registry (:mod:`actlab.engine.activations`): one look per activation across chapters."""
    act = ACTIVATIONS[name]
    return {"color": OKABE_ITO[act.colour], "ls": act.dash, "marker": act.marker}


#: :func:`activation_style` of every registry activation, by name.
STYLES: dict[str, dict[str, Any]] = {name: activation_style(name) for name in ACTIVATIONS}

#: A perceptually uniform map for heatmaps (legible in grey scale and to colour-blind readers).
SEQUENTIAL_CMAP = "viridis"


def line_style(i: int) -> dict[str, Any]:
    """Colour and line style of curve ``i``: distinct pairs for the first 49 curves of a panel."""
    n = len(CYCLE_COLOURS)
    return {"color": CYCLE_COLOURS[i % n], "linestyle": CYCLE_LINESTYLES[(i + i // n) % n]}


def use_style() -> None:
    """Install the course's matplotlib style: Okabe–Ito colours, distinct line styles, white background."""
    mpl.rcParams["axes.prop_cycle"] = cycler(color=CYCLE_COLOURS) + cycler(
        linestyle=CYCLE_LINESTYLES
    )
    mpl.rcParams["image.cmap"] = SEQUENTIAL_CMAP
    mpl.rcParams["figure.facecolor"] = "white"
    mpl.rcParams["savefig.facecolor"] = "white"
    mpl.rcParams["legend.framealpha"] = 0.9


def _num(x: float) -> str:
    return f"{x:.3g}"


def _axis_text(label: str, lim: tuple[float, float], log: bool) -> str:
    lo, hi = sorted(lim)
    name = f"'{label}'" if label else "unlabelled axis"
    scale = ", log scale" if log else ""
    return f"{name} from {_num(lo)} to {_num(hi)}{scale}"


def _clean(text: str) -> str:
    """Matplotlib mathtext to plain words for a screen reader: ``$\\mathrm{ReLU}$`` -> ``ReLU``."""
    text = re.sub(r"\\(?:mathrm|mathit|mathbf|text|operatorname)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)
    return " ".join(text.replace("$", "").replace("{", "").replace("}", "").split())


def _extent(ax: Axes, axis: str) -> tuple[float, float]:
    """The range shown on one axis: the limits set by the figure's code, else what the data cover."""
    explicit = not (ax.get_autoscalex_on() if axis == "x" else ax.get_autoscaley_on())
    if explicit:
        return ax.get_xlim() if axis == "x" else ax.get_ylim()
    lo, hi = (ax.dataLim.x0, ax.dataLim.x1) if axis == "x" else (ax.dataLim.y0, ax.dataLim.y1)
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        return lo, hi
    return ax.get_xlim() if axis == "x" else ax.get_ylim()


def _is_colorbar(ax: Axes) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def _axis_part(ax: Axes, axis: str) -> str | None:
    """``'label' from a to b`` for one axis, or None for a bare axis (no label, no ticks)."""
    label = _clean(ax.get_xlabel() if axis == "x" else ax.get_ylabel())
    ticks = ax.get_xticks() if axis == "x" else ax.get_yticks()
    if not label and len(ticks) == 0:
        return None
    log = (ax.get_xscale() if axis == "x" else ax.get_yscale()) == "log"
    return _axis_text(label, _extent(ax, axis), log)


def _kind(ax: Axes) -> str:
    if ax.get_images():
        return "heatmap"
    if ax.patches and not ax.lines:
        return "histogram or bars"
    if ax.collections and not ax.lines:
        return "scatter or filled plot"
    return "plot"


def describe_axes(ax: Axes) -> str:
    """One sentence on one panel: its title, what is plotted against what, and the named curves."""
    title = _clean(ax.get_title())
    head = f"{_kind(ax)} '{title}'" if title else _kind(ax)
    axes = [
        f"{side} {part}"
        for side, part in (("vertical", _axis_part(ax, "y")), ("horizontal", _axis_part(ax, "x")))
        if part
    ]
    parts = [f"{head}: {', '.join(axes)}" if axes else head]
    _, labels = ax.get_legend_handles_labels()
    labels = [_clean(lab) for lab in labels if lab and not lab.startswith("_")]
    if labels:
        parts.append("shows " + ", ".join(dict.fromkeys(labels)))
    elif 0 < len(ax.lines) <= 8 and not ax.get_images():
        n = len(ax.lines)
        parts.append(f"{n} unlabelled line{'s' if n != 1 else ''}")
    return "; ".join(parts)


#: Above this many panels a figure is described by its grid and panel titles only.
MAX_DETAILED_PANELS = 4


def describe_figure(fig: Figure) -> str:
    """What a figure is made of, read off its artists: every panel, in reading order."""
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib Figure, got {type(fig).__name__}")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison and not _is_colorbar(ax)]
    sup = _clean(fig.get_suptitle())
    bits = [f"'{sup}'."] if sup else []
    if not panels:
        bits.append("A figure with no axes.")
    elif len(panels) == 1:
        first = describe_axes(panels[0])
        bits.append(first[:1].upper() + first[1:] + ".")
    elif len(panels) <= MAX_DETAILED_PANELS:
        bits.append(f"{len(panels)} panels.")
        bits += [f"Panel {i}: {describe_axes(ax)}." for i, ax in enumerate(panels, 1)]
    else:
        # the layout as the reader sees it: distinct panel rows and columns on the page
        rows = len({round(ax.get_position().y0, 2) for ax in panels})
        cols = len({round(ax.get_position().x0, 2) for ax in panels})
        grid = (
            f" in {rows} row{'s' if rows != 1 else ''} of {cols}"
            if rows * cols >= len(panels)
            else ""
        )
        titles = [_clean(ax.get_title()) for ax in panels]
        named = ", ".join(f"'{t}'" for t in titles if t)
        bits.append(
            f"{len(panels)} {_kind(panels[0])} panels{grid}" + (f": {named}." if named else ".")
        )
        shared = {describe_axes(ax).split(": ", 1)[-1] for ax in panels if _axis_part(ax, "x")}
        if len(shared) == 1:
            bits.append(f"Each panel: {shared.pop()}.")
    return " ".join(bits)


def alt_text(fig: Figure, summary: str) -> str:
    """The finding (the caller's sentence) first, then the figure's structure."""
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("a figure needs a summary sentence that says what it shows")
    summary = " ".join(summary.split())
    if summary[-1] not in ".!?":
        summary += "."
    return f"{summary} {describe_figure(fig)}"


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes on a white background and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def img_tag(png: bytes, alt: str, cls: str = "actlab-figure-img") -> str:
    """An ``<img>`` element holding ``png`` inline, with ``alt`` escaped."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="{cls}" src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
        'style="max-width:100%;height:auto;background:white">'
    )


TableLike = Any  # a pandas DataFrame, or a mapping of column name -> sequence


def _table_html(table: TableLike, caption: str) -> str:
    import pandas as pd

    if isinstance(table, Mapping):
        table = pd.DataFrame(dict(table))
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"table must be a DataFrame or a mapping of columns, got {type(table).__name__}"
        )
    body = table.to_html(
        float_format=lambda v: f"{v:.4g}",
        border=0,
        classes="actlab-figure-table",
        index=_index_matters(table),
    )
    return (
        '<details class="actlab-figure-data"><summary>The numbers behind this figure</summary>'
        f'<p class="actlab-table-caption">{html.escape(caption)}</p>{body}</details>'
    )


def _index_matters(df: Any) -> bool:
    import pandas as pd

    return not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1)


class DescribedFigure:
    """A rendered figure with its alt text (and optional data table), displayed as HTML."""

    def __init__(self, png: bytes, alt: str, table_html: str = "") -> None:
        self.png, self.alt, self.table_html = png, alt, table_html

    def _repr_html_(self) -> str:
        return (
            f'<figure class="actlab-figure">{img_tag(self.png, self.alt)}{self.table_html}</figure>'
        )

    def __repr__(self) -> str:  # plain-text front ends read the description
        return f"[figure] {self.alt}"


def show(
    fig: Figure,
    summary: str,
    table: TableLike | None = None,
    table_caption: str | None = None,
    dpi: int = 100,
    display: bool = True,
) -> DescribedFigure | None:
    """Display ``fig`` with alt text that says what it shows, and its data as a table.

    Args:
        fig: the finished figure (it is closed here, so it is not drawn twice).
        summary: one or two sentences with the finding, built from computed values.
        table: the numbers behind the figure (DataFrame or mapping of columns).
        table_caption: what the table holds (defaults to the summary).
        display: display the result (in a notebook) and return None, so that a
            ``show(...)`` on a cell's last line is not displayed twice; with
            ``display=False`` the result is returned instead.
    """
    alt = alt_text(fig, summary)
    tbl = "" if table is None else _table_html(table, table_caption or summary)
    out = DescribedFigure(png_bytes(fig, dpi=dpi), alt, tbl)
    if not display:
        return out
    from IPython.display import display as ipy_display

    ipy_display(out)
    return None


__all__: Sequence[str] = (
    "CATEGORICAL",
    "CYCLE_COLOURS",
    "OKABE_ITO",
    "DescribedFigure",
    "alt_text",
    "describe_axes",
    "describe_figure",
    "img_tag",
    "STYLES",
    "activation_style",
    "line_style",
    "png_bytes",
    "show",
    "use_style",
)
