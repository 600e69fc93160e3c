"""Chapter 7's precision measurements: number formats, each activation's error in each one,
where values and slopes become exactly zero, and the depth at which a product of slopes does.

Every number here is computed: the formats' facts from :class:`torch.finfo` and arithmetic
in the format itself, the activations' errors by running the registry's PyTorch modules
(:func:`actlab.engine.models.activation_module`) in the format and in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from actlab.engine import activations as acts
from actlab.engine.activations import LABELS
from actlab.engine.models import activation_module
from actlab.presentation.figures import line_style, panels

#: The formats the chapter compares, widest first, by the name the book prints.
FORMATS: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
#: The formats narrower than float64, the reference every error is measured against.
LOW_FORMATS = ("float32", "bfloat16", "float16")
#: The activations the chapter measures (registry keys).
PRECISION_ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid")
#: The default grid of pre-activations: -20 to 20 in steps of 0.01.
Z_RANGE = (-20.0, 20.0)
Z_POINTS = 4001

FormatLike = str | torch.dtype


def format_name(fmt: FormatLike) -> str:
    """The book's name of a format (``"bfloat16"``) from that name or a ``torch.dtype``."""
    if isinstance(fmt, torch.dtype):
        for name, dtype in FORMATS.items():
            if dtype == fmt:
                return name
    elif fmt in FORMATS:
        return fmt
    raise ValueError(f"unknown format {fmt!r}; known: {list(FORMATS)}")


def _dtype(fmt: FormatLike) -> torch.dtype:
    return FORMATS[format_name(fmt)]


def _smallest_subnormal(dtype: torch.dtype) -> float:
    """The smallest positive number of ``dtype``, found by halving the smallest normal
    number in ``dtype`` until the next halving gives 0."""
    x = torch.tensor(torch.finfo(dtype).smallest_normal, dtype=dtype)
    while True:
        half = x / 2
        if half.cpu().item() == 0.0:
            return float(x.cpu().item())
        x = half


def format_table(formats: Sequence[FormatLike] = tuple(FORMATS)) -> pd.DataFrame:
    """The facts of each number format, computed from :class:`torch.finfo` and arithmetic.

    The significand's bits count the implicit leading 1 (``1 - log2(eps)``); the stored
    bits are one fewer; the exponent takes the bits left after the sign and the stored
    significand. Decimal digits are ``significand bits x log10(2)``.

    Args:
        formats: format names or dtypes (default: float64, float32, bfloat16, float16).

    Returns:
        one row per format, indexed by its name, with the columns "bits", "exponent bits",
        "significand bits", "stored significand bits", "largest finite", "smallest normal",
        "smallest subnormal", "machine epsilon" and "decimal digits".
    """
    rows = []
    for fmt in formats:
        dtype = _dtype(fmt)
        info = torch.finfo(dtype)
        significand = 1 - round(math.log2(info.eps))
        stored = significand - 1
        rows.append(
            {
                "format": format_name(fmt),
                "bits": info.bits,
                "exponent bits": info.bits - 1 - stored,
                "significand bits": significand,
                "stored significand bits": stored,
                "largest finite": float(info.max),
                "smallest normal": float(info.smallest_normal),
                "smallest subnormal": _smallest_subnormal(dtype),
                "machine epsilon": float(info.eps),
                "decimal digits": significand * math.log10(2),
            }
        )
    return pd.DataFrame(rows).set_index("format")


def stored_values(
    values: Sequence[float], formats: Sequence[FormatLike] = LOW_FORMATS
) -> pd.DataFrame:
    """What each of ``values`` becomes when stored in each format (round to nearest even).

    Returns:
        one row per value (index "value"), one column per format: the stored number as a
        float (``inf`` where it overflows, 0 where it underflows).
    """
    x = torch.tensor(list(values), dtype=torch.float64)
    table = {format_name(f): x.to(_dtype(f)).to(torch.float64).cpu().numpy() for f in formats}
    return pd.DataFrame(table, index=pd.Index(list(values), name="value"))


def default_grid() -> torch.Tensor:
    """The default pre-activations :data:`Z_RANGE` with :data:`Z_POINTS` points, float64."""
    return torch.linspace(*Z_RANGE, Z_POINTS, dtype=torch.float64)


