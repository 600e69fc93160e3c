"""Chapter 2, the activation zoo and its derivatives: the derivative checks (closed form,
finite differences, autograd, SymPy), numerical stability, measured properties, and the
chapter's figures, tables and tangent-line explorer, all driven by the activation registry."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from actlab.engine.activations import (
    ACTIVATIONS,
    LABELS,
    Activation,
    ArrayFn,
    TensorFn,
    _as_float,
    get,
)
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import activation_style, panels
from actlab.presentation.prose import num
from actlab.presentation.units import format_duration

# The explorer leaves out gelu_tanh: on a plot it is indistinguishable from exact GELU.
EXPLORER_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu")
# Half steps where the slopes change most: GELU's slope is lowest at z = -1.41 and highest at
# 1.41, SiLU's lowest at -2.40 and highest at 2.40.
EXPLORER_Z = (-6.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 6.0)
#: The explorer's frames show z in [-EXPLORER_LIM, EXPLORER_LIM].
EXPLORER_LIM = 7.0


def view_grid(lim: float = EXPLORER_LIM) -> np.ndarray:
    """The z values the tangent figure draws and measures: steps of 0.01 over [-lim, lim]."""
    return np.linspace(-lim, lim, int(round(200 * lim)) + 1)


def slope_extremes(
    names: Sequence[str] = EXPLORER_NAMES, lim: float = EXPLORER_LIM
) -> pd.DataFrame:
    """Smallest and largest slope of each activation over the z in view, and where they are.

    The tangent explorer frames its slope axis with these (:func:`slope_axis`) and the
    chapter quotes them, so the text and the axis come from one computation.
    """
    z = view_grid(lim)
    rows = {}
    for name in names:
        d = get(name).np_dfn(z)
        rows[name] = {
            "smallest slope": float(d.min()),
            "at z": float(z[d.argmin()]),
            "largest slope": float(d.max()),
            "at z (largest)": float(z[d.argmax()]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def slope_axis(
    names: Sequence[str] = EXPLORER_NAMES, lim: float = EXPLORER_LIM
) -> tuple[float, float]:
    """The slope axis of every tangent frame: the smallest and largest slope of all ``names``
    over the z in view (:func:`slope_extremes`), with a margin of a tenth of the range."""
    ext = slope_extremes(names, lim)
    lo, hi = min(float(ext["smallest slope"].min()), 0.0), float(ext["largest slope"].max())
    pad = 0.1 * (hi - lo)
    return lo - pad, hi + pad


#: The overlay's rows: the three families of the zoo, each drawn in its own pair of panels.
FAMILIES = (
    ("S-shaped", ("sigmoid", "tanh")),
    ("piecewise linear", ("relu", "leaky_relu")),
    ("smooth rectifiers", ("elu", "softplus", "gelu", "silu")),
)
#: Value and slope axes of each family's panels (the curves on [-5, 5] fit inside).
_FAMILY_YLIM = {
    "S-shaped": ((-1.15, 1.15), (-0.08, 1.12)),
    "piecewise linear": ((-0.6, 5.3), (-0.08, 1.12)),
    "smooth rectifiers": ((-1.15, 5.3), (-0.25, 1.25)),
}


def overlay_figure(lim: float = 5.0) -> Figure:
    """The zoo in four rows: each family's curves phi(z) (left) and derivatives phi'(z)
    (right), then the tanh approximation of GELU minus exact GELU, value and slope, which
    coincide too closely to tell apart as curves."""
    z = np.linspace(-lim, lim, 801)
    fig, axes = panels(2 * len(FAMILIES) + 2, height=2.0, sharex=True)
    for row, (family, names) in enumerate(FAMILIES):
        ax_f, ax_d = axes[2 * row], axes[2 * row + 1]
        for i, name in enumerate(names):
            act = get(name)
            # ReLU is drawn wide under Leaky ReLU, so that where they coincide a band of its
            # colour shows on each side; markers are staggered along z so that each curve
            # shows its own
            style = dict(markevery=(25 * i, 100), ms=4.5, **activation_style(name))
            style["lw"] = 3.4 if name == "relu" else 1.6
            ax_f.plot(z, act.np_fn(z), label=LABELS[name], **style)
            ax_d.plot(z, act.np_dfn(z), **style)
        f_lim, d_lim = _FAMILY_YLIM[family]
        # φ is the text's \act: a screen reader reads the title's letter, not "varphi"
        ax_f.set(title=f"{family}: φ(z)", ylim=f_lim)
        ax_d.set(title=f"{family}: φ′(z)", ylim=d_lim)
        ax_f.legend(loc="upper left", frameon=False, handlelength=2.6)
        if "leaky_relu" in names:  # 0.01 against 0 is too close to see: say it
            leak = num(float(get("leaky_relu").np_dfn(-1.0)), "g")
            ax_d.annotate(
                f"left of 0: Leaky ReLU {leak},\nReLU 0",
                (-2.5, 0.0),
                xytext=(-4.7, 0.35),
                arrowprops=dict(arrowstyle="->", lw=0.7),
            )
    ax_f, ax_d = axes[-2:]
    approx, exact = get("gelu_tanh"), get("gelu")
    style = dict(lw=1.6, markevery=100, ms=4.5, **activation_style("gelu_tanh"))
    ax_f.plot(z, approx.np_fn(z) - exact.np_fn(z), **style)
    ax_d.plot(z, approx.np_dfn(z) - exact.np_dfn(z), **style)
    ax_f.set(title="GELU (tanh) − GELU: φ(z)", xlabel="$z$")
    ax_d.set(title="GELU (tanh) − GELU: φ′(z)", xlabel="$z$")
    for ax in axes:
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
        ax.set_xlim(-lim, lim)
    return fig


def tangent_figure(
    activation: str,
    z: float,
    lim: float = EXPLORER_LIM,
    slope_ylim: tuple[float, float] | None = None,
) -> Figure:
    """phi with its tangent line at ``z`` (left) and phi' with the slope marked (right).

    ``slope_ylim`` is the slope axis; by default :func:`slope_axis` of the explorer's
    activations, so that every frame shares one axis that holds every slope in view.
    """
    act = get(activation)
    grid = view_grid(lim)
    value, slope = float(act.np_fn(z)), float(act.np_dfn(z))
    fig, (ax_f, ax_d) = panels(2, height=2.9)
    ax_f.plot(grid, act.np_fn(grid), color="C0", lw=1.8)
    ax_f.plot(grid, value + slope * (grid - z), color="C3", lw=1.2, ls="--", label="tangent")
    ax_f.plot([z], [value], "o", color="C3")
    lo, hi = float(act.np_fn(grid).min()), float(act.np_fn(grid).max())
    pad = 0.15 * (hi - lo)
    ax_f.set(
        ylim=(lo - pad, hi + pad),
        xlabel="$z$",
        title=f"{act.label}: φ({num(z, 'g')}) = {num(value, '.4g')}",
    )
    ax_d.plot(grid, act.np_dfn(grid), color="C2", lw=1.8)
    ax_d.plot([z], [slope], "o", color="C3")
    ax_d.set(
        ylim=slope_ylim if slope_ylim is not None else slope_axis(lim=lim),
        xlabel="$z$",
        title=f"φ'({num(z, 'g')}) = {num(slope, '.4g')}",
    )
    if act.kinks and z in act.kinks:
        ax_d.annotate(
            "PyTorch's value at the kink",
            (z, slope),
            xytext=(0.03, 0.9),
            textcoords="axes fraction",
            arrowprops=dict(arrowstyle="->", lw=0.6),
        )
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
    return fig


def tangent_explorer(
    names: Sequence[str] = EXPLORER_NAMES, zs: Sequence[float] = EXPLORER_Z
) -> Explorer:
    """Explorer: activation x z -> value, slope and tangent line (chapter 2).

    Every frame's slope axis is :func:`slope_axis` of ``names``: one axis for all frames,
    holding the smallest and largest slope of every activation in view.
    """
    ylim = slope_axis(names)
    return Explorer(
        draw=lambda activation, z: tangent_figure(activation, z, slope_ylim=ylim),
        controls=[
            Control("activation", list(names), label="activation", kind="dropdown"),
            Control("z", [float(v) for v in zs], label="z", default=0.0),
        ],
        describe=_describe_tangent,
    )


def _describe_tangent(activation: str, z: float) -> str:
    """The finding of one tangent frame: the value and the slope at ``z``."""
    act = get(activation)
    value, slope = float(act.np_fn(z)), float(act.np_dfn(z))
    return (
        f"{act.label} at z = {num(z, 'g')}: value {num(value, '.4g')}, "
        f"slope of the tangent {num(slope, '.4g')}"
    )


def overlay_table(names: Sequence[str] | None = None, lim: float = 5.0) -> pd.DataFrame:
    """The numbers behind :func:`overlay_figure`: ends of each curve and its slope's range."""
    names = list(names) if names is not None else list(ACTIVATIONS)
    z = np.linspace(-lim, lim, 801)
    rows = []
    for name in names:
        act = get(name)
        d = act.np_dfn(z)
        rows.append(
            {
                "registry key": name,
                "activation": act.label,
                f"φ({num(-lim, 'g')})": float(act.np_fn(-lim)),
                f"φ({lim:g})": float(act.np_fn(lim)),
                "largest slope": float(d.max()),
                "at z": float(z[d.argmax()]),
                "smallest slope": float(d.min()),
            }
        )
    return pd.DataFrame(rows).set_index("registry key")


