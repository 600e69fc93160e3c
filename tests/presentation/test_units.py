"""Durations printed in the unit that suits them (chapter 2's timings, on any device)."""

from __future__ import annotations

import math

import pytest

from actlab.presentation.units import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.10259749979013577e-9, "0.103 ns"),  # a CPU's ReLU per element
        (0.6638475006184308e-9, "0.664 ns"),
        (2.1349e-12, "0.00213 ns"),  # a GPU's: still three figures, not 0.00
        (12.345e-9, "12.3 ns"),
        (999.4e-9, "999 ns"),
        (999.7e-9, "1.00 µs"),  # rounding carries into the next unit
        (1.5e-6, "1.50 µs"),
        (42.0e-3, "42.0 ms"),
        (0.99951, "1.00 s"),
        (3.0, "3.00 s"),
        (1234.5, "1230 s"),
        (0.0, "0 s"),
    ],
)
def test_format_duration_picks_the_unit_from_the_value(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("exponent", range(-14, 3))
def test_format_duration_keeps_three_significant_figures_and_reads_back(exponent: int) -> None:
    seconds = 1.234567 * 10.0**exponent
    number, unit = format_duration(seconds).split()
    scale = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit]
    assert float(number) * scale == pytest.approx(seconds, rel=5e-3)
    assert len(number.replace(".", "").lstrip("0")) == 3  # 1.23, 12.3, 123 or 0.00123
    assert float(number) >= 1 or unit == "ns"  # the largest unit with a leading figure
    assert float(number) < 1000 or unit == "s"


def test_format_duration_digits_and_bad_values() -> None:
    assert format_duration(1.23456e-3, digits=1) == "1 ms"
    assert format_duration(1.23456e-3, digits=5) == "1.2346 ms"
    for bad in (-1e-9, math.inf, math.nan):
        with pytest.raises(ValueError, match="duration"):
            format_duration(bad)
    with pytest.raises(ValueError, match="digits"):
        format_duration(1.0, digits=0)
