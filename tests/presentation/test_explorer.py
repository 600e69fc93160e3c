"""The explorer builder: live and static views driven like a reader would drive them."""

from __future__ import annotations

import base64
import html
import re

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from conftest import controls  # noqa: E402
from ipywidgets.widgets.widget_link import Link  # noqa: E402

from actlab.presentation.explorer import Control, Explorer  # noqa: E402


def draw(slope: float, shift: int):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [shift, shift + slope])
    ax.set_ylim(-3, 3)
    return fig


def make(kind: str = "slider") -> Explorer:
    return Explorer(
        draw,
        [Control("slope", [-1.0, 0.0, 1.0], kind=kind), Control("shift", [0, 1], kind="buttons")],
    )


def follow_links(view: widgets.VBox) -> None:
    """Do what the browser does with the view's ``jslink``s: copy each control's index."""
    for link in view.links:
        (source, name), (target, trait) = link.source, link.target
        setattr(target, trait, getattr(source, name))


def check_links(view: widgets.VBox) -> widgets.Tab:
    """Every stack of frames is driven by a jslink from its level's control; the outer one."""
    slope, shift = controls(view)
    outer = view.children[-2]
    assert isinstance(outer, widgets.Tab) and len(outer.children) == 3
    assert all(isinstance(s, widgets.Tab) and len(s.children) == 2 for s in outer.children)
    assert all(isinstance(link, Link) for link in view.links)
    assert all(
        link.source[1] == "index" and link.target[1] == "selected_index" for link in view.links
    )
    linked = {(id(link.source[0]), id(link.target[0])) for link in view.links}
    assert (id(slope), id(outer)) in linked
    assert all((id(shift), id(inner)) in linked for inner in outer.children)
    return outer


def decode(frame: widgets.HTML) -> tuple[bytes, str]:
    """The PNG and alt text of one frame's ``<img>``."""
    found = re.fullmatch(
        r'<img class="actlab-frame" src="data:image/png;base64,([^"]+)" alt="([^"]*)"[^>]*>',
        frame.value,
    )
    assert found, f"a frame is one <img> with its alt text, got {frame.value[:80]!r}"
    return base64.b64decode(found[1]), html.unescape(found[2])


def shown(view: widgets.VBox) -> widgets.HTML:
    """The frame a reader sees: follow each stack's selected_index down to an image."""
    node = view.children[-2]
    while isinstance(node, widgets.Tab):
        node = node.children[node.selected_index]
    assert isinstance(node, widgets.HTML)
    return node


def shown_png(view: widgets.VBox) -> bytes:
    return decode(shown(view))[0]


def announced(view: widgets.VBox) -> str:
    """The text of the view's live region (what a screen reader announces)."""
    region = view.children[-1]
    found = re.fullmatch(
        r'<p class="actlab-frame-text" aria-live="polite" aria-atomic="true" style="([^"]*)">(.*)</p>',
        region.value,
    )
    assert found, f"the last child is the live region, got {region.value[:80]!r}"
    # read by a screen reader, not drawn on the page (the frame's alt text says the same)
    assert "clip-path:inset(50%)" in found[1] and "position:absolute" in found[1]
    return html.unescape(found[2])


def test_frames_differ_per_combination_and_are_cached() -> None:
    ex = make()
    frames = ex.render_all()
    assert len(frames) == ex.n_frames == 6
    assert len(set(frames)) == 6
    assert all(f.startswith(b"\x89PNG") for f in frames)
    assert ex.frame((2, 1)) is frames[5]
    assert plt.get_fignums() == [], "frames must close their figures"


def test_live_view_redraws_when_a_control_moves() -> None:
    ex = make()
    view = ex.live()
    slope, shift = controls(view)
    first = shown_png(view)
    assert first == ex.frame((0, 0))
    slope.index = 2
    assert shown_png(view) == ex.frame((2, 0)) != first
    assert announced(view) == ex.frame_alt((2, 0))
    shift.index = 1
    assert shown_png(view) == ex.frame((2, 1))
    assert announced(view) == ex.frame_alt((2, 1))


def test_live_view_of_a_drawn_explorer_swaps_frames_in_the_browser() -> None:
    ex = make()
    ex.render_all()
    view = ex.live()
    assert "actlab-live" in view._dom_classes
    check_links(view)  # a drawn explorer's live view holds every frame, as the static one
    slope, shift = controls(view)
    for a, b in [(2, 0), (1, 1), (0, 1)]:
        slope.index, shift.index = a, b
        # the kernel keeps the text in step; the links move the stacks in the browser
        assert announced(view) == ex.frame_alt((a, b))
        follow_links(view)
        assert shown_png(view) == ex.frame((a, b))


