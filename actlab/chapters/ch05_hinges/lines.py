"""Chapter 5 on a line: networks as stages, the hinges of one hidden layer, and the exact
partition of a line by a network of any depth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

# --------------------------------------------------------------------------- networks as stages


@dataclass(frozen=True)
class Stage:
    """One affine layer ``z = W h + b`` followed by a piecewise-linear activation.

    Attributes:
        W: weight ``(fan_out, fan_in)`` (``nn.Linear.weight``'s layout).
        b: bias ``(fan_out,)``.
        negative_slope: the activation's slope for ``z <= 0``: 0 for ReLU, 0.01 for
            PyTorch's Leaky ReLU, ``None`` for no activation (the output layer).
    """

    W: np.ndarray
    b: np.ndarray
    negative_slope: float | None

    @property
    def width(self) -> int:
        return self.W.shape[0]


def _as_stages(net: nn.Module | Sequence[Stage]) -> list[Stage]:
    """The network as hidden stages followed by one output stage without activation.

    Consecutive ``nn.Linear`` layers are composed into one affine map; ``nn.Identity``
    and ``nn.Flatten`` are skipped. Any other module (``Tanh``, ``LayerNorm``, ...) is
    not piecewise linear with finitely many pieces and raises ``ValueError``.
    """
    if isinstance(net, Sequence) and all(isinstance(s, Stage) for s in net):
        stages = list(net)
        if not stages or stages[-1].negative_slope is not None:
            raise ValueError("the last stage must have no activation (negative_slope=None)")
        return stages
    if not isinstance(net, nn.Module):
        raise TypeError(f"expected an nn.Sequential or a list of Stage, got {type(net).__name__}")
    stages: list[Stage] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None
    leaves = [m for m in net.modules() if not isinstance(m, nn.Sequential)]
    for module in leaves:
        if isinstance(module, nn.Linear):
            W = module.weight.detach().cpu().double().numpy().copy()
            b = (
                module.bias.detach().cpu().double().numpy().copy()
                if module.bias is not None
                else np.zeros(W.shape[0])
            )
            if pending is not None:  # two affine maps in a row are one affine map
                W, b = W @ pending[0], W @ pending[1] + b
            pending = (W, b)
        elif isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            if pending is None:
                raise ValueError("an activation before any nn.Linear layer is not supported")
            slope = float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
            stages.append(Stage(pending[0], pending[1], slope))
            pending = None
        elif isinstance(module, (nn.Identity, nn.Flatten)):
            continue
        else:
            raise ValueError(
                f"{type(module).__name__} is not piecewise linear: only nn.Linear, nn.ReLU and "
                "nn.LeakyReLU networks have finitely many linear regions"
            )
    if pending is None:  # the network ends with an activation: its output is that layer
        if not stages:
            raise ValueError("the network has no nn.Linear layer")
        pending = (np.eye(stages[-1].width), np.zeros(stages[-1].width))
    stages.append(Stage(pending[0], pending[1], None))
    return stages


def stages_from_weights(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], negative_slope: float = 0.0
) -> list[Stage]:
    """Stages from ``[(W1, b1), ..., (W_out, b_out)]``; every layer but the last gets the activation."""
    out = []
    for k, (W, b) in enumerate(layers):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        b = np.asarray(b, dtype=float).reshape(-1)
        out.append(Stage(W, b, negative_slope if k < len(layers) - 1 else None))
    return out


def _forward(stages: Sequence[Stage], X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output ``(N, out)`` and every hidden pre-activation ``(N, width)`` of the stages, in float64."""
    h = np.asarray(X, dtype=float)
    pre = []
    for s in stages[:-1]:
        z = h @ s.W.T + s.b
        pre.append(z)
        h = np.where(z > 0, z, s.negative_slope * z)
    return h @ stages[-1].W.T + stages[-1].b, pre


# --------------------------------------------------------------------------- one hidden layer, 1-D


def hinge_points(w: np.ndarray, b: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """The distinct hinges ``-b_i / w_i`` of the units ``ReLU(w_i x + b_i)``, sorted (chapter 5).

    A unit with ``w_i = 0`` is constant in ``x`` and has no hinge; units whose hinges
    coincide (within ``tol``, relative) give one hinge.
    """
    w = np.asarray(w, dtype=float).reshape(-1)
    b = np.asarray(b, dtype=float).reshape(-1)
    live = np.abs(w) > tol
    return _merge_sorted(np.sort(-b[live] / w[live]), tol)


def _merge_sorted(t: np.ndarray, tol: float) -> np.ndarray:
    """Drop values that lie within ``tol`` (relative to their size, at least 1) of the previous kept one."""
    if t.size == 0:
        return t
    keep = [t[0]]
    for v in t[1:]:
        if v - keep[-1] > tol * max(1.0, abs(v)):
            keep.append(v)
    return np.array(keep)


@dataclass(frozen=True)
class IntervalFormulas:
    """A piecewise-linear function of one variable: ``slopes[k] x + intercepts[k]`` on interval k.

    Interval k runs from ``edges[k]`` to ``edges[k + 1]``; the outer edges may be infinite.
    """

    edges: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray

    @property
    def n_intervals(self) -> int:
        return len(self.slopes)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        k = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, self.n_intervals - 1)
        return self.slopes[k] * x + self.intercepts[k]

    def latex(self, var: str = "x", digits: int = 3) -> str:
        """The formulas as a LaTeX ``cases`` block (the chapter glues it into the text)."""

        def num(v: float) -> str:
            return f"{v:.{digits}g}".replace("inf", r"\infty")

        def affine(a: float, c: float) -> str:
            if abs(a) < 1e-12:
                return num(c)
            lin = {1.0: var, -1.0: f"-{var}"}.get(round(a, 12), f"{num(a)}\\,{var}")
            if abs(c) < 1e-12:
                return lin
            return f"{lin} {'+' if c > 0 else '-'} {num(abs(c))}"

        rows = []
        for k in range(self.n_intervals):
            lo, hi = self.edges[k], self.edges[k + 1]
            cond = (
                f"{var} < {num(hi)}"
                if np.isinf(lo)
                else f"{var} > {num(lo)}"
                if np.isinf(hi)
                else f"{num(lo)} < {var} < {num(hi)}"
            )
            rows.append(f"{affine(self.slopes[k], self.intercepts[k])} & {cond}")
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


def interval_formulas(
    w: np.ndarray,
    b: np.ndarray,
    v: np.ndarray,
    c: float = 0.0,
    negative_slope: float = 0.0,
    tol: float = 1e-12,
) -> IntervalFormulas:
    """Slope and intercept of ``f(x) = sum_i v_i phi(w_i x + b_i) + c`` between consecutive hinges (chapter 5).

    On each interval every unit is either active (contributing ``v_i (w_i x + b_i)``)
    or inactive (contributing ``negative_slope * v_i (w_i x + b_i)``), so the slope is
    the sum of ``v_i w_i`` and the intercept the sum of ``v_i b_i`` over the units,
    weighted by their slope there, plus ``c``.
    """
    w = np.asarray(w, dtype=float).reshape(-1)
    b = np.asarray(b, dtype=float).reshape(-1)
    v = np.asarray(v, dtype=float).reshape(-1)
    if not (w.shape == b.shape == v.shape):
        raise ValueError(
            f"w, b, v must have one entry per unit, got {w.shape}, {b.shape}, {v.shape}"
        )
    h = hinge_points(w, b, tol)
    edges = np.concatenate([[-np.inf], h, [np.inf]])
    # A point strictly inside each interval decides which units are active there.
    inner = (h[:-1] + h[1:]) / 2 if h.size > 1 else np.array([])
    probe = np.concatenate([[h[0] - 1.0], inner, [h[-1] + 1.0]]) if h.size else np.array([0.0])
    z = probe[:, None] * w + b
    gain = np.where(z > 0, 1.0, negative_slope)
    slopes = (gain * (v * w)).sum(1)
    intercepts = (gain * (v * b)).sum(1) + float(c)
    return IntervalFormulas(edges, slopes, intercepts)


# --------------------------------------------------------------------------- exact partition of a line


@dataclass(frozen=True)
class LinePartition:
    """The exact linear pieces of a network along the segment ``x(t) = origin + t * direction``.

    Attributes:
        edges: breakpoints ``t_0 < t_1 < ... < t_P`` (``t_0``, ``t_P`` the segment's ends).
        patterns: ``(P, units)`` booleans, unit active (``z > 0``) on each piece; the
            hidden layers' units side by side, input side first.
        layer_sizes: the number of units of each hidden layer (to split ``patterns``).
        slopes, intercepts: ``(P, out_dim)``; on piece k the output is
            ``slopes[k] * t + intercepts[k]``.
        jacobians, offsets: ``(P, out_dim, in_dim)`` and ``(P, out_dim)``; on piece k the
            network *is* the affine map ``x -> jacobians[k] @ x + offsets[k]``.
        origin, direction: the line.
    """

    edges: np.ndarray
    patterns: np.ndarray
    layer_sizes: tuple[int, ...]
    slopes: np.ndarray
    intercepts: np.ndarray
    jacobians: np.ndarray
    offsets: np.ndarray
    origin: np.ndarray
    direction: np.ndarray

    @property
    def n_regions(self) -> int:
        """Number of pieces with distinct activation patterns (linear regions met by the segment)."""
        return len(self.edges) - 1

    @property
    def breakpoints(self) -> np.ndarray:
        """The interior breakpoints (where some unit switches)."""
        return self.edges[1:-1]

    def n_affine_pieces(self, tol: float = 1e-9) -> int:
        """Maximal intervals on which the output is one affine function of ``t``.

        At most :attr:`n_regions`: a unit may switch without changing the output (its
        outgoing weights cancel, or it feeds only dead units), and then two neighbouring
        regions carry the same affine map.
        """
        if self.n_regions == 0:
            return 0
        scale = max(1.0, float(np.abs(self.slopes).max()), float(np.abs(self.intercepts).max()))
        ds = np.abs(np.diff(self.slopes, axis=0)).max(1, initial=0)
        dc = np.abs(np.diff(self.intercepts, axis=0)).max(1, initial=0)
        return 1 + int(((ds > tol * scale) | (dc > tol * scale)).sum())

    def piece_of(self, t: np.ndarray | float) -> np.ndarray:
        """Index of the piece containing each ``t`` (ends clipped into the segment)."""
        k = np.searchsorted(self.edges, np.asarray(t, dtype=float), side="right") - 1
        return np.clip(k, 0, self.n_regions - 1)

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """The network's output at ``x(t)``, ``(len(t), out_dim)``, from the pieces' affine maps."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        k = self.piece_of(t)
        return self.slopes[k] * t[:, None] + self.intercepts[k]

    def hinges_x(self) -> np.ndarray:
        """The interior breakpoints as points of the input space, ``(P - 1, in_dim)``."""
        return self.origin + self.breakpoints[:, None] * self.direction


def line_partition(
    net: nn.Module | Sequence[Stage],
    lo: float,
    hi: float,
    origin: np.ndarray | None = None,
    direction: np.ndarray | None = None,
    tol: float = 1e-10,
) -> LinePartition:
    """Exact linear pieces of a ReLU / Leaky ReLU network along a segment (chapter 5).

    The walk: on the segment ``x(t) = origin + t direction``, ``lo <= t <= hi``, the
    network's input is affine in ``t``. Suppose that after some layers the segment is
    cut into pieces on each of which the layer's input is ``h = a t + c``. The next
    layer's pre-activations ``z = W h + b = (W a) t + (W c + b)`` are affine on each
    piece, so unit ``i`` switches at most once there, at ``t = -(W c + b)_i / (W a)_i``.
    Adding those zeros as breakpoints, every new piece has one activation pattern for
    this layer, and ``h' = phi(z)`` is again affine on it (each unit multiplied by 1
    or by the negative slope). No sampling is involved: the pieces are exact up to
    floating-point rounding.

    Args:
        net: an ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``/``nn.LeakyReLU``
            (e.g. ``result.model.member_module(i)``), or a list of :class:`Stage`.
        lo, hi: the segment's ends in ``t``.
        origin, direction: the line in input space; default: 0 and the first axis
            (so that ``t`` is the input itself for a one-input network).
        tol: breakpoints closer than ``tol * max(1, |hi - lo|)`` are one breakpoint
            (coincident hinges), and zeros that close to an existing breakpoint add none.

    Returns:
        A :class:`LinePartition`.
    """
    stages = _as_stages(net)
    in_dim = stages[0].W.shape[1]
    origin = np.zeros(in_dim) if origin is None else np.asarray(origin, dtype=float).reshape(-1)
    if direction is None:
        direction = np.eye(in_dim)[0]
    direction = np.asarray(direction, dtype=float).reshape(-1)
    if origin.shape != (in_dim,) or direction.shape != (in_dim,):
        raise ValueError(f"origin and direction must have the input's dimension {in_dim}")
    if not hi > lo:
        raise ValueError(f"need lo < hi, got {lo}, {hi}")
    eps = tol * max(1.0, hi - lo)

    edges = np.array([lo, hi], dtype=float)
    # On every piece: h = a t + c (for the segment) and h = J x + o (in input space).
    a, c = direction[None, :], origin[None, :]
    J, o = np.eye(in_dim)[None], np.zeros((1, in_dim))
    patterns: list[np.ndarray] = []
    for s in stages[:-1]:
        A, C = a @ s.W.T, c @ s.W.T + s.b  # z = A[p] t + C[p] on piece p
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = -C / A
        lo_p, hi_p = edges[:-1, None], edges[1:, None]
        inside = np.isfinite(roots) & (roots > lo_p + eps) & (roots < hi_p - eps)
        new = np.sort(np.concatenate([edges, roots[inside]]))
        edges = np.concatenate([[new[0]], new[1:][np.diff(new) > eps]])
        edges[-1] = hi
        mid = (edges[:-1] + edges[1:]) / 2
        parent = _parent_pieces(mid, lo_p[:, 0], hi_p[:, 0])
        z_mid = A[parent] * mid[:, None] + C[parent]
        active = z_mid > 0
        gain = np.where(active, 1.0, s.negative_slope)
        a, c = gain * A[parent], gain * C[parent]
        J = gain[:, :, None] * np.einsum("ij,pjk->pik", s.W, J[parent])
        o = gain * (o[parent] @ s.W.T + s.b)
        patterns = [p[parent] for p in patterns] + [active]
    out = stages[-1]
    return LinePartition(
        edges=edges,
        patterns=np.concatenate(patterns, axis=1)
        if patterns
        else np.zeros((len(edges) - 1, 0), bool),
        layer_sizes=tuple(s.width for s in stages[:-1]),
        slopes=a @ out.W.T,
        intercepts=c @ out.W.T + out.b,
        jacobians=np.einsum("ij,pjk->pik", out.W, J),
        offsets=o @ out.W.T + out.b,
        origin=origin,
        direction=direction,
    )


def _parent_pieces(mid: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each midpoint, the index of the old piece ``[lo_p, hi_p]`` that contains it."""
    k = np.searchsorted(hi, mid, side="left")
    return np.clip(k, 0, len(lo) - 1)


def count_line_regions(
    net: nn.Module | Sequence[Stage],
    lo: float,
    hi: float,
    origin: np.ndarray | None = None,
    direction: np.ndarray | None = None,
) -> int:
    """Exact number of linear regions the segment meets (see :func:`line_partition`)."""
    return line_partition(net, lo, hi, origin, direction).n_regions


def region_count_probe(lo: float, hi: float) -> Callable[[Any, Any], list[int]]:
    """A probe for ``train_ensemble``: each member's exact region count on the segment
    ``[lo, hi]`` of a 1-D input (the training inputs it is handed are not used)."""

    def probe(model: Any, X: Any) -> list[int]:
        return [count_line_regions(model.member_module(i), lo, hi) for i in range(model.size)]

    return probe