_SATURATION = {"both": "both sides", "left": "left only", "right": "right only", "none": "no"}


def properties_frame(rows: Sequence[Properties]) -> pd.DataFrame:
    """The chapter's properties table as a DataFrame with readable columns."""
    records = []
    for p in rows:
        cost = "" if p.ns_per_element is None else format_duration(1e-9 * p.ns_per_element)
        records.append(
            {
                "activation": get(p.name).label,
                "range": p.range_text,
                "zero-centred (mean)": f"{'yes' if p.zero_centred else 'no'} ({p.mean_gaussian:.2f})",
                "saturates (φ' → 0)": _SATURATION[p.flat_tails],
                "max φ'": f"{p.max_slope:.3f} ({p.where_max_slope})",
                "exact zeros": f"{100 * p.sparsity:.0f} %",
                "smoothness": p.smoothness,
                "time per element": cost,
            }
        )
    return pd.DataFrame.from_records(records).set_index("activation")


# --------------------------------------------------------------------------- checks


def sympy_derivative(act: Activation, z: Any) -> Any:
    """phi'(z) as SymPy differentiates ``act.sym_fn`` (chapter 2's fourth check)."""
    import sympy as sp

    if act.sym_fn is None:
        raise ValueError(f"{act.name} has no SymPy form")
    return sp.diff(act.sym_fn(z), z)


