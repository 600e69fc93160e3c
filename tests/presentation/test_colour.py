"""Colour-vision simulation, and the palette's pairs that come close under it."""

import itertools

import numpy as np
import pytest

from actlab.engine.activations import ACTIVATIONS
from actlab.presentation.colour import CLOSE, DEFICIENCIES, distance, simulate, worst_distance
from actlab.presentation.figures import CYCLE_COLOURS, STYLES, line_style


def test_simulation_keeps_greys_and_merges_red_and_green_for_dichromats() -> None:
    for deficiency in DEFICIENCIES:
        assert np.allclose(simulate("#808080", deficiency), simulate("#808080", None), atol=0.02)
    # pure red and green: far apart to normal vision, close under protanopia/deuteranopia
    assert distance("#d00000", "#00a000") > 80
    assert distance("#d00000", "#00a000", "deuteranopia") < distance("#d00000", "#00a000") / 2
    assert distance("#ffffff", "#000000") == pytest.approx(100, abs=0.01)
    with pytest.raises(ValueError, match="unknown deficiency"):
        simulate("#000000", "monochromacy")


def test_activations_whose_colours_come_close_differ_in_dash_and_marker() -> None:
    close = []
    for a, b in itertools.combinations(ACTIVATIONS, 2):
        if worst_distance(STYLES[a]["color"], STYLES[b]["color"]) < CLOSE:
            close.append((a, b))
            assert STYLES[a]["ls"] != STYLES[b]["ls"], f"{a} and {b}: close colours, same dash"
            assert STYLES[a]["marker"] != STYLES[b]["marker"], f"{a} and {b}: same marker"
    # the check is not vacuous: Okabe–Ito has pairs that dichromats see as close
    assert ("tanh", "elu") in close


def test_the_colour_cycle_pairs_close_colours_with_distinct_dashes() -> None:
    n = len(CYCLE_COLOURS)
    for i, j in itertools.combinations(range(n), 2):
        if worst_distance(CYCLE_COLOURS[i], CYCLE_COLOURS[j]) < CLOSE:
            assert line_style(i)["linestyle"] != line_style(j)["linestyle"]
