"""Figures, tables and the tangent-line explorer of chapter 2, all driven by the activation registry."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from actlab.engine.activations import ACTIVATIONS, Properties, get
from actlab.explorer import Control, Explorer
from actlab.figures import line_style

# The explorer leaves out gelu_tanh: on a plot it is indistinguishable from exact GELU.
EXPLORER_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu")
EXPLORER_Z = (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)


def overlay_figure(names: Sequence[str] | None = None, lim: float = 5.0) -> Figure:
    """Curves phi(z) (left) and derivatives phi'(z) (right) of the given activations."""
    names = list(names) if names is not None else list(ACTIVATIONS)
    z = np.linspace(-lim, lim, 801)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for i, name in enumerate(names):
        act = get(name)
        style = dict(lw=1.6, **line_style(i))
        ax_f.plot(z, act.np_fn(z), label=act.label, **style)
        ax_d.plot(z, act.np_dfn(z), **style)
    ax_f.set(title=r"activation $\varphi(z)$", xlabel="$z$", ylim=(-1.5, 4))
    ax_d.set(title=r"derivative $\varphi'(z)$", xlabel="$z$", ylim=(-0.2, 1.25))
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
    fig.legend(loc="outside right center", frameon=False)
    fig.set_layout_engine("constrained")
    return fig


def tangent_figure(activation: str, z: float, lim: float = 7.0) -> Figure:
    """phi with its tangent line at ``z`` (left) and phi' with the slope marked (right)."""
    act = get(activation)
    grid = np.linspace(-lim, lim, 561)
    value, slope = float(act.np_fn(z)), float(act.np_dfn(z))
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(7.5, 2.9))
    ax_f.plot(grid, act.np_fn(grid), color="C0", lw=1.8)
    ax_f.plot(grid, value + slope * (grid - z), color="C3", lw=1.2, ls="--", label="tangent")
    ax_f.plot([z], [value], "o", color="C3")
    lo, hi = float(act.np_fn(grid).min()), float(act.np_fn(grid).max())
    pad = 0.15 * (hi - lo)
    ax_f.set(ylim=(lo - pad, hi + pad), xlabel="$z$", title=f"{act.label}: φ({z:g}) = {value:.4g}")
    ax_d.plot(grid, act.np_dfn(grid), color="C2", lw=1.8)
    ax_d.plot([z], [slope], "o", color="C3")
    dmax = float(act.np_dfn(grid).max())
    ax_d.set(
        ylim=(-0.05 * dmax - 0.02, 1.15 * dmax), xlabel="$z$", title=f"φ'({z:g}) = {slope:.4g}"
    )
    if act.kinks and z in act.kinks:
        ax_d.annotate(
            "PyTorch's value at the kink",
            (z, slope),
            xytext=(0.03, 0.9),
            textcoords="axes fraction",
            fontsize=8,
            arrowprops=dict(arrowstyle="->", lw=0.6),
        )
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def tangent_explorer(
    names: Sequence[str] = EXPLORER_NAMES, zs: Sequence[float] = EXPLORER_Z, dpi: int = 72
) -> Explorer:
    """Explorer: activation x z -> value, slope and tangent line (chapter 2)."""
    return Explorer(
        draw=lambda activation, z: tangent_figure(activation, z),
        controls=[
            Control("activation", list(names), label="activation", kind="dropdown"),
            Control("z", [float(v) for v in zs], label="z", default=0.0),
        ],
        dpi=dpi,
        describe=_describe_tangent,
    )


def _describe_tangent(activation: str, z: float) -> str:
    """The finding of one tangent frame: the value and the slope at ``z``."""
    act = get(activation)
    value, slope = float(act.np_fn(z)), float(act.np_dfn(z))
    return f"{act.label} at z = {z:g}: value {value:.4g}, slope of the tangent {slope:.4g}"


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
                f"φ({-lim:g})": float(act.np_fn(-lim)),
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
        records.append(
            {
                "activation": get(p.name).label,
                "range": p.range_text,
                "zero-centred (mean)": f"{'yes' if p.zero_centred else 'no'} ({p.mean_gaussian:.2f})",
                "saturates (φ' → 0)": _SATURATION[p.flat_tails],
                "max φ'": f"{p.max_slope:.3f} ({p.where_max_slope})",
                "exact zeros": f"{100 * p.sparsity:.0f} %",
                "smoothness": p.smoothness,
                "ns/elem": "" if p.ns_per_element is None else f"{p.ns_per_element:.2f}",
            }
        )
    return pd.DataFrame.from_records(records).set_index("activation")