def evaluate(name: str, fmt: FormatLike, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Value and slope of activation ``name`` at ``z``, computed in format ``fmt``.

    ``z`` is rounded to the format first; the registry's module runs on it in the format,
    and the slope is PyTorch's autograd in the format. On the CPU, PyTorch's bfloat16 and
    float16 kernels compute an elementwise function in float32 and round the result once
    to the format (the backward likewise, from the rounded forward output where the
    formula uses it, as sigmoid's and tanh's do): that is what the reader's computer does,
    and what is measured here.

    Returns:
        the value and the slope, as float64 NumPy arrays of ``z``'s shape.
    """
    zf = z.detach().to(_dtype(fmt)).requires_grad_(True)
    y = activation_module(name)(zf)
    (slope,) = torch.autograd.grad(y, zf, torch.ones_like(y))
    return (
        y.detach().cpu().to(torch.float64).numpy(),
        slope.cpu().to(torch.float64).numpy(),
    )


def _tanh_slope(z: np.ndarray) -> np.ndarray:
    """tanh'(z) = 4 sigma(2z) sigma(-2z): no cancellation where tanh(z) is near +-1."""
    return 4.0 * acts.dsigmoid(2.0 * z)


def _gelu_tanh(z: np.ndarray) -> np.ndarray:
    """z (1 + tanh u) / 2 = z sigma(2u): no cancellation where tanh u is near -1."""
    u = acts._GELU_C * (z + acts._GELU_K * z**3)
    return z * acts.sigmoid(2.0 * u)


def _gelu_tanh_slope(z: np.ndarray) -> np.ndarray:
    """sigma(2u) + 2 z u' sigma(2u) sigma(-2u), the derivative of z sigma(2u)."""
    u = acts._GELU_C * (z + acts._GELU_K * z**3)
    du = acts._GELU_C * (1.0 + 3.0 * acts._GELU_K * z * z)
    return acts.sigmoid(2.0 * u) + 2.0 * z * du * acts.dsigmoid(2.0 * u)


#: Float64 forms that lose no digits to cancellation where the registry's do.
_ACCURATE = {"tanh": (np.tanh, _tanh_slope), "gelu_tanh": (_gelu_tanh, _gelu_tanh_slope)}


def reference(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and slope of activation ``name`` at ``z`` in float64, to about 15 digits
    everywhere on the grid, the far tails included.

    PyTorch's own float64 kernels are not this reference: they lose the tails to
    cancellation (GELU's ``1 + erf`` is exactly 0 in float64 below z = -8.3, tanh's slope
    ``1 - tanh^2`` above |z| = 19). The registry's NumPy closed forms
    (:mod:`actlab.engine.activations`) are used, with two rewritten: tanh's slope as
    ``4 sigma(2z) sigma(-2z)`` and GELU (tanh) as ``z sigma(2u)``, which are equal to them
    and need no ``1 - 1``.
    """
    z = np.asarray(z, dtype=np.float64)
    if name in _ACCURATE:
        fn, dfn = _ACCURATE[name]
    else:
        act = acts.get(name)
        fn, dfn = act.np_fn, act.np_dfn
    return fn(z), dfn(z)


def relative_error(low: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``|low - ref| / |ref|``, 0 where both are equal (also both 0), ``inf`` where only
    ``ref`` is 0."""
    low, ref = np.asarray(low, dtype=float), np.asarray(ref, dtype=float)
    diff = np.abs(low - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = diff / np.abs(ref)
    return np.where(diff == 0, 0.0, err)


def _zero_beyond(z: np.ndarray, flushed: np.ndarray, side: int) -> float:
    """The z nearest 0 from which, out to the grid's end on ``side`` (-1 left, +1 right),
    ``flushed`` holds at every point; NaN where it does not hold at the end itself."""
    order = np.argsort(z, kind="stable")
    if side > 0:
        order = order[::-1]  # from the grid's end inwards
    run = np.logical_and.accumulate(flushed[order])
    if not run.size or not run[0]:
        return float("nan")
    return float(z[order][run][-1])


def _summary(z: np.ndarray, low: np.ndarray, ref: np.ndarray, typical: float) -> dict[str, float]:
    flushed = (low == 0) & (ref != 0)
    err = relative_error(low, ref)
    kept = ~flushed
    core = kept & (np.abs(z) <= typical)
    worst = int(np.argmax(np.where(kept, err, -1.0)))
    return {
        "max error": float(err[worst]) if kept.any() else float("nan"),
        "worst z": float(z[worst]) if kept.any() else float("nan"),
        "median error": float(np.median(err[core])) if core.any() else float("nan"),
        "0 for z ≤": _zero_beyond(z, flushed, -1),
        "0 for z ≥": _zero_beyond(z, flushed, +1),
    }


#: The median error is taken over |z| up to this: where pre-activations usually lie (the
#: grid's tails, where many results round to exactly 0 or z, would make it look smaller).
TYPICAL_Z = 4.0


def activation_errors(
    names: Sequence[str] = PRECISION_ACTIVATIONS,
    formats: Sequence[FormatLike] = LOW_FORMATS,
    z: torch.Tensor | np.ndarray | None = None,
    typical: float = TYPICAL_Z,
) -> pd.DataFrame:
    """Each activation's error in each format against float64, value and slope.

    For every activation and format the grid ``z`` is rounded to the format; the
    activation and its slope (autograd) are computed in the format (see :func:`evaluate`
    for what the CPU's bfloat16 and float16 kernels do) and in float64 on the same rounded
    inputs, so the error is the arithmetic's alone, not the rounding of the input.

    The errors are relative, ``|low - float64| / |float64|``, against :func:`reference`,
    over the grid points where the format does not give an exact 0 that float64 does not:
    the largest over the grid (and the z where it occurs), the median over ``|z| <=
    typical``. Near a zero of the function (a slope's root, as SiLU's at z = -1.28) the
    relative error is large in every format: a small absolute error over a tiny value.
    Where the format gives 0 and float64 does not, the points are reported
    apart, as the z beyond which the value (or the slope) is 0 in the format, out to the
    grid's end, while float64's is not (by underflow, as sigmoid's far left, or by
    rounding, as tanh rounding to 1 makes its slope ``1 - tanh^2`` exactly 0).

    Args:
        names: registry keys of the activations.
        formats: format names or dtypes to measure.
        z: pre-activations (default :func:`default_grid`, -20 to 20 in steps of 0.01).
        typical: the median is over ``|z| <= typical``.

    Returns:
        one row per activation and format, indexed by the activation's label
        (:data:`actlab.engine.activations.LABELS`) and the format's name, e.g.
        ``table.loc[("sigmoid", "float16")]``; for "value" and for "slope" the columns
        "max error", "worst z" (where the max is), "median error", "0 for z ≤" and
        "0 for z ≥" (NaN: nowhere on the grid), e.g. "slope 0 for z ≥".
        ``attrs["typical"]`` is ``typical``.
    """
    z = default_grid() if z is None else torch.as_tensor(z, dtype=torch.float64)
    rows = []
    for name in names:
        for fmt in formats:
            zr = z.to(_dtype(fmt)).to(torch.float64)
            value, slope = evaluate(name, fmt, zr)
            grid = zr.cpu().numpy()
            value64, slope64 = reference(name, grid)
            row = {"activation": LABELS[name], "format": format_name(fmt)}
            for part, low, ref in (("value", value, value64), ("slope", slope, slope64)):
                summary = _summary(grid, low, ref, typical)
                row.update({f"{part} {k}": v for k, v in summary.items()})
            rows.append(row)
    table = pd.DataFrame(rows).set_index(["activation", "format"])
    table.attrs["typical"] = typical
    return table


def slope_product_underflow(
    formats: Sequence[FormatLike] = tuple(FORMATS), slope: float = 0.25, max_depth: int = 10_000
) -> pd.DataFrame:
    """The depth at which a product of ``slope``'s (sigmoid's best, 0.25) leaves the normal
    numbers and the depth at which it becomes exactly 0, in each format.

    The product is multiplied out in the format, one factor per layer, as a backward pass
    through ``L`` sigmoid layers at their steepest multiplies it: nothing is taken from a
    formula.

    Returns:
        one row per format (index "format"), with the columns "first subnormal depth" (the
        first L with ``0 < slope^L <`` the smallest normal number), "zero depth" (the first
        L with ``slope^L == 0``) and "last nonzero product" (the product at the depth
        before, as a float).
    """
    rows = []
    for fmt in formats:
        dtype = _dtype(fmt)
        smallest_normal = torch.finfo(dtype).smallest_normal
        factor = torch.tensor(slope, dtype=dtype)
        product = torch.ones((), dtype=dtype)
        subnormal = zero = None
        last = 1.0
        for depth in range(1, max_depth + 1):
            product = product * factor
            value = float(product.cpu().item())
            if value == 0.0:
                zero = depth
                break
            if subnormal is None and value < smallest_normal:
                subnormal = depth
            last = value
        rows.append(
            {
                "format": format_name(fmt),
                "first subnormal depth": subnormal,
                "zero depth": zero,
                "last nonzero product": last,
            }
        )
    return pd.DataFrame(rows).set_index("format")


def error_curves(
    name: str,
    formats: Sequence[FormatLike] = LOW_FORMATS,
    z: torch.Tensor | np.ndarray | None = None,
    window: float = 0.5,
) -> pd.DataFrame:
    """The relative error of ``name``'s value and slope against z in each format, as
    :func:`activation_errors` measures it point by point, with each curve's envelope.

    A format's error jumps between 0 and about its epsilon from one grid point to the
    next; the envelope is the largest error within ``window`` of each z, the curve a
    figure can show. A point where the format gives 0 and float64 does not has error 1.

    Returns:
        long table with the columns "format", "z", "value error", "slope error",
        "value envelope" and "slope envelope".
    """
    z = default_grid() if z is None else torch.as_tensor(z, dtype=torch.float64)
    frames = []
    for fmt in formats:
        zr = z.to(_dtype(fmt)).to(torch.float64)
        value, slope = evaluate(name, fmt, zr)
        grid = zr.cpu().numpy()
        value64, slope64 = reference(name, grid)
        frame = pd.DataFrame(
            {
                "format": format_name(fmt),
                "z": grid,
                "value error": relative_error(value, value64),
                "slope error": relative_error(slope, slope64),
            }
        )
        for part in ("value", "slope"):
            frame[f"{part} envelope"] = _envelope(grid, frame[f"{part} error"].to_numpy(), window)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _envelope(z: np.ndarray, err: np.ndarray, window: float) -> np.ndarray:
    """The largest ``err`` within ``window`` of each ``z`` (``z`` ascending)."""
    lo = np.searchsorted(z, z - window, side="left")
    hi = np.searchsorted(z, z + window, side="right")
    return np.array([err[a:b].max() for a, b in zip(lo, hi, strict=True)])


#: The smallest relative error a figure shows (exact results sit at the bottom).
ERROR_FLOOR = 1e-10


def error_figure(
    name: str,
    formats: Sequence[FormatLike] = LOW_FORMATS,
    z: torch.Tensor | np.ndarray | None = None,
    window: float = 0.5,
    curves: pd.DataFrame | None = None,
) -> Figure:
    """Two panels, value and slope: the envelope of ``name``'s relative error against z,
    one line per format (log scale; errors under :data:`ERROR_FLOOR`, exact ones
    included, drawn at the floor; 1 where the format gives 0 and float64 does not).

    Args:
        curves: :func:`error_curves`'s table, if the page already computed it.
    """
    if curves is None:
        curves = error_curves(name, formats, z, window)
    fig, axes = panels(2, height=2.8, sharey=True)
    for i, fmt in enumerate(curves["format"].unique()):
        part = curves[curves["format"] == fmt]
        for ax, column in zip(axes, ("value envelope", "slope envelope"), strict=True):
            err = np.clip(part[column].to_numpy(), ERROR_FLOOR, None)
            ax.plot(part["z"], err, label=fmt, lw=1.5, **line_style(i))
    for ax, what in zip(axes, ("value", "slope"), strict=True):
        ax.set_yscale("log")
        ax.set_ylim(ERROR_FLOOR / 2, 5.0)
        ax.set_xlim(float(curves["z"].min()), float(curves["z"].max()))
        ax.set_xlabel("pre-activation z")
        ax.set_title(f"{LABELS[name]}: {what}")
    axes[0].set_ylabel("relative error")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig
