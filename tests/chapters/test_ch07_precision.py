"""Chapter 7's precision measurements: the formats' facts, activations' errors, underflow."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

from actlab.chapters.ch07_scale.precision import (
    LOW_FORMATS,
    PRECISION_ACTIVATIONS,
    activation_errors,
    error_curves,
    error_figure,
    evaluate,
    format_name,
    format_table,
    reference,
    relative_error,
    slope_product_underflow,
    stored_values,
)
from actlab.engine.activations import LABELS
from actlab.presentation.figures import check_figure


@pytest.fixture(scope="module")
def formats():
    return format_table()


@pytest.fixture(scope="module")
def errors():
    table = activation_errors()
    return table.rename(index={label: key for key, label in LABELS.items()}, level=0)


# --------------------------------------------------------------------------- formats


def test_format_table_facts(formats):
    assert formats.loc["float16", "largest finite"] == 65504
    assert formats.loc["bfloat16", "significand bits"] == 8
    assert formats.loc["bfloat16", "stored significand bits"] == 7
    assert formats.loc["float16", "smallest normal"] == pytest.approx(6.1e-5, rel=0.01)
    assert formats.loc["float16", "smallest normal"] == 2.0**-14
    # bfloat16 keeps float32's exponent, hence its range
    assert formats.loc["bfloat16", "exponent bits"] == formats.loc["float32", "exponent bits"] == 8
    assert formats.loc["bfloat16", "smallest normal"] == formats.loc["float32", "smallest normal"]
    ratio = formats.loc["bfloat16", "largest finite"] / formats.loc["float32", "largest finite"]
    assert 0.99 < ratio <= 1.0
    assert formats.loc["float16", "exponent bits"] == 5
    assert formats.loc["float16", "significand bits"] == 11


def test_format_table_is_consistent(formats):
    for name, row in formats.iterrows():
        assert row["bits"] == 1 + row["exponent bits"] + row["stored significand bits"]
        assert row["machine epsilon"] == 2.0 ** (1 - row["significand bits"])
        assert row["smallest subnormal"] == row["smallest normal"] * row["machine epsilon"]
        assert row["decimal digits"] == pytest.approx(row["significand bits"] * math.log10(2))
        emax = 2 ** (row["exponent bits"] - 1) - 1
        expected_max = (2 - row["machine epsilon"]) * 2.0**emax
        assert row["largest finite"] == expected_max, name
    assert formats.loc["float16", "smallest subnormal"] == 2.0**-24
    assert list(formats.index) == ["float64", "float32", "bfloat16", "float16"]


def test_format_name():
    assert format_name(torch.bfloat16) == "bfloat16"
    assert format_name("float16") == "float16"
    with pytest.raises(ValueError, match="unknown format"):
        format_name("float8")


def test_stored_values():
    table = stored_values([65504.0, 65520.0, 1.001, 1e-8])
    assert table.loc[65504.0, "float16"] == 65504
    assert table.loc[65520.0, "float16"] == math.inf  # rounds up past the largest finite
    assert table.loc[1.001, "bfloat16"] == 1.0  # 1 + 2^-7 is bfloat16's next number
    assert table.loc[1e-8, "float16"] == 0.0
    assert table.loc[1e-8, "bfloat16"] == pytest.approx(1e-8, rel=2**-8)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", PRECISION_ACTIVATIONS)
def test_reference_matches_high_precision(name):
    """The float64 reference is right to ~1e-12 against 300-digit arithmetic, tails too
    (enough digits that 1 + tanh(u) keeps GELU (tanh)'s far left tail, about 1e-243)."""
    mpmath.mp.dps = 300
    z_mp = mpmath.mpf

    def value(z):
        if name == "relu":
            return max(z, 0)
        if name == "sigmoid":
            return 1 / (1 + mpmath.exp(-z))
        if name == "tanh":
            return mpmath.tanh(z)
        if name == "silu":
            return z / (1 + mpmath.exp(-z))
        if name == "gelu":
            return z * mpmath.ncdf(z)
        u = mpmath.sqrt(2 / mpmath.pi) * (z + mpmath.mpf("0.044715") * z**3)
        return z / 2 * (1 + mpmath.tanh(u))

    zs = np.array([-19.5, -12.25, -6.5, -1.25, 0.375, 3.0, 9.5, 18.75])
    val, slope = reference(name, zs)
    for z, v, s in zip(zs, val, slope, strict=True):
        exact = value(z_mp(z))
        exact_slope = mpmath.diff(value, z_mp(z))
        assert v == pytest.approx(float(exact), rel=1e-12, abs=1e-300), (name, z)
        assert s == pytest.approx(float(exact_slope), rel=1e-10, abs=1e-300), (name, z)


def test_relative_error_conventions():
    err = relative_error(np.array([0.0, 1.0, 2.0, 0.5]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert list(err) == [0.0, math.inf, 1.0, 0.5]


def test_evaluate_runs_in_the_format():
    z = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    value, slope = evaluate("sigmoid", "bfloat16", z)
    expected = torch.sigmoid(z.to(torch.bfloat16)).to(torch.float64).numpy()
    np.testing.assert_array_equal(value, expected)
    assert slope.dtype == np.float64


def test_relu_is_exact_on_rounded_inputs(errors):
    for fmt in LOW_FORMATS:
        row = errors.loc[("relu", fmt)]
        assert row["value max error"] == 0.0
        assert row["slope max error"] == 0.0
        assert np.isnan(row["value 0 for z ≤"]) and np.isnan(row["slope 0 for z ≥"])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "tanh", "sigmoid"])
def test_float32_is_more_accurate_than_bfloat16(errors, name):
    f32, bf16 = errors.loc[(name, "float32")], errors.loc[(name, "bfloat16")]
    for part in ("value", "slope"):
        assert 0 < f32[f"{part} median error"] < bf16[f"{part} median error"], part
        assert f32[f"{part} median error"] < 1e-6
    # 8 significant bits: a typical error is a fraction of 2^-8, never below 2^-16
    assert 2**-16 < bf16["value median error"] < 2**-7


def test_sigmoid_slope_underflows_in_float16(errors):
    row = errors.loc[("sigmoid", "float16")]
    left = row["slope 0 for z ≤"]
    # sigma'(z) ~ e^z drops under float16's smallest subnormal 2^-24 near z = -17.3
    assert -18.5 < left < -16.5
    assert math.exp(left) < 2.0**-23
    # on the right, sigma(z) rounds to 1 and the slope sigma (1 - sigma) is exactly 0
    assert 7.0 < row["slope 0 for z ≥"] < 9.5
    # bfloat16 keeps float32's range: no underflow on the left on this grid
    assert np.isnan(errors.loc[("sigmoid", "bfloat16"), "slope 0 for z ≤"])


def test_tanh_slope_is_zero_where_tanh_rounds_to_one(errors):
    right = errors.loc[("tanh", "bfloat16"), "slope 0 for z ≥"]
    assert 2.5 < right < 4.5
    assert right < errors.loc[("tanh", "float16"), "slope 0 for z ≥"]
    assert right < errors.loc[("tanh", "float32"), "slope 0 for z ≥"]


def test_errors_table_shape(errors):
    assert len(errors) == len(PRECISION_ACTIVATIONS) * len(LOW_FORMATS)
    table = activation_errors(["silu"], ["float16"], z=np.linspace(-3, 3, 61))
    assert list(table.index) == [("SiLU", "float16")]
    assert table.attrs["typical"] == 4.0
    assert -3 <= table.loc[("SiLU", "float16"), "value worst z"] <= 3


# --------------------------------------------------------------------------- products


def test_slope_product_underflow():
    table = slope_product_underflow()
    f16, bf16 = table.loc["float16"], table.loc["bfloat16"]
    assert f16["zero depth"] < bf16["zero depth"]
    assert f16["first subnormal depth"] < f16["zero depth"]
    # 0.25^L = 2^-2L: subnormal below 2^-14 (L = 8), zero past 2^-24 (L = 13)
    assert f16["first subnormal depth"] == 8
    assert f16["zero depth"] == 13
    assert f16["last nonzero product"] == 2.0**-24
    assert bf16["first subnormal depth"] == table.loc["float32", "first subnormal depth"] == 64
    assert table.loc["float64", "zero depth"] > table.loc["float32", "zero depth"]


# --------------------------------------------------------------------------- figure


def test_error_curves_and_figure():
    curves = error_curves("sigmoid", ["float32", "float16"], z=np.linspace(-20, 20, 401))
    assert set(curves["format"]) == {"float32", "float16"}
    f16 = curves[curves["format"] == "float16"]
    assert f16["value error"].iloc[0] == 1.0  # sigma(-20) underflows to 0 in float16
    assert (f16["value envelope"] >= f16["value error"]).all()
    fig = error_figure("sigmoid", curves=curves)
    check_figure(fig)
    assert [ax.get_yscale() for ax in fig.axes[:2]] == ["log", "log"]
