"""Backpropagation by hand (chapter 3): the scalar chain, vanishing bounds, gradient probes, init,
and the explorer of gradient norms per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from actlab.engine.activations import LABELS, get
from actlab.engine.device import cpu_threads, get_device
from actlab.engine.models import activation_module, linear_layers
from actlab.engine.stats import geometric_summary
from actlab.ensemble import EnsembleResult, gradient_norms_at_init, members_grid
from actlab.presentation.explorer import Control, Explorer
from actlab.presentation.figures import activation_style, panels
from actlab.presentation.prose import count, num, span

# ---------------------------------------------------------------------------
# Activation values and slopes, from the activation registry (chapter 2)
# ---------------------------------------------------------------------------


def phi(name: str, z: float | np.ndarray) -> np.ndarray:
    """Activation ``name`` at ``z`` (float64), from the registry of chapter 2."""
    return get(name).np_fn(np.asarray(z, dtype=np.float64))


def dphi(name: str, z: float | np.ndarray) -> np.ndarray:
    """Closed-form slope of activation ``name`` at ``z`` (float64), from the registry."""
    return get(name).np_dfn(np.asarray(z, dtype=np.float64))


def max_slope(name: str, lo: float = -10.0, hi: float = 10.0, n: int = 20_001) -> float:
    """Largest ``|phi'(z)|`` on a fine grid of ``[lo, hi]`` (0.25 for sigmoid, 1 for tanh and ReLU)."""
    return float(np.abs(dphi(name, np.linspace(lo, hi, n))).max())


def vanishing_bound(depth: int, slope: float = 0.25, weight: float = 1.0) -> float:
    """Upper bound ``(|w| * max phi')**depth`` on how much of the gradient survives ``depth`` layers.

    With sigmoid (max slope 0.25) and weights of size 1: 0.25**3 = 1/64 for three
    layers, 0.25**10 ~ 9.5e-7 for ten. A factor ``|w phi'|`` above 1 explodes instead.
    """
    if depth < 0:
        raise ValueError("depth must be >= 0")
    return float((abs(weight) * slope) ** depth)


# ---------------------------------------------------------------------------
# The scalar chain x -> z1 -> a1 -> ... -> a_n = y_hat, loss 0.5 (y_hat - y)^2
# ---------------------------------------------------------------------------


@dataclass
class ChainPass:
    """Every forward and backward quantity of the scalar chain (index 0 is layer 1).

    ``z[k] = w[k] a[k-1] + b[k]`` with ``a[-1] = x``, ``a[k] = phi(z[k])``,
    ``L = 0.5 (a[-1] - y)^2``. ``dL_da[k]`` is the upstream gradient reaching
    ``a[k]`` and ``dL_dz[k] = dL_da[k] * phi'(z[k])``.
    """

    activation: str
    x: float
    y: float
    w: np.ndarray
    b: np.ndarray
    z: np.ndarray
    a: np.ndarray
    slope: np.ndarray
    loss: float
    dL_da: np.ndarray
    dL_dz: np.ndarray
    dL_dw: np.ndarray
    dL_db: np.ndarray
    dL_dx: float


def chain_pass(
    x: float, y: float, w: Sequence[float], b: Sequence[float], activation: str = "sigmoid"
) -> ChainPass:
    """Forward then backward through the scalar chain, one factor at a time (chapter 3).

    Args:
        x, y: the input and its target.
        w, b: one weight and one bias per layer (any number of layers).
        activation: used after every layer, the last included.
    """
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if w.shape != b.shape or w.ndim != 1:
        raise ValueError("w and b must be 1-D with one entry per layer")
    n = len(w)
    z, a = np.zeros(n), np.zeros(n)
    prev = float(x)
    for k in range(n):
        z[k] = w[k] * prev + b[k]
        a[k] = phi(activation, z[k])
        prev = a[k]
    slope = dphi(activation, z)
    loss = 0.5 * (a[-1] - y) ** 2

    dL_da, dL_dz, dL_dw = np.zeros(n), np.zeros(n), np.zeros(n)
    inputs = np.concatenate([[x], a[:-1]])
    upstream = a[-1] - y  # dL/d y_hat
    for k in reversed(range(n)):
        dL_da[k] = upstream
        dL_dz[k] = upstream * slope[k]
        dL_dw[k] = dL_dz[k] * inputs[k]
        upstream = dL_dz[k] * w[k]  # becomes dL/da[k-1]
    return ChainPass(
        activation=activation,
        x=float(x),
        y=float(y),
        w=w,
        b=b,
        z=z,
        a=a,
        slope=slope,
        loss=float(loss),
        dL_da=dL_da,
        dL_dz=dL_dz,
        dL_dw=dL_dw,
        dL_db=dL_dz.copy(),
        dL_dx=float(upstream),
    )


