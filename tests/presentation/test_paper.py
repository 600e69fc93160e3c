"""An explorer on paper: the frames chosen, the grid, the caption, and the PDF's renderer."""

import base64
import json

import numpy as np
import pytest

from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import panels, png_size
from actlab.presentation.paper import (
    LIVE_NOTE,
    PAPER_MIME,
    PaperRenderer,
    paper_keys,
)


def _explorer() -> Explorer:
    def draw(slope: float, shape: str):
        fig, (ax,) = panels(1, height=2.0)
        x = np.linspace(-1, 1, 20)
        ax.plot(x, slope * (x if shape == "line" else x**2))
        ax.set_xlabel("x")
        return fig

    return Explorer(
        draw,
        [
            Control("slope", [-1.0, 0.5, 2.0, 3.0], default=0.5),
            Control("shape", ["line", "square"], kind="buttons"),
        ],
        title="A toy",
        describe=lambda slope, shape: f"a {shape} of slope {slope}",
    )


def test_paper_keys_span_every_control_from_the_default_frame():
    ex = _explorer()
    keys = paper_keys(ex.controls)
    # default (0.5, line); slope at its farthest value (3.0); shape at "square"
    assert keys == [(1, 0), (3, 0), (1, 1)], keys
    assert len(paper_keys(ex.controls, max_frames=2)) == 2


def test_a_single_valued_control_adds_no_frame():
    controls = [Control("a", [1]), Control("b", [1, 2, 3])]
    assert paper_keys(controls) == [(0, 0), (0, 2)]


def test_paper_data_holds_a_grid_and_a_caption_with_each_frames_values_and_finding():
    data = _explorer().paper()
    png = base64.b64decode(data["png"])
    width, height = png_size(png)
    assert width > height > 0, (width, height)
    caption = data["caption"]
    assert caption.startswith("A toy: 3 of its 8 frames."), caption
    assert "(a) slope 0.5, shape line: a line of slope 0.5. (b)" in caption, caption
    assert "(b) slope 3, shape line: a line of slope 3.0. (c)" in caption, caption
    assert "(c) slope 0.5, shape square: a square of slope 0.5. " in caption, caption
    assert caption.endswith(LIVE_NOTE)
    json.dumps(data)  # a notebook output must be JSON


def test_the_static_views_display_carries_the_paper_beside_the_widget():
    box = _explorer().static()
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle[PAPER_MIME]["caption"].startswith("A toy")


def test_only_the_latex_builder_prefers_the_paper():
    from myst_nb.core.render import get_mime_priority

    latex = get_mime_priority("latex", [])
    assert latex.index(PAPER_MIME) < latex.index("image/png") < latex.index("text/plain")
    assert PAPER_MIME not in get_mime_priority("html", [])


class _Data:
    def __init__(self, mime_type, content):
        self.mime_type, self.content = mime_type, content

    @property
    def string(self):
        return self.content if isinstance(self.content, str) else json.dumps(self.content)


class _Renderer:
    def __init__(self, folder):
        self.folder = folder

    def write_file(self, path, content, overwrite=False, exists_ok=False):
        target = self.folder.joinpath(*path)
        target.write_bytes(content)
        return str(target)


def test_the_renderer_writes_the_grid_and_returns_a_captioned_figure(tmp_path):
    from docutils import nodes

    data = _explorer().paper()
    out = PaperRenderer.handle_mime(_Renderer(tmp_path), _Data(PAPER_MIME, data), False)
    (figure,) = out
    assert isinstance(figure, nodes.figure)
    image = figure.next_node(nodes.image)
    assert (tmp_path / image["uri"].rsplit("/", 1)[-1]).read_bytes()[:4] == b"\x89PNG"
    assert figure.next_node(nodes.caption) is None, (
        "unnumbered: the PDF numbers only the web's figures"
    )
    assert figure.next_node(nodes.legend).astext() == data["caption"]
    # a JSON string is read as well as an object; other mime types are left alone
    assert PaperRenderer.handle_mime(
        _Renderer(tmp_path), _Data(PAPER_MIME, json.dumps(data)), False
    )
    assert PaperRenderer.handle_mime(_Renderer(tmp_path), _Data("text/plain", "x"), False) is None


@pytest.mark.parametrize("n", [1, 2, 4])
def test_the_grid_follows_the_figure_rule(n):
    from actlab.presentation.figures import CONTENT_WIDTH_IN, CSS_DPI, DENSITY
    from actlab.presentation.paper import frame_grid

    ex = _explorer()
    pngs = [ex.frame(k) for k in ex.keys()[:n]]
    width, _ = png_size(frame_grid(pngs))
    assert width <= CONTENT_WIDTH_IN * CSS_DPI * DENSITY


def test_a_styled_table_prints_as_an_aligned_text_table_with_its_formats():
    import pandas as pd

    from actlab.presentation.paper import styler_text

    df = pd.DataFrame(
        {"max slope": [0.25, 1.0], "label": ["Leaky ReLU", "tanh"]},
        index=pd.Index(["sigmoid", "tanh"], name="activation"),
    )
    text = styler_text(df.style.format("{:.3g}", subset=["max slope"]))
    lines = text.splitlines()
    assert lines[0].split() == ["max", "slope", "label"], lines
    assert lines[2].split() == ["sigmoid", "0.25", "Leaky", "ReLU"], lines
    assert lines[3].split() == ["tanh", "1", "tanh"], lines
    # numbers right-aligned under their header, text left-aligned
    assert lines[2].index("0.25") + 4 == lines[3].index("1") + 1
    assert lines[2].index("Leaky") == lines[3].rindex("tanh")


def test_in_a_kernel_a_styler_displays_its_table_as_plain_text():
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from actlab.presentation.paper import install_text_tables

    shell = InteractiveShell.instance()
    try:
        install_text_tables()
        styler = pd.DataFrame({"a": [1.5]}).style.format("{:.2f}")
        data, _ = shell.display_formatter.format(styler)
        assert "1.50" in data["text/plain"] and "Styler at" not in data["text/plain"], data
    finally:
        InteractiveShell.clear_instance()
