"""Chapter 1, linear collapse: stacked affine layers are one affine layer; what layers with
and without an activation do to the input plane (decision boundaries, bent grids, the explorer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.axes import Axes
from torch import nn

from actlab.engine.activations import LABELS
from actlab.engine.device import cpu_threads
from actlab.engine.models import hidden_outputs
from actlab.presentation.figures import OKABE_ITO, panels
from actlab.presentation.prose import count, listing, num

Layer = tuple[np.ndarray, np.ndarray]


def collapse(layers: Sequence[Layer]) -> Layer:
    """Compose affine layers ``x -> W_k x + b_k`` (applied first to last) into one ``(W, b)``.

    Uses ``W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`` repeatedly.
    """
    if len(layers) == 0:
        raise ValueError("need at least one layer")
    W, b = (np.asarray(a, dtype=float) for a in layers[0])
    for W_k, b_k in layers[1:]:
        W_k = np.asarray(W_k, dtype=float)
        if W_k.shape[1] != W.shape[0]:
            raise ValueError(f"layer shapes do not chain: {W.shape} then {W_k.shape}")
        W, b = W_k @ W, W_k @ b + np.asarray(b_k, dtype=float)
    return W, b


def affine_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` in order; raises if anything else would act."""
    layers = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            layers.append(m)
        elif not isinstance(m, nn.Sequential | nn.Identity):
            raise ValueError(f"{type(m).__name__} is not affine; cannot collapse")
    return layers


@torch.no_grad()
def collapse_module(model: nn.Module) -> nn.Linear:
    """One ``nn.Linear`` computing the same map as a stack of linear layers (closed form)."""
    layers = affine_layers(model)
    first = layers[0]
    W = first.weight.detach().clone()
    b = first.bias.detach().clone() if first.bias is not None else torch.zeros(W.shape[0])
    for layer in layers[1:]:
        b = layer.weight @ b + (layer.bias if layer.bias is not None else 0.0)
        W = layer.weight @ W
    out = nn.Linear(W.shape[1], W.shape[0]).to(W.dtype)
    out.weight.copy_(W)
    out.bias.copy_(b)
    return out


def collapsed_rank(layers: Sequence[Layer], tol: float | None = None) -> int:
    """Rank of the collapsed weight: at most the narrowest layer's width."""
    W, _ = collapse(layers)
    return int(np.linalg.matrix_rank(W, tol=tol))


def is_affine(
    f: Callable[[np.ndarray], np.ndarray],
    in_dim: int,
    n_trials: int = 20,
    seed: int = 0,
    rtol: float = 1e-6,
) -> bool:
    """Test numerically whether ``f`` is affine: ``g = f - f(0)`` must be additive and homogeneous.

    Random probes at several scales; a nonlinear activation almost surely breaks
    ``g(a x + b y) = a g(x) + b g(y)`` on one of them.
    """
    rng = np.random.default_rng(seed)
    zero = np.zeros(in_dim)
    f0 = np.asarray(f(zero), dtype=float)
    for _ in range(n_trials):
        scale = 10.0 ** rng.uniform(-1, 1)
        x, y = rng.normal(size=(2, in_dim)) * scale
        a, c = rng.normal(size=2)
        lhs = np.asarray(f(a * x + c * y), dtype=float) - f0
        rhs = a * (np.asarray(f(x), dtype=float) - f0) + c * (np.asarray(f(y), dtype=float) - f0)
        if not np.allclose(lhs, rhs, rtol=rtol, atol=rtol * (1 + np.abs(rhs).max())):
            return False
    return True


def best_line(
    X: np.ndarray, y: np.ndarray, n_angles: int = 3600
) -> tuple[float, np.ndarray, float]:
    """The straight line with the best accuracy on the 2-D labelled points ``X``, ``y`` (0 or 1).

    Returns ``(accuracy, w, t)``: the line predicts class 1 where ``w @ x > t`` (``w`` a unit
    vector). Tries ``n_angles`` directions evenly spaced over a full turn and, for each, every
    threshold between two distinct projections. The accuracy never exceeds the true optimum
    and reaches it once the angular step is finer than the narrowest range of directions
    that keeps the optimal ordering of the points.
    """
    X = np.asarray(X, dtype=float)
    labels = np.asarray(y).reshape(-1) > 0.5
    if X.ndim != 2 or X.shape[1] != 2 or len(X) != len(labels) or len(X) == 0:
        raise ValueError(f"need points of shape (n, 2) and n labels, got {X.shape}, {labels.shape}")
    n = len(X)
    angles = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    directions = np.stack([np.cos(angles), np.sin(angles)])  # (2, n_angles)
    order = np.argsort(X @ directions, axis=0)
    sorted_proj = np.take_along_axis(X @ directions, order, axis=0)
    # ones[k, a]: points of class 1 among the k lowest projections along direction a
    ones = np.zeros((n + 1, n_angles))
    ones[1:] = np.cumsum(labels[order], axis=0)
    k = np.arange(n + 1)[:, None]
    # class 0 below the threshold, class 1 above it: correct = zeros below + ones above
    correct = (k - ones) + (ones[-1] - ones)
    # a threshold can fall after k points only where the k-th and (k+1)-th projections differ
    correct[1:-1][sorted_proj[1:] <= sorted_proj[:-1]] = -1
    k_best, a_best = np.unravel_index(np.argmax(correct), correct.shape)
    column = sorted_proj[:, a_best]
    below = column[k_best - 1] if k_best > 0 else column[0] - 1.0
    above = column[k_best] if k_best < n else column[-1] + 1.0
    return float(correct[k_best, a_best] / n), directions[:, a_best], float((below + above) / 2)


# --------------------------------------------------------------------------- the input plane

# The two classes differ in colour (Okabe-Ito blue and vermillion) and in marker.
CLASS_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"])
CLASS_MARKERS = ("o", "^")


def train_classifier(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    num_epochs: int = 300,
    lr: float = 0.01,
    device: torch.device | str = "cpu",
    threads: int | None = 1,
) -> dict[str, float | list[float]]:
    """Full-batch Adam on the logistic loss; returns the loss history and final accuracy.

    ``threads`` caps the CPU threads while training (see :func:`actlab.engine.device.cpu_threads`).
    """
    model.to(device)
    X_t = torch.as_tensor(X, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=device).reshape(-1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    with cpu_threads(threads, device):
        for _ in range(num_epochs):
            opt.zero_grad()
            loss = loss_fn(model(X_t), y_t)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return {"losses": losses, "accuracy": accuracy(model, X, y)}


@torch.no_grad()
def positive_probability(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """P(class 1) from a binary classifier with one logit (sigmoid) or two (softmax)."""
    device = next(model.parameters()).device
    logits = model(torch.as_tensor(X, dtype=torch.float32, device=device))
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0]).cpu().numpy()
    if logits.shape[-1] == 2:
        return torch.softmax(logits, dim=-1)[..., 1].cpu().numpy()
    raise ValueError(f"expected 1 or 2 outputs, got {logits.shape[-1]}")


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of points on the right side of the model's decision boundary."""
    return float(((positive_probability(model, X) > 0.5) == (np.asarray(y) > 0.5)).mean())


def plot_boundary(ax: Axes, model: nn.Module, X: np.ndarray, y: np.ndarray, n: int = 200) -> None:
    """Shade the plane by the model's predicted probability and draw the 0.5 contour."""
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    prob = positive_probability(model, np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
    ax.contourf(xx, yy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    if prob.min() < 0.5 < prob.max():
        ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=1.5)
    scatter(ax, X, y)
    ax.set_xticks([])
    ax.set_yticks([])


def scatter(ax: Axes, X: np.ndarray, y: np.ndarray, size: float = 8) -> None:
    for label, (colour, marker) in enumerate(zip(CLASS_COLOURS, CLASS_MARKERS, strict=True)):
        pts = X[np.asarray(y) == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, c=colour, marker=marker, edgecolors="none")


def grid_lines(lim: float = 2.0, n_lines: int = 11, n_points: int = 101) -> list[np.ndarray]:
    """Horizontal and vertical lines of a square grid, each an ``(n_points, 2)`` array."""
    t = np.linspace(-lim, lim, n_points)
    ticks = np.linspace(-lim, lim, n_lines)
    horizontal = [np.stack([t, np.full_like(t, c)], 1) for c in ticks]
    vertical = [np.stack([np.full_like(t, c), t], 1) for c in ticks]
    return horizontal + vertical


@torch.no_grad()
def map_through(model: nn.Sequential, points: np.ndarray, layer: int) -> np.ndarray:
    """Points after hidden layer ``layer`` (0 is the input) of ``model``."""
    device = next(model.parameters()).device
    x = torch.as_tensor(points, dtype=torch.float32, device=device)
    return hidden_outputs(model, x)[layer].cpu().numpy()


def spread(points: np.ndarray) -> np.ndarray:
    """Singular values of the centred ``points`` (largest first): how far they spread in each
    principal direction. Both 0: one point; the second 0: every point on one straight line."""
    pts = np.asarray(points, dtype=np.float64)
    return np.linalg.svd(pts - pts.mean(0), compute_uv=False)


def image_dimension(points: np.ndarray, tol: float = 1e-6) -> int:
    """Dimension of the set ``points`` fill: 0 (all on one point), 1 (all on one straight
    segment) or 2 (a region of the plane).

    A spread counts as none when it is below ``tol`` times the largest coordinate
    magnitude (float32 rounding of points that coincide in exact arithmetic).
    """
    pts = np.asarray(points, dtype=np.float64)
    return _dimension(pts, spread(pts), tol)


def _dimension(pts: np.ndarray, sv: np.ndarray, tol: float = 1e-6) -> int:
    """:func:`image_dimension` of ``pts`` from its :func:`spread` ``sv``."""
    floor = tol * max(1.0, float(np.abs(pts).max()))
    if sv[0] <= floor:
        return 0
    if sv[-1] <= max(floor, tol * sv[0]):
        return 1
    return 2


def _mapped_lines(model: nn.Sequential, layer: int, lines: list[np.ndarray]) -> list[np.ndarray]:
    return [map_through(model, line, layer).astype(np.float64) for line in lines]


def _straight_share(mapped: list[np.ndarray], tol: float = 1e-4) -> float:
    """:func:`straight_fraction` of lines already mapped through the layer."""
    straight = 0
    for pts in mapped:
        sv = spread(pts)
        if _dimension(pts, sv) == 0:
            continue
        straight += bool(sv[-1] <= tol * sv[0])
    return straight / len(mapped)


def straight_fraction(
    model: nn.Sequential, layer: int, lines: list[np.ndarray], tol: float = 1e-4
) -> float:
    """Fraction of the grid ``lines`` that are still straight after hidden layer ``layer``.

    A mapped line counts as straight when its points lie on one line: the second
    singular value of the centred points is below ``tol`` times the first. A line crushed
    to a single point is not straight. Read it only where :func:`grid_state` finds the grid
    still spread over the plane: a grid mapped onto one segment has every line "straight"
    because it has collapsed, not because the layer kept it straight.
    """
    return _straight_share(_mapped_lines(model, layer, lines), tol)


def grid_state(model: nn.Sequential, layer: int, lines: list[np.ndarray]) -> str:
    """What hidden layer ``layer`` leaves of the grid ``lines``, in words: "collapsed to a
    point", "collapsed onto a segment" (the whole grid on one straight segment) or, while the
    grid still covers part of the plane, the percentage of its lines that are still straight."""
    mapped = _mapped_lines(model, layer, lines)
    dim = image_dimension(np.concatenate(mapped))
    if dim == 0:
        return "collapsed to a point"
    if dim == 1:
        return "collapsed onto a segment"
    return f"{100 * _straight_share(mapped):.0f} % of lines straight"


def plot_grid(ax: Axes, model: nn.Sequential, layer: int, lines: list[np.ndarray]) -> None:
    """Draw the grid ``lines`` as they look after hidden layer ``layer`` (2 units wide)."""
    n = len(lines) // 2
    for i, line in enumerate(lines):
        mapped = map_through(model, line, layer)
        if mapped.shape[1] != 2:
            raise ValueError(f"layer {layer} has {mapped.shape[1]} units; a grid needs 2")
        # horizontal grid lines grey and solid, vertical ones reddish purple and dashed
        if i < n:
            ax.plot(mapped[:, 0], mapped[:, 1], lw=0.7, color="0.333", ls="-")  # dark grey
        else:
            ax.plot(mapped[:, 0], mapped[:, 1], lw=0.8, color=OKABE_ITO["reddish purple"], ls="--")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


@dataclass(frozen=True)
class FrameFinding:
    """What one frame of chapter 1's explorer measured after training.

    ``hidden_dim`` is the dimension of the set the data fill after the last hidden layer
    (:func:`image_dimension`): 0 when every point lands on one point, 1 when they all lie
    on one straight segment, 2 otherwise. ``best_line`` is the accuracy of the best straight
    line on the same points (:func:`best_line`): a boundary that scores more is not straight.
    """

    depth: int
    activation: str
    accuracy: float
    hidden_dim: int
    best_line: float

    @property
    def accuracy_text(self) -> str:
        """The accuracy as every frame and the page write it."""
        return num(self.accuracy, ".2f")


def frame_sentence(f: FrameFinding) -> str:
    """The finding of one frame of chapter 1's explorer, in words chosen by its measurements."""
    name = "no activation" if f.activation == "none" else LABELS[f.activation]
    head = (
        f"{count(f.depth, 'hidden layer')} with {name}: accuracy {f.accuracy_text} on the two rings"
    )
    line = num(f.best_line, ".2f")
    if f.hidden_dim == 0:
        return (
            f"{head}; hidden layer {f.depth} maps every point to one point, so the network "
            "gives every input the same output: it has collapsed and draws no boundary"
        )
    if f.activation == "none":
        finding = f"{head}, the best straight line reaches {line}; the decision boundary is a straight line"
    elif f.accuracy > f.best_line:
        finding = f"{head}, above the {line} of the best straight line, so the boundary is bent"
    else:
        finding = f"{head}, no better than the best straight line ({line})"
    if f.hidden_dim == 1:
        finding += f"; hidden layer {f.depth} puts every point on one straight segment"
    return finding


def collapsed_depths(findings: dict[tuple[int, str], FrameFinding], activation: str) -> list[int]:
    """The depths at which the explorer's ``activation`` network mapped every point to one point."""
    return sorted(d for (d, a), f in findings.items() if a == activation and f.hidden_dim == 0)


def collapse_summary(findings: dict[tuple[int, str], FrameFinding], activation: str) -> str:
    """One sentence for the page on the explorer's frames where ``activation`` collapsed,
    quoting each frame's accuracy exactly as the frame writes it."""
    depths = collapsed_depths(findings, activation)
    name = LABELS[activation]
    if not depths:
        return f"None of the explorer's {name} frames maps every point to one point."
    accs = listing(sorted({findings[d, activation].accuracy_text for d in depths}))
    layers = listing(depths)
    return (
        f"With {name}, the frames with {layers} hidden layers map every point to one point "
        f"after the last hidden layer: the network gives every input the same output and "
        f"its accuracy is {accs}, what always guessing one class scores."
    )


def depth_activation_explorer(
    X: np.ndarray,
    y: np.ndarray,
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8),
    activations: tuple[str, ...] = ("none", "relu", "tanh"),
    num_epochs: int = 300,
    device: torch.device | str = "cpu",
    line_accuracy: float | None = None,
):
    """Chapter 1's explorer: depth x activation -> decision boundary and the last hidden space.

    Each frame trains a network with hidden layers of 8 units, the last one 2 units
    wide so that its space can be drawn with the warped grid and the data in it. The
    returned explorer's ``findings`` maps ``(depth, activation)`` to the frame's
    :class:`FrameFinding` once the frame is drawn: the page quotes those, so that its
    numbers and the frames' words come from one measurement. ``line_accuracy`` is the best
    straight line's accuracy on ``X``, ``y`` when the caller has it (:func:`best_line`).
    """
    from actlab.engine.device import set_seed
    from actlab.engine.models import mlp
    from actlab.presentation.explorer import Control, Explorer

    lines = grid_lines(lim=2.5, n_lines=9)
    if line_accuracy is None:
        line_accuracy = best_line(X, y)[0]
    findings: dict[tuple[int, str], FrameFinding] = {}

    def draw(depth: int, activation: str):
        set_seed(0)
        net = mlp(2, 8, depth, 1, activation=activation, widths=[8] * (depth - 1) + [2])
        res = train_classifier(net, X, y, num_epochs=num_epochs, lr=0.02, device=device)
        net = net.cpu()
        hidden = map_through(net, X, depth)
        found = FrameFinding(
            depth, activation, res["accuracy"], image_dimension(hidden), line_accuracy
        )
        findings[depth, activation] = found
        fig, (ax_in, ax_hidden) = panels(2, height=3.2)
        plot_boundary(ax_in, net, X, y)
        ax_in.set_title(f"input plane: accuracy {found.accuracy_text}")
        plot_grid(ax_hidden, net, depth, lines)
        scatter(ax_hidden, hidden, y)
        where = {0: ": all on one point", 1: ": on one segment"}.get(found.hidden_dim, "")
        ax_hidden.set_title(f"after hidden layer {depth}{where}")
        return fig

    explorer = Explorer(
        draw,
        [
            Control("depth", list(depths), label="hidden layers"),
            Control("activation", list(activations), kind="buttons"),
        ],
        title="Depth × activation → decision boundary and warped grid",
        describe=lambda depth, activation: frame_sentence(findings[depth, activation]),
    )
    explorer.findings = findings
    return explorer