def grader_check(act: Activation, timeout: float = 8.0) -> Any:
    """The course's formula grader on one activation: does SymPy's derivative of its formula
    equal the hand-derived one?

    Hands both to :func:`autograder.symbolic.check_equivalent`, the check that marks the
    derivatives handed in as formulas in the exercises: it tries to simplify their
    difference to 0 (``method == "symbolic"`` when that succeeds) and compares them at
    z = 0, 1 and -1. Returns its verdict.
    """
    import sympy as sp

    from autograder.symbolic import check_equivalent

    z = sp.Symbol("z", real=True)
    return check_equivalent(
        sympy_derivative(act, z), act.sym_dfn(z), points=[0, 1, -1], n_random=0, timeout=timeout
    )


def sympy_gap(act: Activation, points: Iterable[float], digits: int = 50) -> float:
    """Max |SymPy's derivative - the hand-derived one| at ``points``, evaluated to ``digits``.

    The points become exact rationals and both sides are evaluated with mpmath (SymPy's
    evalf), so the result measures the formulas, not float rounding (chapter 2).
    """
    import sympy as sp

    z = sp.Symbol("z", real=True)
    by_sympy, by_hand = sympy_derivative(act, z), act.sym_dfn(z)
    gap = sp.Float(0)
    for p in points:
        at = {z: sp.Rational(repr(float(p)))}
        gap = max(
            gap, abs(sp.N(by_sympy.xreplace(at), digits) - sp.N(by_hand.xreplace(at), digits))
        )
    return float(gap)


def finite_difference(fn: ArrayFn, z: np.ndarray, rel_step: float = 1e-6) -> np.ndarray:
    """Central difference (f(z+h) - f(z-h)) / 2h in float64, h scaled with |z|."""
    z = np.asarray(z, dtype=np.float64)
    h = rel_step * np.maximum(1.0, np.abs(z))
    return (fn(z + h) - fn(z - h)) / (2 * h)


