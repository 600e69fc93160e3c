"""Chapter 2's library: the derivative checks, stable and naive forms, measured properties,
the overlay and tangent figures and the tangent explorer."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from conftest import ACTIVATION_NAMES as NAMES
from conftest import Z_GRID as Z

from actlab.chapters import ch02_derivatives as D
from actlab.engine import activations as A
from actlab.engine.device import get_device
from actlab.presentation.prose import num


def test_three_way_check_reports_small_errors(act: A.Activation) -> None:
    errors = D.three_way_check(act, Z)
    assert set(errors) == {
        "closed vs autograd",
        "closed vs finite diff",
        "autograd vs finite diff",
        "torch closed vs autograd",
    }
    assert max(errors.values()) < 1e-6, errors


def test_naive_sigmoid_overflows_where_the_stable_one_does_not() -> None:
    with pytest.warns(RuntimeWarning, match="overflow"):
        naive = D.naive_sigmoid(np.array([-1000.0]))
    assert naive[0] == 0.0  # 1 / (1 + inf): right by luck, after the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert A.sigmoid(np.array([-1000.0]))[0] == 0.0
    z = np.linspace(-30, 30, 61)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(A.sigmoid(z), D.naive_sigmoid(z), rtol=1e-12)


def test_stable_softplus() -> None:
    with np.errstate(over="ignore"):
        assert np.isinf(D.naive_softplus(np.array([1000.0]))[0])
    assert A.softplus(np.array([1000.0]))[0] == 1000.0
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(A.softplus(z), np.log1p(np.exp(z)), rtol=1e-12)


def test_softmax_with_the_max_subtracted() -> None:
    logits = np.array([[1000.0, 1001.0, 1002.0], [1.0, 2.0, 3.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = D.naive_softmax(logits)
    assert np.all(np.isnan(naive[0]))
    stable = D.softmax(logits)
    assert np.all(np.isfinite(stable))
    np.testing.assert_allclose(stable.sum(axis=-1), 1.0)
    np.testing.assert_allclose(stable[0], stable[1])  # softmax ignores a common shift
    np.testing.assert_allclose(stable[1], naive[1])
    ref = torch.softmax(torch.tensor(logits), dim=-1).numpy()
    np.testing.assert_allclose(stable, ref, rtol=1e-12)


def test_properties_match_what_the_chapter_says() -> None:
    props = {p.name: p for p in D.properties_table(time_it=False)}
    assert props["sigmoid"].range_text == "(0, 1)"
    assert props["tanh"].range_text == "(−1, 1)"
    assert props["relu"].range_text == "[0, ∞)"
    assert props["leaky_relu"].range_text == "(−∞, ∞)"
    assert props["elu"].range_text == "(−1, ∞)"
    assert props["gelu"].low == pytest.approx(-0.17, abs=1e-3)
    assert props["silu"].low == pytest.approx(-0.278, abs=1e-3)
    assert [n for n, p in props.items() if p.zero_centred] == ["tanh"]
    assert {n for n, p in props.items() if p.flat_tails == "both"} == {"sigmoid", "tanh"}
    assert props["leaky_relu"].flat_tails == "none"
    assert props["relu"].sparsity == pytest.approx(0.5, abs=0.01)
    assert all(p.sparsity == 0 for n, p in props.items() if n != "relu")
    assert props["sigmoid"].max_slope == pytest.approx(0.25)
    assert props["gelu"].max_slope == pytest.approx(1.129, abs=1e-3)
    assert props["relu"].smoothness == "kink (C0)"
    assert props["leaky_relu"].smoothness == "kink (C0)"
    assert props["elu"].smoothness == "C1"
    assert {n for n, p in props.items() if p.smoothness == "smooth"} == {
        "sigmoid",
        "tanh",
        "gelu",
        "gelu_tanh",
        "softplus",
        "silu",
    }


@pytest.mark.device
def test_benchmark_returns_a_positive_time() -> None:
    ns = D.benchmark(A.get("relu"), get_device(), n=10_000, repeats=3)
    assert 0 < ns < 1e6


@pytest.mark.device
def test_benchmark_is_the_median_of_the_timed_calls() -> None:
    runs = D.benchmark_runs(A.get("relu"), get_device(), n=10_000, repeats=5)
    assert len(runs) == 5 and all(0 < ns < 1e6 for ns in runs)


def test_timing_details_name_the_one_thread_the_cpu_timing_uses() -> None:
    line = D.timing_details(torch.device("cpu"))
    assert line.startswith("timed on cpu with 1 thread")
    assert "threads)" not in line  # not describe_device's count of the page's threads


def test_gelu_slope_passes_one_near_three_quarters_and_peaks_at_root_two() -> None:
    z = np.linspace(0, 4, 400_001)
    slope = A.dgelu(z)
    assert z[np.argmax(slope > 1)] == pytest.approx(0.7518, abs=1e-4)
    assert z[np.argmax(slope)] == pytest.approx(np.sqrt(2), abs=1e-4)  # φ(z)(2 - z²) = 0
    props = D.properties(A.get("gelu"))
    assert props.max_slope == pytest.approx(slope.max(), abs=1e-9)


def test_properties_frame_shows_each_time_in_a_unit_that_keeps_its_figures() -> None:
    from actlab.chapters.ch02_derivatives import properties_frame

    relu, gelu = D.properties_table([A.get("relu"), A.get("gelu")], time_it=False)
    timed = [
        D.Properties(**{**relu.__dict__, "ns_per_element": 0.00213}),  # a GPU's share of 1 ns
        D.Properties(**{**gelu.__dict__, "ns_per_element": 1530.0}),
    ]
    column = properties_frame(timed)["time per element"]
    assert column.tolist() == ["0.00213 ns", "1.53 µs"]
    assert properties_frame([relu])["time per element"].tolist() == [""]  # not timed


def curves(ax) -> list:
    return [line for line in ax.lines if len(line.get_xdata()) > 2]  # not the axis lines


def test_overlay_draws_each_family_in_its_own_row_in_registry_styles() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from actlab.chapters.ch02_derivatives import FAMILIES, overlay_figure
    from actlab.presentation.figures import STYLES

    fig = overlay_figure()
    axes = fig.axes
    assert len(axes) == 2 * len(FAMILIES) + 2
    drawn = []
    for row, (_, names) in enumerate(FAMILIES):
        ax_f, ax_d = axes[2 * row], axes[2 * row + 1]
        f_lines, d_lines = curves(ax_f), curves(ax_d)
        assert [line.get_label() for line in f_lines] == [A.LABELS[n] for n in names]
        colours = [to_hex(line.get_color()).upper() for line in f_lines]
        assert len(set(colours)) == len(colours), "two curves of one panel share a colour"
        for name, f_line, d_line, colour in zip(names, f_lines, d_lines, colours, strict=True):
            z = np.asarray(f_line.get_xdata())
            np.testing.assert_allclose(f_line.get_ydata(), A.get(name).np_fn(z))
            np.testing.assert_allclose(d_line.get_ydata(), A.get(name).np_dfn(z))
            assert colour == STYLES[name]["color"].upper()
            assert f_line.get_marker() == STYLES[name]["marker"]
            low, high = ax_f.get_ylim()
            assert low <= f_line.get_ydata().min() and f_line.get_ydata().max() <= high
            low, high = ax_d.get_ylim()
            assert low <= d_line.get_ydata().min() and d_line.get_ydata().max() <= high
        drawn += names
    assert sorted(drawn) == sorted(n for n in NAMES if n != "gelu_tanh")
    # exact GELU and its approximation are never two curves of one panel: their difference is
    (diff_f,) = curves(axes[-2])
    (diff_d,) = curves(axes[-1])
    z = np.asarray(diff_f.get_xdata())
    np.testing.assert_allclose(diff_f.get_ydata(), A.gelu_tanh(z) - A.gelu(z))
    np.testing.assert_allclose(diff_d.get_ydata(), A.dgelu_tanh(z) - A.dgelu(z))
    assert to_hex(diff_f.get_color()).upper() == STYLES["gelu_tanh"]["color"].upper()
    plt.close(fig)


def test_the_explorer_slope_axis_holds_every_slope_in_view_and_the_minima_the_page_quotes() -> None:
    import matplotlib.pyplot as plt

    ext = D.slope_extremes()
    # the minima the page quotes: GELU's at -sqrt(2), SiLU's near -2.4
    assert ext.loc["gelu", "smallest slope"] == pytest.approx(-0.1289, abs=1e-4)
    assert ext.loc["gelu", "at z"] == pytest.approx(-np.sqrt(2), abs=0.01)
    assert ext.loc["silu", "smallest slope"] == pytest.approx(-0.0998, abs=1e-4)
    explorer = D.tangent_explorer(names=["relu", "gelu"], zs=[0.0])
    low, high = explorer.draw(activation="relu", z=0.0).axes[1].get_ylim()
    plt.close("all")
    assert low == pytest.approx(D.slope_axis(["relu", "gelu"])[0])
    assert low < ext.loc["gelu", "smallest slope"] and high > ext.loc["gelu", "largest slope"]
    book = D.tangent_explorer()
    for name in D.EXPLORER_NAMES:
        low, high = book.draw(activation=name, z=0.0).axes[1].get_ylim()
        plt.close("all")
        assert low < ext["smallest slope"].min() and high > ext["largest slope"].max()
    # the explorer's z stops reach each quoted minimum within half a step
    for name in ("gelu", "silu"):
        assert min(abs(z - ext.loc[name, "at z"]) for z in D.EXPLORER_Z) <= 0.25


def test_benchmark_times_cpu_calls_on_one_thread_as_the_page_says() -> None:
    seen = []

    def spy(t: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return t

    act = dataclasses.replace(A.get("relu"), torch_fn=spy)
    D.benchmark_runs(act, torch.device("cpu"), n=100, repeats=2)
    assert seen and set(seen) == {1}
    assert "with 1 thread" in D.timing_details(torch.device("cpu"))


@pytest.mark.parametrize("name, z", [("relu", 0.0), ("gelu", -3.0), ("sigmoid", 1.5)])
def test_tangent_figure_touches_the_curve_with_the_derivative_as_slope(name: str, z: float) -> None:
    import matplotlib.pyplot as plt

    from actlab.chapters.ch02_derivatives import tangent_figure

    act = A.get(name)
    fig = tangent_figure(name, z)
    ax_f, ax_d = fig.axes
    tangent = next(line for line in ax_f.lines if line.get_label() == "tangent")
    x, y = np.asarray(tangent.get_xdata()), np.asarray(tangent.get_ydata())
    np.testing.assert_allclose(np.diff(y) / np.diff(x), act.np_dfn(z), atol=1e-9)
    assert np.interp(z, x, y) == pytest.approx(float(act.np_fn(z)), abs=1e-9)
    points = [line for line in ax_d.lines if len(line.get_xdata()) == 1]
    assert [(p.get_xdata()[0], p.get_ydata()[0]) for p in points] == [
        (z, pytest.approx(act.np_dfn(z)))
    ]
    assert num(float(act.np_fn(z)), ".4g") in ax_f.get_title()  # true minus sign
    plt.close(fig)


def test_overlay_table_heads_its_columns_with_a_true_minus_sign() -> None:
    assert list(D.overlay_table(["relu"]).columns[1:3]) == ["φ(\N{MINUS SIGN}5)", "φ(5)"]


def test_chapter_figures_follow_the_figure_rule() -> None:
    import matplotlib.pyplot as plt

    from actlab.chapters.ch02_derivatives import overlay_figure, tangent_figure
    from actlab.presentation.figures import check_figure

    for fig in (overlay_figure(), tangent_figure("relu", 0.0), tangent_figure("silu", -3.0)):
        check_figure(fig)  # content width, two panels a row, no text under 10 pt
        plt.close(fig)


def test_tangent_figure_shows_the_whole_slope_curve() -> None:
    import matplotlib.pyplot as plt

    from actlab.chapters.ch02_derivatives import tangent_figure

    fig = tangent_figure("gelu", 0.0)
    low, high = fig.axes[1].get_ylim()
    slopes = A.get("gelu").np_dfn(D.view_grid())
    assert low < slopes.min() and high > slopes.max()  # GELU's dip below 0 is in view
    plt.close(fig)


def test_tangent_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    from actlab.chapters.ch02_derivatives import tangent_explorer

    explorer = tangent_explorer(names=["sigmoid", "relu"], zs=[-1.0, 0.0, 1.0])
    assert explorer.n_frames == 6
    frames = explorer.render_all()
    assert len(set(frames)) == 6  # every combination draws something different
    live = explorer.live()  # every frame drawn: stacks the browser switches, as in the book
    dropdown, slider = controls(live)
    frames, text = live.children[-2:]  # the frames; the last child is the shown one's description
    assert frames.children[1].children[2].value == explorer.frame_html((1, 2))
    before = text.value
    slider.index = 2
    assert text.value != before
    dropdown.index = 1
    assert text.value == explorer.frame_text_html((1, 2))
    assert "ReLU at z = 1: value 1, slope of the tangent 1" in explorer.frame_alt((1, 2))


def test_properties_frame_has_one_row_per_activation() -> None:
    from actlab.chapters.ch02_derivatives import properties_frame

    frame = properties_frame(D.properties_table(time_it=False))
    assert len(frame) == len(NAMES)
    assert frame.loc["ReLU", "exact zeros"] == "50 %"
    assert frame.loc["tanh", "zero-centred (mean)"].startswith("yes")
    assert frame.loc["sigmoid", "saturates (φ' → 0)"] == "both sides"
    assert frame.loc["Leaky ReLU (0.01)", "saturates (φ' → 0)"] == "no"


def test_grader_check_proves_a_right_derivative_and_rejects_a_wrong_one() -> None:
    sigmoid = A.get("sigmoid")
    assert D.grader_check(sigmoid).method == "symbolic"
    # a derivative with a dropped factor: sigma(z) instead of sigma(z)(1 - sigma(z))
    wrong = dataclasses.replace(sigmoid, sym_dfn=sigmoid.sym_fn)
    verdict = D.grader_check(wrong)
    assert not verdict.equivalent and verdict.method != "symbolic"