def chain_autograd(
    x: float, y: float, w: Sequence[float], b: Sequence[float], activation: str = "sigmoid"
) -> dict[str, np.ndarray | float]:
    """The same chain built from tensors and differentiated by ``torch.autograd`` (float64).

    Returns:
        ``z``, ``a``, ``loss``, ``slope`` (da/dz), ``dL_da`` and ``dL_dz`` (retained grads), ``dL_dw``, ``dL_db``, ``dL_dx``.
    """
    act = activation_module(activation)
    xt = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    bt = torch.tensor(np.asarray(b, dtype=np.float64), requires_grad=True)
    h, zs, as_ = xt, [], []
    for k in range(len(wt)):
        zk = wt[k] * h + bt[k]
        zk.retain_grad()
        h = act(zk)
        h.retain_grad()
        zs.append(zk)
        as_.append(h)
    loss = 0.5 * (h - float(y)) ** 2
    loss.backward()
    # Local slopes on fresh leaves, so they cannot touch the retained grads above.
    slopes = []
    for z_k in zs:
        leaf = z_k.detach().clone().requires_grad_(True)
        slopes.append(torch.autograd.grad(act(leaf), leaf)[0].item())
    return {
        "z": np.array([t.item() for t in zs]),
        "a": np.array([t.item() for t in as_]),
        "loss": loss.item(),
        "slope": np.array(slopes),
        "dL_da": np.array([t.grad.item() for t in as_]),
        "dL_dz": np.array([t.grad.item() for t in zs]),
        "dL_dw": wt.grad.numpy().copy(),
        "dL_db": bt.grad.numpy().copy(),
        "dL_dx": xt.grad.item(),
    }


def chain_table(cp: ChainPass) -> pd.DataFrame:
    """One row per quantity of ``cp``: symbol, how it is computed, value by hand, value by autograd."""
    ag = chain_autograd(cp.x, cp.y, cp.w, cp.b, cp.activation)
    n = len(cp.w)
    rows: list[tuple[str, str, float, float]] = []
    prev = "x"
    for k in range(n):
        i = k + 1
        rows.append((f"z{i}", f"w{i}·{prev} + b{i}", cp.z[k], ag["z"][k]))
        rows.append((f"a{i}", f"φ(z{i})", cp.a[k], ag["a"][k]))
        prev = f"a{i}"
    rows.append(("L", f"½(a{n} − y)²", cp.loss, ag["loss"]))
    for k in reversed(range(n)):
        i = k + 1
        up = f"a{n} − y" if k == n - 1 else f"∂L/∂z{i + 1}·w{i + 1}"
        rows.append((f"∂L/∂a{i}", up, cp.dL_da[k], ag["dL_da"][k]))
        rows.append((f"φ'(z{i})", "local slope", cp.slope[k], ag["slope"][k]))
        rows.append((f"∂L/∂z{i}", f"∂L/∂a{i}·φ'(z{i})", cp.dL_dz[k], ag["dL_dz"][k]))
        rows.append(
            (f"∂L/∂w{i}", f"∂L/∂z{i}·{'x' if k == 0 else f'a{k}'}", cp.dL_dw[k], ag["dL_dw"][k])
        )
        rows.append((f"∂L/∂b{i}", f"∂L/∂z{i}", cp.dL_db[k], ag["dL_db"][k]))
    df = pd.DataFrame(rows, columns=["quantity", "computed as", "by hand", "autograd"])
    df["|difference|"] = (df["by hand"] - df["autograd"]).abs()
    return df


def slope_factors(cp: ChainPass) -> pd.DataFrame:
    """Per layer: ``phi'(z_k)``, ``w_k``, and the factor ``w_k phi'(z_k)`` the gradient is multiplied by."""
    return pd.DataFrame(
        {
            "layer": np.arange(1, len(cp.w) + 1),
            "z": cp.z,
            "φ'(z)": cp.slope,
            "w": cp.w,
            "w·φ'(z)": cp.w * cp.slope,
        }
    )


# ---------------------------------------------------------------------------
# Zig-zag: all-positive inputs force same-sign weight gradients
# ---------------------------------------------------------------------------


def sgd_path(
    A: np.ndarray, y: np.ndarray, w0: Sequence[float], lr: float, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example gradient descent on ``L = 0.5 (w·a - y)^2`` for a linear neuron.

    Args:
        A: inputs ``(N, d)``; y: targets ``(N,)``; w0: starting weights.
        lr: step size; steps: number of single-example steps; seed: example order.

    Returns:
        The weights after every step ``(steps + 1, d)`` and the gradients ``(steps, d)``.
    """
    rng = np.random.default_rng(seed)
    w = np.asarray(w0, dtype=float).copy()
    path, grads = [w.copy()], []
    for i in rng.integers(0, len(A), size=steps):
        g = (A[i] @ w - y[i]) * A[i]  # delta times the inputs: sign set by delta when A[i] > 0
        w = w - lr * g
        path.append(w.copy())
        grads.append(g)
    return np.array(path), np.array(grads)


def same_sign_fraction(grads: np.ndarray) -> float:
    """Fraction of gradients whose non-zero components all share one sign."""
    s = np.sign(grads)
    return float(np.mean(np.all(s >= 0, axis=1) | np.all(s <= 0, axis=1)))


# ---------------------------------------------------------------------------
# Probes on nn.Module networks and initialisation
# ---------------------------------------------------------------------------


def layer_grad_norms(model: nn.Module) -> np.ndarray:
    """Frobenius norm of each linear layer's weight gradient (call after ``backward``).

    Layer 0 is nearest the input. Raises if a layer has no gradient yet.
    """
    norms = []
    for k, layer in enumerate(linear_layers(model)):
        if layer.weight.grad is None:
            raise ValueError(f"linear layer {k} has no gradient: call loss.backward() first")
        norms.append(layer.weight.grad.detach().norm().item())
    return np.array(norms)


def epochs_at_baseline(losses: np.ndarray, baseline: float, frac: float = 0.9) -> np.ndarray:
    """Epochs each run spends before its loss first drops below ``frac * baseline``.

    Args:
        losses: loss per epoch, ``(num_epochs,)`` or ``(num_epochs, runs)``.
        baseline: the loss of predicting the mean target (the variance of ``y``).

    Returns:
        One count per run; ``num_epochs`` for a run that never left the baseline.
    """
    below = np.asarray(losses) < frac * baseline
    first = np.argmax(below, axis=0)
    return np.where(below.any(axis=0), first, below.shape[0])


def chain_gain(
    activation: str, depth: int, weight: float, x: float = 0.5, bias: float = 0.0
) -> float:
    """``|dL/dx| / |dL/da_L|`` for a chain of ``depth`` equal layers: the product of ``|w phi'(z_k)|``.

    Below 1 the gradient vanishes on its way to the input, above 1 it explodes.
    """
    cp = chain_pass(x, 0.0, [weight] * depth, [bias] * depth, activation)
    return float(abs(cp.dL_dx / cp.dL_da[-1])) if cp.dL_da[-1] != 0 else 0.0


# ---------------------------------------------------------------------------
# The explorer: gradient per weight and layer at initialisation
# ---------------------------------------------------------------------------

#: ``(depth, activation, init)`` -> per-weight RMS gradient, shape ``(seeds, depth + 1)``.
GradTable = Mapping[tuple[int, str, str], np.ndarray]

#: The initialisation schemes by the names :func:`actlab.ensemble.members_grid` takes, as a
#: reader reads them (Glorot and Bengio's is known as Xavier initialisation).
INIT_LABELS = {
    "default": "PyTorch default",
    "xavier": "Xavier",
    "he": "He",
    "default-zero-bias": "default, biases 0",
}


def gradient_norm_explorer(
    grad_table: GradTable,
    depths: Sequence[int],
    activations: Sequence[str],
    inits: Sequence[str],
) -> Explorer:
    """Chapter 3's explorer: depth x initialisation -> gradient per weight and layer, one line
    per activation.

    Args:
        grad_table: ``(depth, activation, init)`` -> the per-weight RMS gradients at
            initialisation, ``(seeds, depth + 1)``, input side first (see
            :func:`gradient_table`).
        depths, inits: the values of the two controls, in display order.
        activations: the lines of every frame, in the registry's styles.

    Every frame has one log axis, framed by the smallest and largest value of all the
    frames, so that frames compare.
    """
    # the buttons show the schemes' names ("Xavier"); the table is keyed by members_grid's
    by_label = {INIT_LABELS.get(init, init): init for init in inits}
    ylim = log_limits([grad_table[d, a, i] for d in depths for a in activations for i in inits])
    return Explorer(
        lambda depth, init: gradient_norm_figure(
            grad_table, depth, by_label[init], activations, ylim=ylim
        ),
        [
            Control(
                "depth", list(depths), label="hidden layers", default=10 if 10 in depths else None
            ),
            Control("init", list(by_label), label="initialisation", kind="buttons"),
        ],
        title="Depth × initialisation → gradient per weight and layer, one line per activation",
        describe=lambda depth, init: _describe_gradient_norms(
            grad_table, depth, by_label[init], activations
        ),
    )


def gradient_norm_figure(
    grad_table: GradTable,
    depth: int,
    init: str,
    activations: Sequence[str],
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """One frame of :func:`gradient_norm_explorer`: each activation's per-weight gradient per
    layer on a log axis, geometric mean over seeds with their range shaded, within ``ylim``
    (default: this frame's own values)."""
    layers = np.arange(1, depth + 2)
    fig, (ax,) = panels(1, height=3.2)
    for act in activations:
        g = np.asarray(grad_table[depth, act, init])
        centre, low, high = geometric_summary(g, axis=0)
        style = activation_style(act)
        ax.fill_between(layers, low, high, color=style["color"], alpha=0.15, lw=0)
        ax.plot(layers, centre, ms=4, label=LABELS[act], **style)
    shown = [grad_table[depth, act, init] for act in activations]
    ax.set(
        yscale="log", ylim=ylim or log_limits(shown), xlim=(0.5, depth + 1.5),
        xlabel=f"layer (1 = input side, {depth + 1} = output)", ylabel="RMS gradient per weight",
        title=f"{count(depth, 'hidden layer')}, {INIT_LABELS.get(init, init)} initialisation",
    )  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(loc="outside lower center", ncols=len(activations))
    return fig


def _describe_gradient_norms(
    grad_table: GradTable, depth: int, init: str, activations: Sequence[str]
) -> str:
    """The finding of one frame: each activation's layer-1 gradient per weight, and its fraction
    of the last hidden layer's, in the words and numbers the chapter's text uses."""
    n = len(grad_table[depth, activations[0], init])
    parts = []
    for act in activations:
        texts = layer1_texts(grad_table, depth, act, init)
        parts.append(f"{LABELS[act]} {texts['gradient']}, {texts['ratio']} of layer {depth}'s")
    return (
        f"{count(depth, 'hidden layer')}, {INIT_LABELS.get(init, init)} initialisation. "
        f"Layer 1's gradient per weight (geometric mean over {count(n, 'seed')}, range in "
        f"brackets): {'; '.join(parts)}"
    )


# ---------------------------------------------------------------------------
# A shape-fair gradient measure, and one average for it
# ---------------------------------------------------------------------------


def weight_counts(depth: int, width: int, in_dim: int = 1, out_dim: int = 1) -> np.ndarray:
    """Number of weights of each linear layer of an MLP, input side first: ``in_dim * width``,
    ``width * width`` for each hidden-to-hidden layer, ``width * out_dim``."""
    if depth < 1:
        raise ValueError("an MLP here has at least one hidden layer")
    return np.array([in_dim * width] + [width * width] * (depth - 1) + [width * out_dim])


def per_weight_rms(norms: np.ndarray, width: int, in_dim: int = 1, out_dim: int = 1) -> np.ndarray:
    """Each layer's weight-gradient norm divided by the square root of its number of weights:
    the root mean square gradient of one weight (``norms`` has one layer per entry of its
    last axis, input side first)."""
    norms = np.asarray(norms, dtype=float)
    counts = weight_counts(norms.shape[-1] - 1, width, in_dim, out_dim)
    return norms / np.sqrt(counts)


def first_last_ratio(rms: np.ndarray) -> np.ndarray:
    """Layer 1's per-weight gradient over the last hidden layer's (the entry before the output
    layer): the fraction that reaches layer 1; below 1 the gradient vanishes on its way down."""
    rms = np.asarray(rms, dtype=float)
    if rms.shape[-1] < 3:
        raise ValueError("the ratio needs at least two hidden layers")
    return rms[..., 0] / rms[..., -2]


def gm_text(values: np.ndarray, spec: str = ".2g") -> str:
    """The geometric mean of ``values`` with the range in brackets: ``"4.5e−10 (2e−10 to 9.1e−10)"``.

    The one way the chapter, its captions and its explorer write a quantity that spans
    orders of magnitude (:func:`actlab.engine.stats.geometric_summary`).
    """
    mean, low, high = geometric_summary(values)
    return f"{num(mean, spec)} ({span(low, high, spec)})"


def log_limits(arrays: Sequence[np.ndarray], pad: float = 2.0) -> tuple[float, float]:
    """Limits of a log axis that frames every positive value of ``arrays`` with a factor
    ``pad`` of room at both ends."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise ValueError("no positive values to frame")
    return float(values.min() / pad), float(values.max() * pad)


def gradient_table(
    X: np.ndarray,
    y: np.ndarray,
    depths: Sequence[int],
    activations: Sequence[str],
    inits: Sequence[str],
    seeds: Sequence[int],
    width: int = 64,
    device: torch.device | str | None = None,
) -> dict[tuple[int, str, str], np.ndarray]:
    """The per-weight RMS gradient of every layer at initialisation, for every depth,
    activation and initialisation, one row per seed.

    One forward and backward pass of the MSE loss per depth and initialisation, all
    activations and seeds stacked (:func:`actlab.ensemble.gradient_norms_at_init`); the
    norms become per-weight values with :func:`per_weight_rms`.

    Returns:
        ``(depth, activation, init)`` -> array ``(len(seeds), depth + 1)``, input side first.
    """
    seeds, X, y = list(seeds), np.asarray(X), np.asarray(y)
    device = torch.device(device) if device is not None else get_device()
    table: dict[tuple[int, str, str], np.ndarray] = {}
    # one thread per idle core, as in training: on busy cores more threads wait for each other
    with cpu_threads("auto", device):
        for depth in depths:
            for init in inits:
                members = members_grid(seeds, activations, inits=[init])
                norms = gradient_norms_at_init(
                    members, X, y, depth=depth, width=width, device=device
                )
                rms = per_weight_rms(norms, width, X.shape[1], y.shape[1])
                for i, act in enumerate(activations):
                    table[depth, act, init] = rms[i * len(seeds) : (i + 1) * len(seeds)]
    return table


# ---------------------------------------------------------------------------
# Adam's first step: the epsilon floor
# ---------------------------------------------------------------------------


class FirstUpdate(NamedTuple):
    """Layer 1 at the first update, one entry per member (see :func:`first_update`)."""

    gradient: np.ndarray  #: per-weight RMS gradient at initialisation
    move: np.ndarray  #: mean ``|Δw| / lr`` of the first update
    changed: np.ndarray  #: fraction of the weights whose value changed at all


def first_layer_weights(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    """A probe for :func:`actlab.ensemble.train_ensemble`: every member's layer-1 weights,
    shape ``(E, in_dim, width)``."""
    return model.weights[0].detach().cpu().numpy().copy()


def step_over_lr(before: np.ndarray, after: np.ndarray, lr: float | np.ndarray) -> np.ndarray:
    """How far one update moved each member's weights, in units of its learning rate: the mean
    of ``|w_after - w_before| / lr`` over the weights of each member (leading axis; ``lr`` one
    number, or one per member)."""
    moved = np.abs(np.asarray(after, dtype=float) - np.asarray(before, dtype=float))
    moved = moved.reshape(len(moved), -1)
    return moved.mean(axis=1) / np.asarray(lr, dtype=float)


def adam_first_step(g: float | np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Adam's first step for gradient ``g``, in units of the learning rate: ``m / (sqrt(v) + eps)``
    with bias-corrected ``m = g`` and ``v = g**2``, that is ``|g| / (|g| + eps)``: about 1 when
    ``|g|`` is far above ``eps``, about ``|g| / eps`` far below it."""
    g = np.abs(np.asarray(g, dtype=float))
    return g / (g + eps)


# ---------------------------------------------------------------------------
# The walk-through as a computational graph
# ---------------------------------------------------------------------------


def chain_graph_figure(cp: ChainPass) -> Figure:
    """The chain of ``cp`` as a computational graph: ``x -> z1 -> a1 -> ... -> y_hat -> L``.

    Drawn by :func:`actlab.presentation.graph.chain_graph` from ``cp``'s own numbers: above
    each arrow the forward value of the node it leaves, below it ``dL/d`` of that node
    (``dL/dx``, ``dL/dz_k``, ``dL/da_k``, ``dL/dy_hat``; ``1`` under the loss), and each
    weight ``w_k`` entering ``z_k`` with its value and ``dL/dw_k``. The biases are left out:
    each one's gradient is the ``dL/dz_k`` below the arrow leaving ``z_k``.
    """
    from actlab.presentation.graph import Param, chain_graph

    n = len(cp.w)
    names, values, grads = ["$x$"], [cp.x], [cp.dL_dx]
    for k in range(n):
        names += [f"$z_{k + 1}$", f"$a_{k + 1}$" if k < n - 1 else r"$\hat y$"]
        values += [cp.z[k], cp.a[k]]
        grads += [cp.dL_dz[k], cp.dL_da[k]]
    names.append("$L$")
    values.append(cp.loss)
    grads.append(1.0)
    params = [Param(1 + 2 * k, f"$w_{k + 1}$", cp.w[k], cp.dL_dw[k]) for k in range(n)]
    return chain_graph(names, values, grads, params)


def first_update(result: EnsembleResult, **attrs: object) -> FirstUpdate:
    """Layer 1 at the first update of the members ``result.where(**attrs)``, from a result
    trained with the probe :func:`first_layer_weights` at epochs 0 and 1 and gradient norms
    recorded at epoch 0 (networks with one input, as in chapter 3)."""
    if 0 not in result.probes or 1 not in result.probes or result.grad_epochs[0] != 0:
        raise ValueError(
            "train with probe=first_layer_weights, probe_epochs=[0, 1] and epoch 0's norms"
        )
    idx = result.where(**attrs)
    before, after = result.probes[0][idx], result.probes[1][idx]
    width = before.shape[-1]
    lr = np.array([result.members[i].lr for i in idx])
    changed = (before != after).reshape(len(idx), -1).mean(axis=1)
    return FirstUpdate(
        gradient=per_weight_rms(result.grad_norms[0][idx], width, before.shape[1])[:, 0],
        move=step_over_lr(before, after, lr),
        changed=changed,
    )


def layer1_texts(grad_table: GradTable, depth: int, activation: str, init: str) -> dict[str, str]:
    """What the chapter and its explorer say about layer 1 of one table entry, in one wording:
    ``"gradient"``, its per-weight gradient, and ``"ratio"``, its fraction of the last hidden
    layer's (each a geometric mean over seeds with the range, :func:`gm_text`)."""
    g = grad_table[depth, activation, init]
    return {"gradient": gm_text(g[:, 0]), "ratio": gm_text(first_last_ratio(g))}
