"""Explorers: one definition, a live ipywidgets view and a static view that survives HTML export.

Every chapter ends its main idea with an explorer. A definition is a function
of a few discretely valued parameters that returns a matplotlib figure.

* ``Explorer.live()`` draws on demand from Python callbacks (needs a kernel); once
  every frame is drawn it swaps them in the browser like the static view.
* ``Explorer.static()`` renders every combination once into PNG frames held in
  nested ``ipywidgets.Tab`` widgets with their tab bars hidden (stacks of frames);
  each control is ``jslink``-ed to the ``selected_index`` of the stacks at its
  level, so the page stays interactive in the built HTML with no kernel at all.

Every frame is an ``<img>`` whose alt text says what it shows: the
definition's ``describe(**params)`` sentence (from the computed values) and the
structure read off the figure (:func:`actlab.presentation.figures.describe_figure`). Below
the frames a text region (``actlab-frame-text``, ``aria-live``) repeats the
shown frame's description, so a change of frame is announced; in the built
site ``site/assets/actlab-a11y.js`` keeps it in step with the controls.
"""

from __future__ import annotations

import base64
import html
import itertools
import random
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure  # noqa: E402

from actlab.engine.activations import LABELS
from actlab.presentation.figures import Rendered, alt_text, describe_figure, img_tag, render
from actlab.presentation.paper import PAPER_MIME, frame_grid, paper_caption, paper_keys


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


# The frames sit in ipywidgets Tabs rather than Stacks: a Tab keeps every child's view
# (and its decoded image) in the page and only hides the others, where a Stack builds
# a fresh child view on every switch. The tab bars are hidden: the controls choose.
FRAMES_CSS = """<style>
.jupyter-widgets.jupyter-widget-tab.actlab-frames > .lm-TabBar { display: none !important; }
.jupyter-widgets.jupyter-widget-tab.actlab-frames > .widget-tab-contents {
  border: none; padding: 0; overflow: visible; background: none;
}
</style>"""


#: Read by screen readers, not drawn: the frame's description repeats its alt text, so a
#: sighted reader does not need it printed under the figure.
VISUALLY_HIDDEN = (
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;border:0;"
    "overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap"
)


def _frames_style() -> widgets.HTML:
    """The stylesheet for an explorer's stacks of frames, carried by the view that holds them."""
    style = widgets.HTML(FRAMES_CSS, layout=widgets.Layout(display="none"))
    style.add_class("actlab-frames-style")
    return style


def _fmt(value: Any) -> str:
    """A control value as the reader sees it: an activation's registry label ("Leaky ReLU",
    not ``leaky_relu``), a number to three significant figures with a true minus sign."""
    if isinstance(value, str) and value in LABELS:
        return LABELS[value]
    if isinstance(value, float):
        text = f"{value:.3g}"
        return "\N{MINUS SIGN}" + text[1:] if text.startswith("-") else text
    return str(value)


class _PaperedVBox(widgets.VBox):
    """The static view: a ``VBox`` whose display also carries its explorer on paper."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        paper = getattr(self, "paper", None)
        if bundle is not None and paper is not None:
            bundle = {**bundle, PAPER_MIME: paper}
        return bundle


@dataclass
class Explorer:
    """A figure-valued function of discrete controls, viewable live or static.

    Frames follow the course's figure rule (:func:`actlab.presentation.figures.render`):
    drawn at the page's content width (make them with ``panels``) and rendered at twice
    the pixel density they are shown at.

    Args:
        draw: ``draw(**params) -> matplotlib.figure.Figure``.
        controls: the parameters, outermost first.
        title: optional heading shown above the controls.
        describe: ``describe(**params) -> str``, the finding shown by one frame
            (built from the same values as the drawing); it starts the frame's
            alt text, which goes on with the figure's structure. It is called
            right after ``draw`` with the same parameters, so it may read values
            that ``draw`` stored.
    """

    draw: Callable[..., Figure]
    controls: Sequence[Control]
    title: str | None = None
    describe: Callable[..., str] | None = None
    _cache: dict[tuple[int, ...], tuple[Rendered, str, str]] = field(
        default_factory=dict, repr=False
    )

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

    def _rendered(self, indices: Sequence[int]) -> tuple[Rendered, str, str]:
        key = tuple(int(i) for i in indices)
        if key not in self._cache:
            params = self.params(key)
            fig = self.draw(**params)
            if not isinstance(fig, Figure):
                raise TypeError(f"draw() must return a matplotlib Figure, got {type(fig).__name__}")
            structure = describe_figure(fig)
            finding = self.describe(**params) if self.describe else structure
            alt = alt_text(fig, finding) if self.describe else structure
            self._cache[key] = (render(fig), alt, finding)
        return self._cache[key]

    def frame(self, indices: Sequence[int]) -> bytes:
        """PNG bytes for one combination of control indices (cached)."""
        return self._rendered(indices)[0].png

    def frame_alt(self, indices: Sequence[int]) -> str:
        """The alt text of one frame: what it shows, in words."""
        return self._rendered(indices)[1]

    def frame_finding(self, indices: Sequence[int]) -> str:
        """What one frame shows: the definition's ``describe`` sentence (or, without one,
        the figure's structure)."""
        return self._rendered(indices)[2]

    def frame_html(self, indices: Sequence[int]) -> str:
        """One frame as an ``<img>`` with its alt text."""
        png, alt, _ = self._rendered(indices)
        return img_tag(png, alt, cls="actlab-frame")

    def frame_text_html(self, indices: Sequence[int]) -> str:
        """The region that repeats the shown frame's description for assistive technology."""
        text = html.escape(self.frame_alt(indices))
        return (
            f'<p class="actlab-frame-text" aria-live="polite" aria-atomic="true" '
            f'style="{VISUALLY_HIDDEN}">{text}</p>'
        )

    def controls_text(self, indices: Sequence[int]) -> str:
        """A frame's control values in words: ``"hidden layers 10, activation sigmoid"``."""
        return ", ".join(
            f"{c.label or c.name} {_fmt(c.values[i])}"
            for c, i in zip(self.controls, indices, strict=True)
        )

    def paper(self) -> dict[str, Any]:
        """The explorer on paper, the JSON object of
        :data:`~actlab.presentation.paper.PAPER_MIME`: a grid of the frames that span the
        controls (base64 PNG), its caption (each frame's control values and finding) and
        its alt text."""
        keys = paper_keys(self.controls)
        caption = paper_caption(
            self.title or "Explorer",
            self.n_frames,
            [(self.controls_text(k), self.frame_finding(k)) for k in keys],
        )
        return {
            "png": base64.b64encode(frame_grid([self.frame(k) for k in keys])).decode("ascii"),
            "caption": caption,
            "alt": " ".join(self.frame_alt(k) for k in keys),
        }

    def keys(self) -> list[tuple[int, ...]]:
        """Every combination of control indices, in row-major order of the controls."""
        return list(itertools.product(*(range(len(c.values)) for c in self.controls)))

    def render_all(self) -> list[bytes]:
        """Every frame, in row-major order of the controls."""
        return [self.frame(ix) for ix in self.keys()]

    def _header(self, control_widgets: list[widgets.Widget]) -> list[widgets.Widget]:
        head: list[widgets.Widget] = []
        if self.title:
            head.append(widgets.HTML(f"<b>{self.title}</b>"))
        head.append(widgets.HBox(control_widgets, layout=widgets.Layout(flex_flow="row wrap")))
        return head

    def live(self, prerender: bool = True) -> widgets.VBox:
        """Controls with Python callbacks that show the selected frame (needs a running kernel).

        If every frame is already drawn (:meth:`render_all` was called), the frames
        are the static view's ``jslink``-ed stacks: a control change swaps the image
        in the browser with no round trip to the kernel, and a callback only updates
        the text region that repeats the frame's description.

        Otherwise the first frame is drawn at once and shown in one image that a
        callback replaces. In a Jupyter kernel every other frame is drawn by one
        background thread, between cells (never while a cell runs): the frame a
        control asks for first, then, if ``prerender`` is true, the remaining
        frames, nearest to the current selection first. A change whose frame is
        already drawn only swaps the image's bytes. Outside a kernel (scripts,
        tests) a change draws its frame synchronously. Frames come from
        :meth:`frame`, so they are the same PNGs the static view shows.
        """
        ctrls = [c.widget() for c in self.controls]
        if all(k in self._cache for k in self.keys()):
            box = self._stacked(ctrls)
            text = box.children[-1]

            def follow(_change: object = None) -> None:
                text.value = self.frame_text_html([int(w.index) for w in ctrls])

            for w in ctrls:
                w.observe(follow, names="index")
        else:
            view = _LiveView(self, ctrls, prerender=prerender)
            for w in ctrls:
                w.observe(view.on_change, names="index")
            box = widgets.VBox([*self._header(ctrls), view.image, view.text])
            box.add_class("actlab-explorer")
        box.add_class("actlab-live")
        return box

    def static(self) -> widgets.VBox:
        """Controls ``jslink``-ed to nested stacks of precomputed frames (works without a kernel).

        Its display also carries the explorer on paper (:meth:`paper`), which only a PDF
        shows.
        """
        box = self._stacked([c.widget() for c in self.controls], _PaperedVBox)
        box.paper = self.paper()  # type: ignore[attr-defined]
        box.add_class("actlab-static")
        return box

    def _stacked(
        self, ctrls: list[widgets.Widget], box_type: type[widgets.VBox] = widgets.VBox
    ) -> widgets.VBox:
        """Every frame in nested stacks (Tabs, see ``FRAMES_CSS``), each ``jslink``-ed to its level's control."""
        links: list[widgets.Widget] = []

        def build(level: int, prefix: tuple[int, ...]) -> widgets.Widget:
            control = self.controls[level]
            if level == len(self.controls) - 1:
                children = [
                    widgets.HTML(self.frame_html((*prefix, i))) for i in range(len(control.values))
                ]
            else:
                children = [build(level + 1, (*prefix, i)) for i in range(len(control.values))]
            stack = widgets.Tab(children=children, selected_index=control.default_index)
            stack.add_class("actlab-frames")
            links.append(widgets.jslink((ctrls[level], "index"), (stack, "selected_index")))
            return stack

        frames = build(0, ())
        text = widgets.HTML(self.frame_text_html([c.default_index for c in self.controls]))
        box = box_type([_frames_style(), *self._header(ctrls), frames, text])
        box.add_class("actlab-explorer")
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


