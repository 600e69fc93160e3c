"""The explorer builder: live and static views driven like a reader would drive them."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from ipywidgets.widgets.widget_link import Link  # noqa: E402

from actlab.explorer import Control, Explorer  # noqa: E402


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


def controls(view: widgets.VBox) -> list[widgets.Widget]:
    return list(view.children[0].children)


def shown_png(view: widgets.VBox) -> bytes:
    """The PNG a reader sees: follow each Stack's selected_index down to an Image."""
    node = view.children[-1]
    while isinstance(node, widgets.Stack):
        node = node.children[node.selected_index]
    assert isinstance(node, widgets.Image)
    return node.value


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
    image = view.children[-1]
    first = image.value
    assert first == ex.frame((0, 0))
    slope.index = 2
    assert image.value == ex.frame((2, 0)) != first
    shift.index = 1
    assert image.value == ex.frame((2, 1))


@pytest.mark.parametrize("kind", ["slider", "dropdown", "buttons"])
def test_static_view_nests_stacks_linked_to_the_controls(kind: str) -> None:
    ex = make(kind)
    view = ex.static()
    slope, shift = controls(view)
    outer = view.children[-1]
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 3
    assert all(isinstance(s, widgets.Stack) and len(s.children) == 2 for s in outer.children)
    # every Stack is driven by a jslink from its level's control (these survive HTML export)
    assert all(isinstance(link, Link) for link in view.links)
    linked = {(id(link.source[0]), id(link.target[0])) for link in view.links}
    assert all(
        link.source[1] == "index" and link.target[1] == "selected_index" for link in view.links
    )
    assert (id(slope), id(outer)) in linked
    for inner in outer.children:
        assert (id(shift), id(inner)) in linked
    # Simulate what the browser does with the links, and check the shown frame follows.
    assert shown_png(view) == ex.frame((0, 0))
    for a, b in [(1, 0), (2, 1), (0, 1)]:
        slope.index, shift.index = a, b
        outer.selected_index = slope.index
        for inner in outer.children:
            inner.selected_index = shift.index
        assert shown_png(view) == ex.frame((a, b))


def test_default_value_selects_the_first_frame() -> None:
    ex = Explorer(draw, [Control("slope", [-1.0, 0.0, 1.0], default=1.0), Control("shift", [0, 1])])
    assert shown_png(ex.static()) == ex.frame((2, 0))
    assert ex.live().children[-1].value == ex.frame((2, 0))


def test_show_picks_static_when_building_the_book(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTLAB_STATIC", "1")
    assert "actlab-static" in make().show()._dom_classes
    monkeypatch.delenv("ACTLAB_STATIC")
    assert "actlab-live" in make().show()._dom_classes


def test_bad_definitions_are_rejected() -> None:
    with pytest.raises(ValueError, match="no values"):
        Control("x", [])
    with pytest.raises(ValueError, match="unique"):
        Explorer(draw, [Control("a", [1]), Control("a", [2])])
    with pytest.raises(ValueError, match="not a value"):
        Control("x", [1, 2], default=3)
    with pytest.raises(TypeError, match="Figure"):
        Explorer(lambda x: None, [Control("x", [1])]).frame((0,))
