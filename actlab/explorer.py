"""Explorers: one definition, a live ipywidgets view and a static view that survives HTML export.

Every chapter ends its main idea with an explorer. A definition is a function
of a few discretely valued parameters that returns a matplotlib figure.

* ``Explorer.live()`` draws on demand from Python callbacks (needs a kernel).
* ``Explorer.static()`` renders every combination once into PNG frames held in
  nested ``ipywidgets.Stack`` widgets; each control is ``jslink``-ed to the
  ``selected_index`` of the stacks at its level, so the page stays interactive
  in the built HTML with no kernel at all.

Every frame is an ``<img>`` whose alt text says what it shows: the
definition's ``describe(**params)`` sentence (from the computed values) and the
structure read off the figure (:func:`actlab.figures.describe_figure`). Below
the frames a text region (``actlab-frame-text``, ``aria-live``) repeats the
shown frame's description, so a change of frame is announced; in the built
site ``site/assets/actlab-widgets.js`` keeps it in step with the controls.
"""

from __future__ import annotations

import html
import io
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from actlab.figures import alt_text, describe_figure, img_tag


@dataclass(frozen=True)
class Control:
    """One parameter of an explorer.

    Args:
        name: keyword passed to the drawing function.
        values: the discrete values the control can take, in display order.
        label: text shown beside the control (defaults to ``name``).
        kind: ``"slider"`` (ordered values), ``"dropdown"`` or ``"buttons"``.
        default: the value shown first (defaults to the first value).
    """

    name: str
    values: Sequence[Any]
    label: str | None = None
    kind: str = "slider"
    default: Any = None

    def __post_init__(self) -> None:
        if len(self.values) == 0:
            raise ValueError(f"control {self.name!r} has no values")
        if self.kind not in ("slider", "dropdown", "buttons"):
            raise ValueError(f"control {self.name!r}: unknown kind {self.kind!r}")
        if self.default is not None and self.default not in list(self.values):
            raise ValueError(f"control {self.name!r}: default {self.default!r} is not a value")

    @property
    def default_index(self) -> int:
        return 0 if self.default is None else list(self.values).index(self.default)

    def widget(self) -> widgets.widgets.widget_selection._Selection:
        """A fresh selection widget whose ``index`` trait selects the value."""
        options = [(_fmt(v), i) for i, v in enumerate(self.values)]
        common = dict(
            options=options,
            value=self.default_index,
            description=self.label or self.name,
            style={"description_width": "initial"},
        )
        if self.kind == "slider":
            return widgets.SelectionSlider(continuous_update=True, **common)
        if self.kind == "dropdown":
            return widgets.Dropdown(**common)
        return widgets.ToggleButtons(**common)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes and close it (frames must not leak figures)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@dataclass
class Explorer:
    """A figure-valued function of discrete controls, viewable live or static.

    Args:
        draw: ``draw(**params) -> matplotlib.figure.Figure``.
        controls: the parameters, outermost first.
        dpi: resolution of the PNG frames.
        title: optional heading shown above the controls.
        describe: ``describe(**params) -> str``, the finding shown by one frame
            (built from the same values as the drawing); it starts the frame's
            alt text, which goes on with the figure's structure.
    """

    draw: Callable[..., Figure]
    controls: Sequence[Control]
    dpi: int = 80
    title: str | None = None
    describe: Callable[..., str] | None = None
    _cache: dict[tuple[int, ...], tuple[bytes, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.controls:
            raise ValueError("an explorer needs at least one control")
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")

    @property
    def n_frames(self) -> int:
        n = 1
        for c in self.controls:
            n *= len(c.values)
        return n

    def params(self, indices: Sequence[int]) -> dict[str, Any]:
        return {c.name: c.values[i] for c, i in zip(self.controls, indices, strict=True)}

    def _rendered(self, indices: Sequence[int]) -> tuple[bytes, str]:
        key = tuple(int(i) for i in indices)
        if key not in self._cache:
            params = self.params(key)
            fig = self.draw(**params)
            if not isinstance(fig, Figure):
                raise TypeError(f"draw() must return a matplotlib Figure, got {type(fig).__name__}")
            alt = alt_text(fig, self.describe(**params)) if self.describe else describe_figure(fig)
            self._cache[key] = (figure_to_png(fig, self.dpi), alt)
        return self._cache[key]

    def frame(self, indices: Sequence[int]) -> bytes:
        """PNG bytes for one combination of control indices (cached)."""
        return self._rendered(indices)[0]

    def frame_alt(self, indices: Sequence[int]) -> str:
        """The alt text of one frame: what it shows, in words."""
        return self._rendered(indices)[1]

    def frame_html(self, indices: Sequence[int]) -> str:
        """One frame as an ``<img>`` with its alt text."""
        png, alt = self._rendered(indices)
        return img_tag(png, alt, cls="actlab-frame")

    def frame_text_html(self, indices: Sequence[int]) -> str:
        """The region that repeats the shown frame's description for assistive technology."""
        text = html.escape(self.frame_alt(indices))
        return f'<p class="actlab-frame-text" aria-live="polite" aria-atomic="true">{text}</p>'

    def render_all(self) -> list[bytes]:
        """Every frame, in row-major order of the controls."""
        ranges = [range(len(c.values)) for c in self.controls]
        return [self.frame(ix) for ix in itertools.product(*ranges)]

    def _header(self, control_widgets: list[widgets.Widget]) -> list[widgets.Widget]:
        head: list[widgets.Widget] = []
        if self.title:
            head.append(widgets.HTML(f"<b>{self.title}</b>"))
        head.append(widgets.HBox(control_widgets, layout=widgets.Layout(flex_flow="row wrap")))
        return head

    def live(self) -> widgets.VBox:
        """Controls with Python callbacks redrawing one image (needs a running kernel)."""
        ctrls = [c.widget() for c in self.controls]
        start = [w.index for w in ctrls]
        image = widgets.HTML(self.frame_html(start))
        text = widgets.HTML(self.frame_text_html(start))

        def redraw(_change: object = None) -> None:
            now = [w.index for w in ctrls]
            image.value = self.frame_html(now)
            text.value = self.frame_text_html(now)

        for w in ctrls:
            w.observe(redraw, names="index")
        box = widgets.VBox([*self._header(ctrls), image, text])
        box.add_class("actlab-explorer")
        box.add_class("actlab-live")
        return box

    def static(self) -> widgets.VBox:
        """Controls ``jslink``-ed to nested stacks of precomputed frames (works without a kernel)."""
        ctrls = [c.widget() for c in self.controls]
        links: list[widgets.Widget] = []

        def build(level: int, prefix: tuple[int, ...]) -> widgets.Widget:
            control = self.controls[level]
            if level == len(self.controls) - 1:
                children = [
                    widgets.HTML(self.frame_html((*prefix, i))) for i in range(len(control.values))
                ]
            else:
                children = [build(level + 1, (*prefix, i)) for i in range(len(control.values))]
            stack = widgets.Stack(children=children, selected_index=control.default_index)
            links.append(widgets.jslink((ctrls[level], "index"), (stack, "selected_index")))
            return stack

        frames = build(0, ())
        text = widgets.HTML(self.frame_text_html([c.default_index for c in self.controls]))
        box = widgets.VBox([*self._header(ctrls), frames, text])
        box.add_class("actlab-explorer")
        box.add_class("actlab-static")
        # The links are widgets of their own (saved in the page's widget state);
        # keep them reachable from the view.
        box.links = links  # type: ignore[attr-defined]
        return box

    def show(self, live: bool | None = None) -> widgets.VBox:
        """Live view in a kernel session, static view when building the book.

        ``live=None`` picks the static view when the ``ACTLAB_STATIC`` environment
        variable is set (the book build sets it) and the live view otherwise.
        """
        import os

        if live is None:
            live = not os.environ.get("ACTLAB_STATIC")
        return self.live() if live else self.static()