# --- live views: frames drawn off the comm handler, between cells -----------------


def _kernel_shell() -> Any:
    """The IPython shell of a running Jupyter kernel, or None (plain Python, pytest)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _step_distance(explorer: Explorer, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Control moves from ``a`` to ``b``: slider steps, plus one per other control changed."""
    return sum(
        abs(i - j) if c.kind == "slider" else int(i != j)
        for c, i, j in zip(explorer.controls, a, b, strict=True)
    )


class _RandomStateKept:
    """Leave Python's, NumPy's and (if loaded) PyTorch's global random state as found.

    A frame drawn in the background must not move the random streams that the
    reader's next cell uses (a drawing function may reseed them). PyTorch's state is
    its CPU generator's and, where the devices are there, every CUDA device's and the
    MPS device's: ``torch.manual_seed`` reseeds them all.
    """

    def __enter__(self) -> None:
        import numpy as np

        self._py = random.getstate()
        self._np = np.random.get_state()
        torch = sys.modules.get("torch")
        self._torch = torch.random.get_rng_state() if torch is not None else None
        self._cuda = self._mps = None
        if torch is not None and torch.cuda.is_available():
            self._cuda = torch.cuda.get_rng_state_all()
        if torch is not None and _mps_available(torch):
            self._mps = torch.mps.get_rng_state()

    def __exit__(self, *exc: object) -> None:
        import numpy as np

        random.setstate(self._py)
        np.random.set_state(self._np)
        torch = sys.modules.get("torch")
        if torch is not None and self._torch is not None:
            torch.random.set_rng_state(self._torch)
        if torch is not None and self._cuda is not None:
            torch.cuda.set_rng_state_all(self._cuda)
        if torch is not None and self._mps is not None:
            torch.mps.set_rng_state(self._mps)


def _mps_available(torch: Any) -> bool:
    """Whether ``torch`` has an MPS device with a generator of its own."""
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available() and hasattr(torch, "mps")


class _Renderer:
    """One daemon thread per kernel drawing the frames live views ask for.

    pyplot and the global random generators are not thread-safe, so one frame is
    drawn at a time, and never while a cell runs: the kernel's ``pre_execute``
    event waits for the frame being drawn and holds the thread until
    ``post_execute`` (which runs after the inline backend has shown the cell's
    figures). Views that asked most recently come first.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._cell_running = False
        self._drawing = False
        self._views: list[_LiveView] = []  # least recently active first
        self._thread: threading.Thread | None = None
        self._shell: Any = None

    # the gate shared with the kernel's cells
    def _pause(self) -> None:
        callbacks = self._shell.events.callbacks["post_execute"]
        if callbacks and callbacks[-1] != self._resume:  # resume after every other hook
            callbacks.remove(self._resume)
            callbacks.append(self._resume)
        with self._cond:
            self._cell_running = True
            while self._drawing:
                self._cond.wait()

    def _resume(self) -> None:
        with self._cond:
            self._cell_running = False
            self._cond.notify_all()

    def attach(self, shell: Any) -> None:
        with self._cond:
            if self._shell is shell:
                return
            self._shell = shell
        shell.events.register("pre_execute", self._pause)
        shell.events.register("post_execute", self._resume)

    def exclusive(self) -> _Exclusive:
        """Context: draw in the calling thread with no background frame in progress."""
        return _Exclusive(self)

    def want(self, view: _LiveView) -> None:
        with self._cond:
            if view in self._views:
                self._views.remove(view)
            self._views.append(view)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="actlab-explorer-frames", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _next_job(self) -> tuple[_LiveView, tuple[int, ...]] | None:
        for view in reversed(self._views):
            if view.needs_wanted_frame():
                return view, view.wanted
        for view in reversed(self._views[:]):
            key = view.next_prerender()
            if key is not None:
                return view, key
            self._views.remove(view)  # every frame drawn: nothing left to do for it
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if not (self._cell_running or self._drawing):
                        job = self._next_job()
                    if job is None:
                        self._cond.wait()
                self._drawing = True
            view, key = job
            try:
                with _RandomStateKept():
                    view.explorer.frame(key)  # fills the cache: PNG and alt text
                error = None
            except Exception:  # shown by the view, never kills the thread
                error = traceback.format_exc()
            finally:
                with self._cond:
                    self._drawing = False
                    self._cond.notify_all()
            view.drawn(key, error)


class _Exclusive:
    def __init__(self, renderer: _Renderer) -> None:
        self._r = renderer

    def __enter__(self) -> None:
        with self._r._cond:
            while self._r._drawing:
                self._r._cond.wait()
            self._r._drawing = True

    def __exit__(self, *exc: object) -> None:
        with self._r._cond:
            self._r._drawing = False
            self._r._cond.notify_all()


_RENDERER = _Renderer()


class _LiveView:
    """One live explorer's image and the frame its controls currently select."""

    def __init__(self, explorer: Explorer, ctrls: list[widgets.Widget], prerender: bool) -> None:
        self.explorer = explorer
        self.ctrls = ctrls
        self.prerender = prerender
        self.failed: dict[tuple[int, ...], str] = {}
        self._lock = threading.Lock()
        self.wanted = self._selected()
        self.shell = _kernel_shell()
        if self.shell is None:
            explorer.frame(self.wanted)
        else:
            _RENDERER.attach(self.shell)
            with _RENDERER.exclusive(), _RandomStateKept():
                explorer.frame(self.wanted)
        self.image = widgets.HTML(explorer.frame_html(self.wanted))
        self.text = widgets.HTML(explorer.frame_text_html(self.wanted))
        if self.shell is not None and prerender:
            _RENDERER.want(self)

    def _selected(self) -> tuple[int, ...]:
        return tuple(int(w.index) for w in self.ctrls)

    def on_change(self, _change: object = None) -> None:
        key = self._selected()
        if self.shell is None:  # no kernel: draw here and now
            self._show(key)
            return
        with self._lock:
            self.wanted = key
            if key in self.explorer._cache:
                self._show(key)
        # A missing frame is drawn next; a present one re-centres the prerendering.
        _RENDERER.want(self)

    def _show(self, key: tuple[int, ...]) -> None:
        self.image.value = self.explorer.frame_html(key)
        self.text.value = self.explorer.frame_text_html(key)

    def needs_wanted_frame(self) -> bool:
        return self.wanted not in self.explorer._cache and self.wanted not in self.failed

    def next_prerender(self) -> tuple[int, ...] | None:
        if not self.prerender:
            return None
        todo = [
            k
            for k in self.explorer.keys()
            if k not in self.explorer._cache and k not in self.failed
        ]
        if not todo:
            return None
        here = self.wanted
        return min(todo, key=lambda k: (_step_distance(self.explorer, here, k), k))

    def drawn(self, key: tuple[int, ...], error: str | None) -> None:
        if error is not None:
            self.failed[key] = error
        with self._lock:
            if key != self.wanted:
                return
            if error is None:
                self._show(key)
                return
        params = self.explorer.params(key)
        print(f"explorer: drawing the frame for {params} failed:\n{error}", file=sys.stderr)