@pytest.mark.parametrize("kind", ["slider", "dropdown", "buttons"])
def test_static_view_nests_stacks_linked_to_the_controls(kind: str) -> None:
    ex = make(kind)
    view = ex.static()
    check_links(view)  # these links survive HTML export
    slope, shift = controls(view)
    assert shown_png(view) == ex.frame((0, 0))
    for a, b in [(1, 0), (2, 1), (0, 1)]:
        slope.index, shift.index = a, b
        follow_links(view)
        assert shown_png(view) == ex.frame((a, b))


def test_default_value_selects_the_first_frame() -> None:
    ex = Explorer(draw, [Control("slope", [-1.0, 0.0, 1.0], default=1.0), Control("shift", [0, 1])])
    assert shown_png(ex.static()) == ex.frame((2, 0))
    assert shown_png(ex.live()) == ex.frame((2, 0))
    assert announced(ex.static()) == ex.frame_alt((2, 0))


def test_show_picks_static_when_building_the_book(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTLAB_STATIC", "1")
    assert "actlab-static" in make().show()._dom_classes
    monkeypatch.delenv("ACTLAB_STATIC")
    assert "actlab-live" in make().show()._dom_classes


def test_every_frame_says_what_it_shows() -> None:
    """Alt text: the definition's sentence from the parameters, then the figure's structure."""

    def titled(slope: float, shift: int):
        fig = draw(slope, shift)
        fig.axes[0].set_title(f"slope {slope:g}")
        fig.axes[0].set_xlabel("input")
        return fig

    ex = Explorer(
        titled,
        [Control("slope", [-1.0, 2.5]), Control("shift", [0, 1])],
        describe=lambda slope, shift: f"A line of slope {slope:g} through {shift}",
    )
    alt = ex.frame_alt((1, 1))
    assert alt.startswith("A line of slope 2.5 through 1.")
    assert "'slope 2.5'" in alt and "'input'" in alt and "from -3 to 3" in alt
    _, shown_alt = decode(shown(ex.static()))
    assert shown_alt == ex.frame_alt((0, 0)) != alt
    # without a describe() the structure alone is the text; never empty or a repr
    plain = make().frame_alt((0, 0))
    assert plain and "Figure size" not in plain and "unlabelled axis" in plain
    with pytest.raises(ValueError, match="summary"):
        Explorer(
            draw, [Control("slope", [1.0]), Control("shift", [0])], describe=lambda **k: " "
        ).frame((0, 0))


def test_bad_definitions_are_rejected() -> None:
    with pytest.raises(ValueError, match="no values"):
        Control("x", [])
    with pytest.raises(ValueError, match="unique"):
        Explorer(draw, [Control("a", [1]), Control("a", [2])])
    with pytest.raises(ValueError, match="not a value"):
        Control("x", [1, 2], default=3)
    with pytest.raises(TypeError, match="Figure"):
        Explorer(lambda x: None, [Control("x", [1])]).frame((0,))


class _FakeGenerators:
    """Stands in for the generators of a GPU this machine may lack: the states a frame moves."""

    def __init__(self) -> None:
        self.cuda = [b"cuda:0 state", b"cuda:1 state"]
        self.mps = b"mps state"

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(self.cuda))
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda s: setattr(self, "cuda", s))
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        monkeypatch.setattr(torch.mps, "get_rng_state", lambda: self.mps)
        monkeypatch.setattr(torch.mps, "set_rng_state", lambda s: setattr(self, "mps", s))


def test_a_frame_leaves_every_torch_generator_as_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from actlab.presentation.explorer import _RandomStateKept

    gens = _FakeGenerators()
    gens.install(monkeypatch)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    with _RandomStateKept():
        torch.manual_seed(0)  # a drawing function that reseeds
        gens.cuda = [b"moved", b"moved"]
        gens.mps = b"moved"
        torch.rand(5)
    assert gens.cuda == [b"cuda:0 state", b"cuda:1 state"]
    assert gens.mps == b"mps state"
    assert torch.equal(torch.rand(3), expected)  # the CPU stream goes on as before


def test_without_a_gpu_only_the_cpu_generator_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from actlab.presentation.explorer import _RandomStateKept

    def absent(*args: object) -> None:
        raise AssertionError("no GPU here: its generators are not read")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name in ("get_rng_state_all", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, absent)
    for name in ("get_rng_state", "set_rng_state"):
        monkeypatch.setattr(torch.mps, name, absent)
    state = torch.random.get_rng_state()
    with _RandomStateKept():
        torch.manual_seed(1)
    assert torch.equal(torch.random.get_rng_state(), state)
