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
    assert "4.5e−23" in page and "<th>final loss</th>" in page
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


# --- the figure rule: content width, two panels a row, 10 pt text, twice the density ----


def test_panels_wrap_at_two_a_row_at_content_width() -> None:
    fig, axes = figures.panels(5, height=2.0)
    assert len(axes) == 5 and len(fig.axes) == 5
    assert fig.get_figwidth() == figures.CONTENT_WIDTH_IN
    assert fig.get_figheight() == pytest.approx(3 * 2.0)
    assert len({round(ax.get_position().x0, 2) for ax in axes}) == 2
    assert figures.check_figure(fig) >= figures.MIN_FONT_PT
    plt.close(fig)
    one, (ax,) = figures.panels()
    assert one.get_figwidth() == figures.CONTENT_WIDTH_IN
    plt.close(one)
    with pytest.raises(figures.FigureRuleError, match="at most 2 panels per row"):
        figures.panels(3, ncols=3)


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda: plt.subplots(1, 2, figsize=(10, 3))[0], "10.00 in wide"),
        (lambda: plt.subplots(1, 3, figsize=(6.5, 3))[0], "3 panels side by side"),
        (lambda: _with_small_text(), "'tiny note' at 7 pt"),
    ],
)
def test_figures_that_break_the_rule_are_refused_with_the_reason(make, complaint) -> None:
    figures.use_style()
    fig = make()
    with pytest.raises(figures.FigureRuleError, match=re.escape(complaint)):
        figures.check_figure(fig)
    plt.close(fig)


def _with_small_text() -> plt.Figure:
    fig, (ax,) = figures.panels()
    ax.text(0.5, 0.5, "tiny note", fontsize=7)
    return fig


def test_a_rendered_figure_is_shown_at_half_its_pixels_and_says_its_text_size() -> None:
    figures.use_style()
    fig, (ax,) = figures.panels(height=2.5)
    ax.plot([0, 1], [0, 1], label="ReLU")
    ax.legend()
    rendered = figures.render(fig)
    width, height = figures.png_size(rendered.png)
    # twice the pixels of the content width (bbox_inches="tight" trims a little)
    assert 2 * 600 < width <= 2 * figures.CONTENT_WIDTH_IN * figures.CSS_DPI + 20
    tag = figures.img_tag(rendered, "a line")
    assert f'width="{round(width / 2)}"' in tag and f'height="{round(height / 2)}"' in tag
    font_px = float(re.search(r'data-font-px="([0-9.]+)"', tag)[1])
    # 10 pt at 200 dpi is 27.8 image pixels: 13.9 CSS pixels once shown at half size
    assert font_px == pytest.approx(figures.MIN_FONT_PT * 200 / 72, abs=0.1)
    with pytest.raises(ValueError, match="not a PNG"):
        figures.png_size(b"GIF89a" + bytes(30))


def test_a_named_figure_is_glued_for_a_numbered_caption(monkeypatch) -> None:
    glued = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, obj, display: glued.update({name: obj}))
    fig, (ax,) = figures.panels()
    ax.plot([0, 1], [1, 0])
    assert figures.show(fig, "It falls", name="fig-ch09-falls") is None
    assert list(glued) == ["fig-ch09-falls"]
    page = glued["fig-ch09-falls"]._repr_html_()
    assert page.startswith('<div class="actlab-figure"><img') and "It falls." in page
    with pytest.raises(ValueError, match="fig-ch04-stress"):
        figures.show(plt.figure(), "x", name="Figure 2")


def test_descriptions_read_math_as_symbols_and_tables_use_a_true_minus() -> None:
    fig, (ax,) = figures.panels()
    ax.plot([-5, 0], [-0.99, 0], label="$\\mathrm{ELU}$")
    ax.set(xlabel="$w_2$", ylabel="$\\varphi'(z)$", title="lr $10^{-3}$")
    ax.legend()
    text = figures.describe_figure(fig)
    assert "'φ′(z)'" in text or "'φ'(z)'" in text
    assert "'w2'" in text and "'lr 10^−3'" in text and "varphi" not in text
    out = figures.show(fig, "ELU dips", table={"z": [-5.0], "φ(z)": [-0.993]}, display=False)
    assert "<td>−5</td>" in out.table_html and "<td>−0.993</td>" in out.table_html


def test_show_refuses_a_figure_that_breaks_the_rule() -> None:
    fig, ax = plt.subplots(1, 4, figsize=(13, 3))
    with pytest.raises(figures.FigureRuleError, match="13.00 in wide.*4 panels side by side"):
        figures.show(fig, "Four panels in a row", display=False)
    plt.close(fig)


def test_a_shown_figure_also_displays_as_its_png_for_the_pdf() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    out = figures.show(two_panel(), "a finding", display=False)
    shell = InteractiveShell.instance()
    try:
        data, _ = shell.display_formatter.format(out)
    finally:
        InteractiveShell.clear_instance()
    assert data["image/png"] == out.png.png, "the PNG is the figure the web page shows"
    assert data["text/html"].startswith('<div class="actlab-figure">')
    assert data["text/plain"].startswith("[figure] a finding")