def autograd_derivative(fn: TensorFn, z: np.ndarray) -> np.ndarray:
    """phi'(z) from ``torch.autograd`` (float64), one backward pass for all points."""
    t = torch.tensor(np.asarray(z, dtype=np.float64), requires_grad=True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g.numpy()


def three_way_check(act: Activation, z: np.ndarray) -> dict[str, float]:
    """Max abs differences between the closed form, finite differences and autograd.

    Points closer than the finite-difference step to a kink are left out of the
    finite-difference comparisons (the two-sided slope does not exist there).

    Returns:
        ``{"closed vs autograd", "closed vs finite diff", "autograd vs finite diff",
        "torch closed vs autograd"}`` -> max abs difference over ``z``.
    """
    z = np.asarray(z, dtype=np.float64)
    closed = act.np_dfn(z)
    auto = autograd_derivative(act.torch_fn, z)
    torch_closed = act.torch_dfn(torch.from_numpy(z)).numpy()
    fd = finite_difference(act.np_fn, z)
    away = np.ones_like(z, dtype=bool)
    for k in act.kinks:
        away &= np.abs(z - k) > 1e-4 * np.maximum(1.0, np.abs(z))
    return {
        "closed vs autograd": float(np.max(np.abs(closed - auto))),
        "closed vs finite diff": float(np.max(np.abs(closed - fd)[away])),
        "autograd vs finite diff": float(np.max(np.abs(auto - fd)[away])),
        "torch closed vs autograd": float(np.max(np.abs(torch_closed - auto))),
    }


# --------------------------------------------------------------------------- stability demos


def naive_sigmoid(z: np.ndarray | float) -> np.ndarray:
    """The textbook 1 / (1 + exp(-z)): overflows (with a warning) for z below about -710."""
    z = _as_float(z)
    return 1.0 / (1.0 + np.exp(-z))


def naive_softplus(z: np.ndarray | float) -> np.ndarray:
    """The textbook log(1 + exp(z)): returns inf for z above about 710."""
    z = _as_float(z)
    return np.log(1.0 + np.exp(z))


def naive_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z) / sum(exp(z)) without the shift: nan once a logit passes about 710."""
    z = _as_float(z)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable softmax: subtracting max(z) changes nothing mathematically and keeps exp <= 1."""
    z = _as_float(z)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Properties:
    """Properties of one activation, each computed from its functions (chapter 2's table)."""

    name: str
    low: float  # infimum of phi over the real line (-inf when unbounded)
    high: float  # supremum (inf when unbounded)
    mean_gaussian: float  # E[phi(Z)] for Z ~ N(0, 1): 0 means zero-centred outputs
    flat_tails: str  # where phi' -> 0: "both", "left", "none"
    max_slope: float  # supremum of phi' (reached or approached)
    where_max_slope: str  # e.g. "z = 0", "z > 0", "z → ∞"
    low_attained: bool
    high_attained: bool
    sparsity: float  # fraction of exact zeros in phi(Z), Z ~ N(0, 1)
    smoothness: str  # "kink (C0)", "C1", "smooth"
    ns_per_element: float | None = None  # measured by benchmark(), None until then
    ns_runs: tuple[float, ...] = ()  # every timed call, ns per element (median: ns_per_element)

    @property
    def zero_centred(self) -> bool:
        return abs(self.mean_gaussian) < 0.05

    @property
    def range_text(self) -> str:
        def fmt(v: float) -> str:
            if math.isinf(v):
                return "∞" if v > 0 else "−∞"
            return f"{v:.3g}".replace("-", "−")

        left = "[" if self.low_attained else "("
        right = "]" if self.high_attained else ")"
        return f"{left}{fmt(self.low)}, {fmt(self.high)}{right}"


def _limit(fn: ArrayFn, sign: float) -> float:
    """Value of phi at the far end of one side, or +/-inf when it keeps growing."""
    far, farther = fn(np.array([sign * 1e3, sign * 1e4]))
    if abs(farther - far) > 1.0:  # still moving by thousands: unbounded
        return math.copysign(math.inf, farther)
    return float(farther)


