"""Chapter 7's cost measurements: the activation's share of an MLP block's time, and the
time to reach a target loss (steps times seconds per step)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from actlab.engine.activations import LABELS
from actlab.engine.device import Stopwatch, cpu_threads, describe_device
from actlab.engine.models import activation_module

#: The activations the chapter times (registry keys): exact GELU, its tanh approximation,
#: SiLU and ReLU.
COST_ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")
#: Rows of 512 (the block's width) that the chapter times: all four activations take 1.5 to
#: 2.5 s in all on two shared cores (:func:`time_mlp_block`'s docstring).
CPU_TOKENS = 256


def _seconds(fn: Callable[[], None], device: torch.device) -> float:
    """The wall time of ``fn()`` (the Stopwatch synchronises a GPU before and after)."""
    with Stopwatch(device) as watch:
        fn()
    return watch.seconds


def time_mlp_block(
    activations: Sequence[str] = COST_ACTIVATIONS,
    *,
    tokens: int = CPU_TOKENS,
    width: int = 512,
    expansion: int = 4,
    device: torch.device | str = "cpu",
    repeats: int = 5,
    dtype: torch.dtype = torch.float32,
    warmup: int = 1,
    threads: int | str | None = "auto",
    seed: int = 0,
) -> pd.DataFrame:
    """Time an MLP block ``x -> act(x W1) W2`` (forward and backward) and its parts.

    ``x`` holds ``tokens`` rows of ``width``; the hidden layer has ``expansion x width``
    units; no biases. Three things are timed for each activation, forward and backward
    each time (the gradient of a fixed random output gradient, down to ``x`` and the
    weights):

    * "matrix products": ``(x W1) W2`` with no activation between them (the same for
      every activation: timed once per round, the same number on every row);
    * "activation": the activation alone on a hidden-sized tensor;
    * "block": the whole block.

    Everything takes turns within each repeat (one round of all of it, then the next),
    so a slow spell of the machine falls on all alike; ``warmup`` untimed rounds come
    first. Each time is the median of ``repeats``. On CUDA and MPS the device is
    synchronised around every timing (:class:`actlab.engine.device.Stopwatch`). On the CPU
    it runs with ``threads`` intra-op threads (:func:`actlab.engine.device.cpu_threads`,
    the course's policy: ``"auto"`` takes one thread per free core).

    On this course's two-core machine, ``tokens=256`` (the default) with width 512 and 4x
    expansion takes 1.5 to 2.5 s for the four activations with ``repeats=5`` (once 4.3 s,
    while other work shared the cores).

    Returns:
        one row per activation, indexed by its label
        (:data:`actlab.engine.activations.LABELS`), with the columns "matrix products s",
        "activation s", "block s" (median seconds), "activation share" (activation /
        block). The block's time less the matrix products' is not reported: the
        difference of two noisy times, it came out negative as often as not on a busy
        two-core machine. ``attrs`` holds "names" (the registry keys, in the rows'
        order), "device" (:func:`actlab.engine.device.describe_device`, with the threads
        used), "tokens", "width", "hidden", "dtype" and "repeats": :func:`timing_line`
        says them in a sentence.
    """
    device = torch.device(device)
    hidden = expansion * width
    gen = torch.Generator().manual_seed(seed)

    def tensor(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).to(device, dtype)

    x = tensor(tokens, width).requires_grad_(True)
    w1 = tensor(width, hidden, scale=width**-0.5).requires_grad_(True)
    w2 = tensor(hidden, width, scale=hidden**-0.5).requires_grad_(True)
    h = tensor(tokens, hidden).requires_grad_(True)
    grad_out, grad_hidden = tensor(tokens, width), tensor(tokens, hidden)
    leaves = (x, w1, w2, h)

    def clear() -> None:
        for leaf in leaves:
            leaf.grad = None

    def products() -> None:
        ((x @ w1) @ w2).backward(grad_out)

    def runs(module: torch.nn.Module) -> dict[str, Callable[[], None]]:
        return {
            "activation": lambda: module(h).backward(grad_hidden),
            "block": lambda: (module(x @ w1) @ w2).backward(grad_out),
        }

    modules = {name: activation_module(name) for name in activations}
    product_times: list[float] = []
    times: dict[str, dict[str, list[float]]] = {
        name: {"activation": [], "block": []} for name in activations
    }
    with cpu_threads(threads, device):
        where = describe_device(device)
        for round_ in range(warmup + repeats):
            timed = round_ >= warmup
            clear()
            seconds = _seconds(products, device)
            if timed:
                product_times.append(seconds)
            for name, module in modules.items():
                for part, fn in runs(module).items():
                    clear()
                    seconds = _seconds(fn, device)
                    if timed:
                        times[name][part].append(seconds)
    clear()
    products_s = float(np.median(product_times))
    rows = []
    for name in activations:
        med = {part: float(np.median(t)) for part, t in times[name].items()}
        block = med["block"]
        rows.append(
            {
                "activation": LABELS[name],
                "matrix products s": products_s,
                "activation s": med["activation"],
                "block s": block,
                "activation share": med["activation"] / block,
            }
        )
    table = pd.DataFrame(rows).set_index("activation")
    table.attrs.update(
        names=list(activations),
        device=where,
        tokens=tokens,
        width=width,
        hidden=hidden,
        dtype=str(dtype).removeprefix("torch."),
        repeats=repeats,
    )
    return table


def timing_line(table: pd.DataFrame) -> str:
    """The sentence that says where and at what shapes :func:`time_mlp_block` timed, e.g.
    "timed on cpu (2 threads): 256 tokens × 512 → 2048 hidden units, float32, median of 5"."""
    a = table.attrs
    return (
        f"timed on {a['device']}: {a['tokens']} tokens × {a['width']} → "
        f"{a['hidden']} hidden units, {a['dtype']}, median of {a['repeats']}"
    )


def time_to_target(
    losses: np.ndarray,
    target: float,
    seconds_per_step: float | np.ndarray,
    steps: np.ndarray | None = None,
) -> np.ndarray | float:
    """Seconds each member needs to first reach ``target`` loss: steps times seconds per step.

    Args:
        losses: ``(T,)`` or ``(T, E)`` training losses; ``losses[k]`` is the loss after
            ``steps[k]`` steps.
        target: the loss to reach (inclusive: ``loss <= target``).
        seconds_per_step: one number, or one per member (``(E,)``).
        steps: ``(T,)`` ascending step counts (default ``1, 2, ..., T``: a loss recorded
            after every step).

    Returns:
        ``(E,)`` seconds (one number for a ``(T,)`` curve): ``inf`` for a member that never
        reaches the target (non-finite losses never do).
    """
    losses = np.asarray(losses, dtype=float)
    single = losses.ndim == 1
    curves = losses[:, None] if single else losses
    steps = np.arange(1, len(curves) + 1) if steps is None else np.asarray(steps, dtype=float)
    if steps.shape != (len(curves),):
        raise ValueError(f"steps has shape {steps.shape}, expected ({len(curves)},)")
    reached = np.isfinite(curves) & (curves <= target)
    first = np.argmax(reached, axis=0)
    out = steps[first].astype(float) * np.asarray(seconds_per_step, dtype=float)
    out = np.where(reached.any(axis=0), out, np.inf)
    return float(out[0]) if single else out
