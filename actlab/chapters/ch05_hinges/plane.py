"""Chapter 5 in the plane: activation patterns sampled on a grid, the exact arrangement of
one hidden layer's lines, the literature's maxima, and the partition figure."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from torch import nn

from actlab.chapters.ch05_hinges.lines import Stage, _as_stages, _forward
from actlab.presentation.figures import CATEGORICAL

# --------------------------------------------------------------------------- patterns by sampling


def activation_patterns(net: nn.Module | Sequence[Stage], X: np.ndarray) -> np.ndarray:
    """Which hidden units are active (``z > 0``) at each point: ``(N, units)`` booleans (chapter 5).

    The hidden layers' units are side by side, input side first, as in
    :attr:`LinePartition.patterns`.
    """
    stages = _as_stages(net)
    X = np.atleast_2d(np.asarray(X, dtype=float))
    _, pre = _forward(stages, X)
    if not pre:
        return np.zeros((len(X), 0), bool)
    return np.concatenate([z > 0 for z in pre], axis=1)


def pattern_ids(patterns: np.ndarray) -> tuple[np.ndarray, int]:
    """An integer label per row (equal rows, equal labels) and the number of distinct rows."""
    patterns = np.asarray(patterns, dtype=bool)
    if patterns.shape[1] == 0:
        return np.zeros(len(patterns), int), 1 if len(patterns) else 0
    packed = np.packbits(patterns, axis=1)
    _, ids = np.unique(packed, axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    return ids, int(ids.max()) + 1 if ids.size else 0


def plane_grid(
    lo: float | Sequence[float], hi: float | Sequence[float], n: int = 400
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ``n x n`` grid of the box ``[lo, hi]^2``: ``(xx, yy, points (n*n, 2))``."""
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (2,))
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (2,))
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()]


def count_grid_regions(
    net: nn.Module | Sequence[Stage],
    lo: float | Sequence[float],
    hi: float | Sequence[float],
    n: int = 400,
) -> int:
    """Distinct activation patterns on an ``n x n`` grid of a box of the plane (chapter 5).

    A lower bound on the number of regions that meet the box: a region that no grid
    point falls in is missed, and never is one counted that is not there.
    """
    _, _, pts = plane_grid(lo, hi, n)
    return pattern_ids(activation_patterns(net, pts))[1]


# --------------------------------------------------------------------------- one hidden layer, 2-D


def general_position_regions(n: int, dim: int = 2) -> int:
    """Regions of ``n`` hyperplanes in general position in ``R^dim``: ``sum_{j<=dim} C(n, j)``.

    For ``dim = 2`` this is ``1 + n + n(n-1)/2``; for ``dim = 1`` it is ``n + 1``.
    """
    return sum(math.comb(n, j) for j in range(min(n, dim) + 1))


