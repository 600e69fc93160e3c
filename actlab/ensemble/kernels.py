"""The ATen kernels of each activation module, and the autograd node that applies them per run.

An ensemble's members may differ in activation. Consecutive members sharing one form
a run (:class:`ActivationRun`); every run is computed with the kernels PyTorch's
autograd itself runs for the module (:func:`kernels_of`), so the outputs and
gradients are bit for bit those of the ungrouped network.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

import torch
from torch import nn

_ATEN = torch.ops.aten


class Uses(StrEnum):
    """What an activation's backward kernel reads besides the gradient."""

    OUTPUT = "y"
    """The output only, so the input need not be kept after the forward pass."""
    DERIVATIVE = "d"
    """The input, and the result is the gradient times a function of the input computed
    in the same kernel, bit for bit: ``backward(g, z) == g * backward(1, z)``. The
    hand-written step takes that derivative in the forward pass, while the input is
    still in cache, and the backward pass is one product."""
    INPUT = "z"
    """The input, in some other way."""
    NOTHING = ""
    """Neither (the identity)."""


class Kernels(NamedTuple):
    """An activation module's forward and the derivative PyTorch's autograd applies to it.

    ``forward(z, out)`` and ``backward(grad, z, y, out)`` each write into ``out``;
    ``uses`` says which of ``z`` (the input) and ``y`` (the output) the backward reads.
    """

    forward: Callable[[torch.Tensor, torch.Tensor], Any]
    backward: Callable[..., Any]
    uses: Uses


class ActivationRun(NamedTuple):
    """Members ``[start, stop)`` of an ensemble, sharing the activation ``module``."""

    start: int
    stop: int
    module: nn.Module
    kernels: Kernels | None
    """:func:`kernels_of` the module; ``None`` where it has none."""


def kernels_of(phi: nn.Module) -> Kernels | None:
    """The fused kernels of ``phi``, or ``None`` when it is not one of the known modules.

    These are the kernels autograd itself runs for the module (for Leaky ReLU with a
    non-negative slope, its form that reads the output, which takes the same branch
    everywhere), so the gradients are bit for bit those of the ungrouped network
    (tests/ensemble/test_ensemble_kernels.py checks every activation and each ``uses``).
    """
    if type(phi) is nn.Sigmoid:
        fwd = lambda z, o: torch.sigmoid(z, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.sigmoid_backward.grad_input(g, y, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.OUTPUT)
    if type(phi) is nn.Tanh:
        fwd = lambda z, o: torch.tanh(z, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.tanh_backward.grad_input(g, y, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.OUTPUT)
    if type(phi) is nn.ReLU and not phi.inplace:  # relu is clamp_min(z, 0) in ATen
        fwd = lambda z, o: torch.clamp_min(z, 0, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.threshold_backward.grad_input(g, y, 0, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.OUTPUT)
    if type(phi) is nn.LeakyReLU and not phi.inplace:
        a = phi.negative_slope
        fwd = lambda z, o: _ATEN.leaky_relu.out(z, a, out=o)  # noqa: E731
        if a >= 0:  # y > 0 exactly where z > 0

            def bwd(g, z, y, o):
                return _ATEN.leaky_relu_backward.grad_input(g, y, a, True, grad_input=o)

            return Kernels(fwd, bwd, Uses.OUTPUT)
        bwd = lambda g, z, y, o: _ATEN.leaky_relu_backward.grad_input(g, z, a, False, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.INPUT)
    if type(phi) is nn.ELU and not phi.inplace:
        a = phi.alpha
        fwd = lambda z, o: _ATEN.elu.out(z, a, 1, 1, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.elu_backward.grad_input(g, a, 1, 1, False, z, grad_input=o)  # noqa: E731
        # g * alpha * e^z groups differently where alpha is not 1
        return Kernels(fwd, bwd, Uses.DERIVATIVE if a == 1 else Uses.INPUT)
    if type(phi) is nn.GELU:
        ap = phi.approximate
        fwd = lambda z, o: _ATEN.gelu.out(z, approximate=ap, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.gelu_backward.grad_input(g, z, approximate=ap, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.DERIVATIVE)
    if type(phi) is nn.Softplus:
        b, t = phi.beta, phi.threshold
        fwd = lambda z, o: _ATEN.softplus.out(z, b, t, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.softplus_backward.grad_input(g, z, b, t, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.INPUT)
    if type(phi) is nn.SiLU and not phi.inplace:
        fwd = lambda z, o: _ATEN.silu.out(z, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.silu_backward.grad_input(g, z, grad_input=o)  # noqa: E731
        return Kernels(fwd, bwd, Uses.INPUT)
    if type(phi) is nn.Identity:
        return Kernels(lambda z, o: o.copy_(z), lambda g, z, y, o: o.copy_(g), Uses.NOTHING)
    return None


class GroupedActivation(torch.autograd.Function):
    """Each run of members ``[s, e)`` through its own activation, in one autograd node.

    Slicing the stacked pre-activations per run and concatenating the results costs,
    in the backward pass, one zero-filled tensor of the full stacked size per run and
    layer (the gradient of a slice) plus a concatenation: more time than the
    activations themselves. Here the forward writes each run's output straight into
    one tensor (the kernels' ``out=`` forms) and the backward writes each run's input
    gradient straight into another with the derivative kernel autograd would have
    used (so the gradients are exactly those of the ungrouped network): no copies, no
    autograd graph per run. An activation module without known kernels falls back to
    its own autograd graph on its slice, copied into place.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, runs: list[ActivationRun]) -> torch.Tensor:
        out = torch.empty_like(z)
        track = ctx.needs_input_grad[0]
        graphs: list[Any] = []
        for s, e, phi, kern in runs:
            if kern is not None:
                kern.forward(z[s:e], out[s:e])
                graphs.append(None)
            elif not track:  # inference (probes, plots): no graph to keep
                out[s:e] = phi(z[s:e])
            else:
                with torch.enable_grad():
                    zs = z[s:e].detach().requires_grad_(True)
                    a = phi(zs)
                out[s:e] = a.detach()
                graphs.append((zs, a))
        if track:
            ctx.runs, ctx.graphs = runs, graphs
            ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        z, y = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_z = torch.empty_like(grad_out)
        for (s, e, _, kern), graph in zip(ctx.runs, ctx.graphs, strict=True):
            if kern is not None:
                kern.backward(grad_out[s:e], z[s:e], y[s:e], grad_z[s:e])
            else:
                zs, a = graph
                (grad_z[s:e],) = torch.autograd.grad(a, zs, grad_out[s:e])
        ctx.runs = ctx.graphs = None
        return grad_z, None
