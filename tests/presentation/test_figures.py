"""Figures that say what they show: alt text from the figure and the computed values, one palette."""

from __future__ import annotations

import base64
import html
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from actlab.presentation import figures  # noqa: E402


def two_panel() -> plt.Figure:
    fig, (a, b) = plt.subplots(1, 2)
    x = np.linspace(0, 500, 11)
    a.plot(x, np.exp(-x / 100), label="sigmoid")
    a.plot(x, np.exp(-x / 10), label="$\\mathrm{ReLU}$")
    a.set(title="training loss", xlabel="epoch", ylabel="loss", yscale="log")
    a.legend()
    im = b.imshow(np.arange(12.0).reshape(3, 4))
    fig.colorbar(im, ax=b, label="count")
    b.set(title="regions", xlabel="width", ylabel="depth")
    fig.suptitle("Two views")
    return fig


def test_structure_is_read_off_the_artists() -> None:
    fig = two_panel()
    text = figures.describe_figure(fig)
    plt.close(fig)
    assert text.startswith("'Two views'. 2 panels.")  # the colour bar is not a panel
    assert "Panel 1: plot 'training loss': vertical 'loss'" in text
    assert "log scale" in text and "horizontal 'epoch' from 0 to 500" in text
    assert "shows sigmoid, ReLU" in text
    assert "Panel 2: heatmap 'regions'" in text and "'depth'" in text
    assert "$" not in text and "\\" not in text, "mathtext is read as words"


def test_unlabelled_lines_are_counted_and_empty_figures_named() -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [2, 3])
    ax.plot([0, 1], [3, 2])
    assert "2 unlabelled lines" in figures.describe_figure(fig)
    assert "unlabelled axis" in figures.describe_figure(fig)
    plt.close(fig)
    empty = plt.figure()
    assert figures.describe_figure(empty) == "A figure with no axes."
    plt.close(empty)
    with pytest.raises(TypeError, match="Figure"):
        figures.describe_figure("not a figure")


def test_show_puts_the_finding_first_and_the_data_beside() -> None:
    fig = two_panel()
    final = {"sigmoid": 0.0067, "ReLU": 4.5e-23}
    summary = f"sigmoid ends highest, at {final['sigmoid']:.2g}"
    out = figures.show(
        fig,
        summary,
        table={"activation": list(final), "final loss": list(final.values())},
        display=False,
    )
    assert fig.number not in plt.get_fignums(), "show() closes the figure so it is not drawn twice"
    page = out._repr_html_()
    found = re.search(
        r'<img class="actlab-figure-img" src="data:image/png;base64,([^"]+)" alt="([^"]*)"', page
    )
    assert found, page[:200]
    assert base64.b64decode(found[1]).startswith(b"\x89PNG")
    alt = html.unescape(found[2])
    assert alt.startswith("sigmoid ends highest, at 0.0067. 'Two views'. 2 panels.")
    assert "<details" in page and "The numbers behind this figure" in page
    assert "4.5e-23" in page and "<th>final loss</th>" in page
    assert repr(out).startswith("[figure] sigmoid ends highest")


def test_a_dataframe_table_keeps_a_meaningful_index() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4], label="a")
    table = pd.DataFrame({"loss": [0.5, 0.25]}, index=pd.Index(["tanh", "GELU"], name="activation"))
    page = figures.show(fig, "tanh is worse", table=table, display=False)._repr_html_()
    assert "tanh" in page and "GELU" in page and "activation" in page


@pytest.mark.parametrize("summary", ["", "   ", None])
def test_a_figure_without_a_finding_is_refused(summary) -> None:
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="summary"):
        figures.show(fig, summary, display=False)
    plt.close(fig)


def test_bad_tables_are_refused() -> None:
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="DataFrame"):
        figures.show(fig, "a finding", table=[1, 2, 3], display=False)
    plt.close("all")


def test_alt_text_is_escaped_in_the_page() -> None:
    fig, ax = plt.subplots()
    ax.set_title('a "quoted" <title>')
    page = figures.show(fig, "x < y & z", display=False)._repr_html_()
    alt = re.search(r'alt="([^"]*)"', page)[1]
    assert html.unescape(alt).startswith("x < y & z. Plot 'a \"quoted\" <title>'")


def test_style_cycles_colour_blind_safe_colours_and_line_styles() -> None:
    with matplotlib.rc_context():
        figures.use_style()
        fig, ax = plt.subplots()
        lines = [ax.plot([0, 1], [i, i + 1])[0] for i in range(len(figures.CYCLE_COLOURS))]
        colours = [matplotlib.colors.to_hex(line.get_color()).upper() for line in lines]
        styles = [str(s) for s in matplotlib.rcParams["axes.prop_cycle"].by_key()["linestyle"]]
        plt.close(fig)
    assert colours == [c.upper() for c in figures.CYCLE_COLOURS]
    assert set(colours) <= {c.upper() for c in figures.OKABE_ITO.values()}
    assert len(set(styles)) == len(styles), (
        "every curve of a panel differs in style as well as colour"
    )
    assert figures.OKABE_ITO["yellow"] not in figures.CYCLE_COLOURS


def test_many_panels_are_summarised_by_grid_and_titles() -> None:
    fig, axes = plt.subplots(2, 3)
    for i, ax in enumerate(axes.flat):
        ax.plot([0, 1], [0, i])
        ax.set(title=f"layer {i}", xlabel="x", ylabel="y")
    text = figures.describe_figure(fig)
    plt.close(fig)
    assert text.startswith("6 plot panels in 2 rows of 3: 'layer 0', 'layer 1'")
    assert "'layer 5'" in text and "Panel 6" not in text


def test_line_styles_pair_colour_and_dash_uniquely() -> None:
    pairs = {(s["color"], str(s["linestyle"])) for s in map(figures.line_style, range(49))}
    assert len(pairs) == 49
    assert figures.line_style(0) == {"color": figures.CYCLE_COLOURS[0], "linestyle": "-"}


def test_panel_grid_is_read_from_the_page_with_colour_bars() -> None:
    fig, axes = plt.subplots(3, 3)
    for ax in axes.flat:
        fig.colorbar(ax.imshow(np.eye(2)), ax=ax)
    text = figures.describe_figure(fig)
    plt.close(fig)
    assert text.startswith("9 heatmap panels in 3 rows of 3")


def test_one_panel_keeps_its_names_case_and_show_displays_once(monkeypatch) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="ReLU")
    ax.legend()
    assert "shows ReLU" in figures.describe_figure(fig)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert figures.show(fig, "ReLU rises") is None
    assert len(shown) == 1 and shown[0].alt.startswith("ReLU rises.")