def _smoothness(act: Activation, h: float = 1e-4) -> str:
    for k in act.kinks or (0.0,):
        d = act.np_dfn(np.array([k - h, k + h, k - 2 * h, k + 2 * h]))
        if abs(d[1] - d[0]) > 1e-2:
            return "kink (C0)"
        curv_left = (d[0] - d[2]) / h
        curv_right = (d[3] - d[1]) / h
        if abs(curv_right - curv_left) > 1e-2:
            return "C1"
    return "smooth"


def properties(act: Activation, seed: int = 0, n: int = 200_001) -> Properties:
    """Measure the table's properties of ``act`` from its functions on grids and samples."""
    grid = np.linspace(-20.0, 20.0, n)
    values, slopes = act.np_fn(grid), act.np_dfn(grid)
    low = min(float(values.min()), _limit(act.np_fn, -1.0))
    high = max(float(values.max()), _limit(act.np_fn, 1.0))
    tails = np.abs(act.np_dfn(np.array([-50.0, 50.0]))) < 1e-6
    flat = "both" if tails.all() else "left" if tails[0] else "right" if tails[1] else "none"
    sample = act.np_fn(np.random.default_rng(seed).standard_normal(1_000_000))
    top = float(slopes.max())
    at_top = np.flatnonzero(slopes >= top - 1e-12)
    if len(at_top) > n // 10:
        where = f"z > {round(float(grid[at_top[0]]), 2) + 0.0:g}"
    elif at_top[-1] == n - 1:
        where = "z → ∞"
    else:
        where = f"z ≈ {grid[at_top[0]]:.3g}".replace("-", "−")
    return Properties(
        name=act.name,
        low=0.0 if low == 0 else low,
        high=high,
        mean_gaussian=float(sample.mean()),
        flat_tails=flat,
        max_slope=top,
        where_max_slope=where,
        # attained at a moderate z (float64 rounds tanh(20) to 1, which is no attainment)
        low_attained=bool(np.any(values[np.abs(grid) <= 8] == low)),
        high_attained=bool(np.any(values[np.abs(grid) <= 8] == high)),
        sparsity=float(np.mean(sample == 0)),
        smoothness=_smoothness(act),
    )


def benchmark_runs(
    act: Activation,
    device: torch.device | None = None,
    n: int = 1_000_000,
    repeats: int = 20,
    dtype: torch.dtype = torch.float32,
) -> list[float]:
    """Nanoseconds per element of each of ``repeats`` timed forward calls of ``act.torch_fn``.

    On a CPU the timing runs on one thread: with several threads, any other work on the
    machine stalls the thread pool and the time measures the scheduler, not the function.
    """
    from actlab.engine.device import Stopwatch, cpu_threads, get_device

    device = device or get_device()
    z = torch.randn(n, device=device, dtype=dtype)
    with cpu_threads(1, device):
        with torch.no_grad():
            for _ in range(3):  # warm-up: first calls pay for allocation and kernel selection
                act.torch_fn(z)
            times = []
            for _ in range(repeats):
                with Stopwatch(device) as sw:
                    act.torch_fn(z)
                times.append(sw.seconds / n * 1e9)
    return times


def benchmark(
    act: Activation,
    device: torch.device | None = None,
    n: int = 1_000_000,
    repeats: int = 20,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Median nanoseconds per element of ``act.torch_fn`` on ``device`` (forward only)."""
    return statistics.median(benchmark_runs(act, device, n, repeats, dtype))


def timing_details(device: torch.device) -> str:
    """The run-details line for :func:`benchmark`'s timings: device and threads it used."""
    from actlab.engine.device import describe_device

    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"timed on cpu with 1 thread (the rest of the page runs on {n})"
    return f"timed on {describe_device(device)}"


def properties_table(
    acts: Iterable[Activation] | None = None,
    device: torch.device | None = None,
    time_it: bool = True,
) -> list[Properties]:
    """Properties of every activation (cost per element measured when ``time_it``)."""
    rows = []
    for act in acts if acts is not None else ACTIVATIONS.values():
        p = properties(act)
        if time_it:
            runs = benchmark_runs(act, device)
            p = Properties(
                **{**p.__dict__, "ns_per_element": statistics.median(runs), "ns_runs": tuple(runs)}
            )
        rows.append(p)
    return rows