def _distinct_lines(W: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """Rows ``(w1, w2, b)`` of the distinct lines ``w . x + b = 0``, each scaled to ``|w| = 1``.

    Units with ``w = 0`` draw no line. ``(w, b)`` and ``(s w, s b)`` are the same line for
    any ``s != 0`` (including negative ``s``: the line is the same, only the side that
    is active changes).
    """
    W = np.asarray(W, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1)
    norm = np.linalg.norm(W, axis=1)
    keep = norm > tol
    lines = np.c_[W[keep], b[keep]] / norm[keep, None]
    # Make the representation unique: first nonzero weight component positive.
    sign = np.where(np.abs(lines[:, 0]) > tol, np.sign(lines[:, 0]), np.sign(lines[:, 1]))
    lines = lines * sign[:, None]
    distinct: list[np.ndarray] = []
    for row in lines:
        if not any(np.abs(row - d).max() <= tol * max(1.0, abs(row[2])) for d in distinct):
            distinct.append(row)
    return np.array(distinct).reshape(-1, 3)


def arrangement_vertices(
    W: np.ndarray, b: np.ndarray, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """The crossing points of the units' lines and how many distinct lines pass through each.

    Returns:
        ``points (V, 2)`` and ``multiplicity (V,)`` (2 where exactly two lines cross).
    """
    lines = _distinct_lines(W, b, tol)
    vertices: dict[frozenset[int], np.ndarray] = {}
    for i, j in itertools.combinations(range(len(lines)), 2):
        M = lines[[i, j], :2]
        if abs(np.linalg.det(M)) <= tol:  # parallel: no crossing
            continue
        p = np.linalg.solve(M, -lines[[i, j], 2])
        # Every line through p (its distance to p, |w| being 1, is ~0): one vertex per set.
        dist = np.abs(lines[:, :2] @ p + lines[:, 2])
        through = frozenset(np.flatnonzero(dist <= 1e3 * tol * max(1.0, float(np.abs(p).max()))))
        vertices.setdefault(through | {i, j}, p)
    if not vertices:
        return np.zeros((0, 2)), np.zeros(0, int)
    return np.array(list(vertices.values())), np.array([len(k) for k in vertices])


def arrangement_regions(W: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> int:
    """Exact number of regions into which one hidden layer's lines cut the plane (chapter 5).

    Unit ``i`` of ``z = W x + b`` (``W`` of shape ``(n, 2)``) switches on the line
    ``w_i . x + b_i = 0``. Start from the whole plane (1 region) and add the distinct
    lines one at a time: a new line is cut by the earlier ones into ``k + 1``
    segments, where ``k`` is the number of *distinct points* at which it meets them,
    and each segment splits one region in two. Summed over the lines this gives

        regions = 1 + (number of distinct lines) + sum over crossing points p of (m_p - 1),

    with ``m_p`` the number of lines through ``p``. In general position (no two lines
    parallel, no three through one point) every ``m_p = 2`` and there are ``n(n-1)/2``
    points, so ``regions = 1 + n + n(n-1)/2``. Parallel lines meet nowhere, lines
    through a common point share it, units with ``w = 0`` draw no line, and units with
    proportional ``(w_i, b_i)`` draw the same line: each of these gives fewer regions.
    Each region has its own activation pattern, so this is also the number of
    distinct patterns over the whole plane.
    """
    lines = _distinct_lines(W, b, tol)
    _, mult = arrangement_vertices(W, b, tol)
    return 1 + len(lines) + int((mult - 1).sum())


def arrangement_box(
    W: np.ndarray, b: np.ndarray, margin: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """A box of the plane that every region of the arrangement meets.

    It holds every crossing point and, for every line, its point nearest the origin,
    widened by ``margin`` times its size (at least 1 in each direction), so sampling
    this box can in principle find every region.
    """
    W = np.asarray(W, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1)
    pts, _ = arrangement_vertices(W, b)
    norm2 = (W**2).sum(1)
    live = norm2 > 1e-18
    feet = -(b[live] / norm2[live])[:, None] * W[live]
    allp = np.concatenate([pts, feet, np.zeros((1, 2))])
    lo, hi = allp.min(0), allp.max(0)
    pad = np.maximum(margin * (hi - lo), 1.0)
    return lo - pad, hi + pad


def box_regions(
    W: np.ndarray,
    b: np.ndarray,
    lo: float | Sequence[float],
    hi: float | Sequence[float],
    tol: float = 1e-9,
) -> int:
    """Exact number of the arrangement's regions that meet the open box ``(lo, hi)`` (chapter 5).

    The same count as :func:`arrangement_regions`, inside a box: the box is convex, so a
    line that crosses it is one chord, and adding the chords one at a time each is cut
    by the distinct points where it meets earlier chords inside the box into pieces
    that each split one region in two. Hence

        regions in the box = 1 + (distinct lines crossing it) + sum over crossing points
        p inside it of (m_p - 1).

    A region meets a convex box in a convex, hence connected, set, so this is also the
    number of distinct activation patterns in the box: what a fine grid of the box
    counts (:func:`count_grid_regions`) when no region is thinner than its spacing.
    """
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (2,))
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (2,))
    lines = _distinct_lines(W, b, tol)
    corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
    values = corners @ lines[:, :2].T + lines[:, 2]  # (4, lines): signed distances
    crossing = int(((values.min(0) < -tol) & (values.max(0) > tol)).sum())
    pts, mult = arrangement_vertices(W, b, tol)
    inside = np.all((pts > lo + tol) & (pts < hi - tol), axis=1) if len(pts) else np.zeros(0, bool)
    return 1 + crossing + int((mult[inside] - 1).sum())


def view_box(
    W: np.ndarray, b: np.ndarray, coverage: float = 0.75, pad: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """A square of the plane to draw the regions in: around where the units' lines cross.

    :func:`arrangement_box` holds every crossing, and two nearly parallel lines cross
    far away, so in it the other regions shrink to a point. This square is centred on
    the median crossing point and holds the nearest ``coverage`` of the crossings,
    widened by ``pad`` times its half-width (half-width at least 1). With fewer than
    two crossings it holds the crossing, if any, and every line's point nearest the
    origin, widened the same way. Count what it shows with :func:`box_regions`.
    """
    W = np.asarray(W, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1)
    pts, _ = arrangement_vertices(W, b)
    if len(pts) >= 2:
        centre = np.median(pts, axis=0)
        reach = np.abs(pts - centre).max(axis=1)  # each crossing's distance in the max norm
        half = float(np.quantile(reach, coverage))
    else:
        norm2 = (W**2).sum(1)
        live = norm2 > 1e-18
        pts = np.concatenate([pts, -(b[live] / norm2[live])[:, None] * W[live], np.zeros((1, 2))])
        centre = (pts.min(0) + pts.max(0)) / 2
        half = float((pts.max(0) - pts.min(0)).max()) / 2
    half = max(half * (1 + pad), 1.0)
    return centre - half, centre + half


# --------------------------------------------------------------------------- theoretical maxima


def montufar_lower_bound(in_dim: int, widths: Sequence[int]) -> int:
    """Montúfar et al. (2014)'s lower bound on the *maximal* number of regions (chapter 5).

    For hidden widths ``n_1, ..., n_L`` all at least ``in_dim = n_0``, some network of
    that shape has at least ``prod_{l<L} floor(n_l / n_0)^{n_0} * sum_{j<=n_0} C(n_L, j)``
    linear regions: the maximum grows exponentially with depth.
    """
    widths = list(widths)
    if any(n < in_dim for n in widths):
        raise ValueError("the bound needs every width >= the input dimension")
    prod = 1
    for n in widths[:-1]:
        prod *= (n // in_dim) ** in_dim
    return prod * general_position_regions(widths[-1], in_dim)


def serra_upper_bound(in_dim: int, widths: Sequence[int]) -> int:
    """Serra, Tjandraatmadja & Ramalingam (2018)'s upper bound on the number of regions (chapter 5).

    ``sum over (j_1..j_L) in J of prod_l C(n_l, j_l)``, where ``J`` holds the integer
    vectors with ``0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)``. With
    one hidden layer it is the general-position count; on a line (``n_0 = 1``) with
    widths of at least 2 it is ``prod_l (n_l + 1)``.
    """
    widths = list(widths)
    total = 0

    def walk(level: int, cap: int, prod: int) -> None:
        nonlocal total
        if level == len(widths):
            total += prod
            return
        n = widths[level]
        for j in range(min(cap, n) + 1):
            walk(level + 1, min(cap, n - j), prod * math.comb(n, j))

    walk(0, in_dim, 1)
    return total


# --------------------------------------------------------------------------- figures


def plot_partition(
    ax: Axes,
    net: nn.Module | Sequence[Stage],
    lo: float | Sequence[float],
    hi: float | Sequence[float],
    n: int = 300,
    lines: bool = True,
) -> int:
    """Colour a box of the plane by activation pattern (chapter 5); returns the patterns found.

    With ``lines=True`` and a one-hidden-layer network, each unit's line is drawn too.
    """
    xx, yy, pts = plane_grid(lo, hi, n)
    ids, count = pattern_ids(activation_patterns(net, pts))
    # Shuffle labels so that neighbouring regions rarely share a colour.
    perm = np.random.default_rng(0).permutation(max(count, 1))
    colours = ListedColormap(CATEGORICAL)
    extent = (xx.min(), xx.max(), yy.min(), yy.max())
    ax.imshow((perm[ids] % len(CATEGORICAL)).reshape(xx.shape), cmap=colours, origin="lower",
              extent=extent, vmin=-0.5, vmax=len(CATEGORICAL) - 0.5, alpha=0.55,
              interpolation="nearest", aspect="auto")  # fmt: skip
    stages = _as_stages(net)
    if lines and len(stages) == 2:
        for k, (w, b) in enumerate(zip(stages[0].W, stages[0].b, strict=True)):
            norm2 = float(w @ w)
            if norm2 < 1e-24:
                continue
            p0 = -b * w / norm2  # the line's point nearest the origin; it runs along (-w2, w1)
            ax.axline(p0, p0 + np.array([-w[1], w[0]]), color="k", lw=1.2,
                      ls=("-", "--", ":", "-.")[k % 4])  # fmt: skip
    ax.set(xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()), xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal")
    return count
