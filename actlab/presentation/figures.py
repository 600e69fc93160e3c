"""Figures that say what they show: one palette, one way to display, alt text from the values.

Every figure in the course goes through :func:`show` (or, inside an explorer,
:func:`describe_figure`). ``show(fig, summary, table=...)`` renders the figure
into an ``<img>`` whose ``alt`` text is the cell's own sentence about the
finding (an f-string over the computed values, never typed numbers) followed by
what the figure is made of, read off the matplotlib objects: the panels, their
axis labels and ranges, the curves in each legend. The numbers behind the
figure, when given, follow it as a table in a collapsible block, so a reader
who cannot see the plot can still read the data.

One rule sizes every figure and explorer frame for the page it lands on
(:func:`check_figure`, applied by :func:`show` and by the explorers): drawn at the
page's content width (:data:`CONTENT_WIDTH_IN`, made with :func:`panels`), at most
two panels per row, no text under :data:`MIN_FONT_PT`, rendered at twice the
pixel density it is shown at. ``show(..., name=...)`` glues the figure for a
numbered MyST ``{glue:figure}`` with a visible caption.

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
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from actlab.engine.activations import ACTIVATIONS
from actlab.presentation.prose import num

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

#: The page's content width at 1280 px (the theme's article column, 672 CSS px), in inches
#: of :data:`CSS_DPI`: a figure this wide is shown at its drawn size, text at its point size.
CONTENT_WIDTH_IN = 6.7
#: CSS pixels per inch of a figure: matplotlib's 100 dpi is one CSS pixel per figure pixel.
CSS_DPI = 100
#: Pixels per CSS pixel in the rendered PNG (sharp on high-density screens and when zoomed).
DENSITY = 2
#: The smallest text in any figure, in points at content width (≈ 13.9 CSS px).
MIN_FONT_PT = 10.0
#: The most panels side by side at content width; larger grids wrap onto more rows.
MAX_COLUMNS = 2


class FigureRuleError(ValueError):
    """A figure that breaks the course's figure rule (too wide, too many columns, tiny text)."""


def panels(
    n: int = 1,
    *,
    height: float = 2.6,
    ncols: int | None = None,
    sharex: bool | str = False,
    sharey: bool | str = False,
    **subplot_kw: Any,
) -> tuple[Figure, list[Axes]]:
    """A figure at content width with ``n`` panels, at most :data:`MAX_COLUMNS` per row.

    Args:
        n: number of panels; more than two wrap onto further rows (reading order).
        height: height of one row of panels, in inches.
        ncols: panels per row (1 or 2; default 2 when ``n`` > 1).
        sharex, sharey: as in :func:`matplotlib.pyplot.subplots`.

    Returns:
        the figure (constrained layout) and a flat list of exactly ``n`` Axes.
    """
    if n < 1:
        raise ValueError(f"a figure needs at least one panel, got {n}")
    ncols = ncols or (1 if n == 1 else MAX_COLUMNS)
    if not 1 <= ncols <= MAX_COLUMNS:
        raise FigureRuleError(f"at most {MAX_COLUMNS} panels per row, got ncols={ncols}")
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(CONTENT_WIDTH_IN, height * nrows),
        sharex=sharex,
        sharey=sharey,
        squeeze=False,
        layout="constrained",
        subplot_kw=subplot_kw or None,
    )
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def _texts(fig: Figure) -> list[mpl.text.Text]:
    """Every visible, non-empty text of a figure (titles, labels, ticks, legends, notes)."""
    return [t for t in fig.findobj(mpl.text.Text) if t.get_visible() and t.get_text().strip()]


def check_figure(fig: Figure, *, drawn: bool = False) -> float:
    """Raise :class:`FigureRuleError` unless ``fig`` follows the figure rule; return its
    smallest font size in points.

    The rule: at most :data:`CONTENT_WIDTH_IN` wide, at most :data:`MAX_COLUMNS` panels
    side by side, no text smaller than :data:`MIN_FONT_PT`. Tick labels exist only once a
    figure is drawn, so the figure is drawn first unless ``drawn`` says it just was.
    """
    problems = []
    width = fig.get_figwidth()
    if width > CONTENT_WIDTH_IN + 0.01:
        problems.append(
            f"it is {width:.2f} in wide, more than the page's {CONTENT_WIDTH_IN} in "
            "(make it with panels())"
        )
    plotted = [ax for ax in fig.axes if ax.get_visible() and ax.axison and not _is_colorbar(ax)]
    columns = len({round(ax.get_position().x0, 2) for ax in plotted})
    if columns > MAX_COLUMNS:
        problems.append(f"it has {columns} panels side by side (at most {MAX_COLUMNS}; wrap them)")
    if not drawn:
        fig.canvas.draw()
    small = sorted({(t.get_fontsize(), _clean(t.get_text())[:30]) for t in _texts(fig)})
    tiny = [f"'{text}' at {size:g} pt" for size, text in small if size < MIN_FONT_PT]
    if tiny:
        problems.append(f"text under {MIN_FONT_PT:g} pt: " + ", ".join(tiny[:5]))
    if problems:
        raise FigureRuleError("this figure breaks the figure rule: " + "; ".join(problems))
    return min((size for size, _ in small), default=MIN_FONT_PT)


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
    # text sizes at content width: nothing under MIN_FONT_PT
    for key, size in (
        ("font.size", 11),
        ("axes.titlesize", 11),
        ("axes.labelsize", 11),
        ("xtick.labelsize", 10),
        ("ytick.labelsize", 10),
        ("legend.fontsize", 10),
        ("legend.title_fontsize", 10),
        ("figure.titlesize", 12),
    ):
        mpl.rcParams[key] = size


def _num(x: float) -> str:
    return f"{x:.3g}"


def _axis_text(label: str, lim: tuple[float, float], log: bool) -> str:
    lo, hi = sorted(lim)
    name = f"'{label}'" if label else "unlabelled axis"
    scale = ", log scale" if log else ""
    return f"{name} from {_num(lo)} to {_num(hi)}{scale}"


#: Mathtext symbols as the characters a screen reader says (``\\varphi`` -> "φ", not "varphi").
_SYMBOLS = {
    "varphi": "φ",
    "phi": "φ",
    "Phi": "Φ",
    "sigma": "σ",
    "alpha": "α",
    "beta": "β",
    "delta": "δ",
    "Delta": "Δ",
    "epsilon": "ε",
    "eta": "η",
    "lambda": "λ",
    "mu": "μ",
    "pi": "π",
    "theta": "θ",
    "partial": "∂",
    "nabla": "∇",
    "times": "×",
    "cdot": "·",
    "approx": "≈",
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "pm": "±",
    "infty": "∞",
    "prime": "′",
}


def _clean(text: str) -> str:
    """Matplotlib mathtext to plain words for a screen reader: ``$\\mathrm{ReLU}$`` -> ``ReLU``,
    ``$\\varphi'(z)$`` -> ``φ'(z)``, ``$w_2$`` -> ``w2``, ``$10^{-3}$`` -> ``10^−3``."""
    text = re.sub(r"\\(?:mathrm|mathit|mathbf|text|operatorname)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _SYMBOLS.get(m[1], m[1]), text)
    if "$" in text:  # inside math: subscripts run on, a minus is a minus
        text = re.sub(r"_\{([^}]*)\}|_(\w)", lambda m: m[1] or m[2], text)
        text = re.sub(r"\$([^$]*)\$", lambda m: m[1].replace("-", "−"), text)
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


def _savefig(fig: Figure, dpi: int) -> bytes:
    """The full-colour PNG of ``fig`` on a white background (the figure stays open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.04, facecolor="white")
    return buf.getvalue()


def _palette(png: bytes) -> bytes:
    """``png`` reduced to an adaptive palette of 256 colours: a plot's flat fills and
    anti-aliased edges need no more, and the file is about a third of the full-colour one
    (an explorer holds dozens of frames)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        small, format="PNG", optimize=True
    )
    return small.getvalue()


def png_bytes(fig: Figure, dpi: int = CSS_DPI * DENSITY) -> bytes:
    """Render ``fig`` to PNG bytes (white background, 256-colour palette) and close it."""
    try:
        return _palette(_savefig(fig, dpi))
    finally:
        plt.close(fig)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels, read from the PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@dataclass(frozen=True)
class Rendered:
    """A figure rendered under the figure rule: the PNG and its smallest text in points."""

    png: bytes
    min_font_pt: float = MIN_FONT_PT
    density: int = DENSITY


def render(fig: Figure) -> Rendered:
    """Check ``fig`` against the figure rule (:func:`check_figure`) and render it at
    :data:`DENSITY` times the pixel density it is shown at."""
    try:
        png = _savefig(fig, CSS_DPI * DENSITY)  # saving draws the figure: check that drawing
        smallest = check_figure(fig, drawn=True)
    finally:
        plt.close(fig)
    return Rendered(_palette(png), smallest)


def img_tag(png: bytes | Rendered, alt: str, cls: str = "actlab-figure-img") -> str:
    """An ``<img>`` element holding ``png`` inline, with ``alt`` escaped.

    A :class:`Rendered` figure is shown at its CSS size (pixels over the density) and
    carries ``data-font-px``, its smallest text in the image's own pixels, so that a
    browser test can measure the text size a reader sees.
    """
    extra = ""
    if isinstance(png, Rendered):
        width, height = png_size(png.png)
        extra = (
            f' width="{round(width / png.density)}" height="{round(height / png.density)}"'
            f' data-font-px="{png.min_font_pt * CSS_DPI * png.density / 72:.1f}"'
        )
        png = png.png
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="{cls}" src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{extra} '
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
        float_format=lambda v: num(v, ".4g"),
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
    """A rendered figure with its alt text (and optional data table), displayed as HTML
    (and, for a PDF, as its PNG)."""

    def __init__(self, png: bytes | Rendered, alt: str, table_html: str = "") -> None:
        self.png, self.alt, self.table_html = png, alt, table_html

    def _repr_html_(self) -> str:
        # a <div>: in the book the figure sits inside the <figure> of its numbered caption
        return f'<div class="actlab-figure">{img_tag(self.png, self.alt)}{self.table_html}</div>'

    def _repr_png_(self) -> bytes:
        # what a PDF shows (its builder prefers a PNG; the web pages prefer the HTML above)
        return self.png.png if isinstance(self.png, Rendered) else self.png

    def __repr__(self) -> str:  # plain-text front ends read the description
        return f"[figure] {self.alt}"


#: A figure's name: the label of its numbered MyST figure, e.g. ``fig-ch04-stress``.
FIGURE_NAME = re.compile(r"fig-[a-z0-9]+(?:-[a-z0-9]+)*")


def show(
    fig: Figure,
    summary: str,
    table: TableLike | None = None,
    table_caption: str | None = None,
    name: str | None = None,
    display: bool = True,
) -> DescribedFigure | None:
    """Show ``fig`` with alt text that says what it shows, and its data as a table.

    The figure must follow the figure rule (:func:`check_figure`; make it with
    :func:`panels`); it is rendered at :data:`DENSITY` times its display density.

    Args:
        fig: the finished figure (it is closed here, so it is not drawn twice).
        summary: one or two sentences with the finding, built from computed values: the
            alt text starts with it.
        table: the numbers behind the figure (DataFrame or mapping of columns).
        table_caption: what the table holds (defaults to the summary).
        name: the figure's label (``fig-...``): the figure is glued under it instead of
            displayed, and the page shows it where a ``{glue:figure}`` directive with
            ``:name:`` and a caption pastes it, numbered, so the text can cite it with
            ``{numref}``.
        display: display the result (in a notebook) and return None, so that a
            ``show(...)`` on a cell's last line is not displayed twice; with
            ``display=False`` the result is returned instead.
    """
    if name is not None and not FIGURE_NAME.fullmatch(name):
        raise ValueError(f"a figure name looks like 'fig-ch04-stress', got {name!r}")
    alt = alt_text(fig, summary)
    tbl = "" if table is None else _table_html(table, table_caption or summary)
    out = DescribedFigure(render(fig), alt, tbl)
    if name is not None:
        from myst_nb import glue

        glue(name, out, display=False)
        return None
    if not display:
        return out
    from IPython.display import display as ipy_display

    ipy_display(out)
    return None


__all__: Sequence[str] = (
    "CATEGORICAL",
    "CONTENT_WIDTH_IN",
    "FigureRuleError",
    "MIN_FONT_PT",
    "Rendered",
    "check_figure",
    "panels",
    "render",
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
