"""Batched ensemble training (introduced in chapter 3): many small MLPs trained at once.

Experiments in this course repeat one small network over seeds, activations and
learning rates. Trained one after another in a Python loop, a 64-unit network
spends most of its time in interpreter and kernel-launch overhead. Here the E
members are stacked into one model: layer ``k`` holds a weight tensor of shape
``(E, fan_in, fan_out)`` and the forward pass is one ``torch.baddbmm`` per layer
for all members together. The members' losses are summed before the backward
pass; since no parameter is shared, each member receives the gradient of its own
loss, so a member trains as it would alone, to rounding: the arithmetic is the same,
but a vectorised kernel may round a last bit differently where a member's numbers sit
at another position in the stacked tensors, and where training is chaotic (chapter
4's learning rate 0.1) that decides the run. For members without a
norm, :func:`train_ensemble` runs that forward and backward pass written out by hand
(:class:`_HandStep`: weight and bias packed in one tensor per layer, buffers kept
between steps), which the tests check against autograd and against the network alone.

Members may differ in seed, activation, learning rate, initialisation, hidden
bias and normalisation, and may train on data of their own. The
optimisers (Adam and SGD with momentum) are written for stacked tensors so that
each member can keep its own learning rate; they follow ``torch.optim``'s update
formulas step for step.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from actlab.engine.device import Stopwatch, describe_device, get_device, l2_cache_bytes
from actlab.engine.device import cpu_threads as limit_cpu_threads
from actlab.engine.models import NORMS, activation_module, init_mlp_, mlp


@dataclass(frozen=True)
class Member:
    """One network of an ensemble.

    Args:
        seed: seeds the member's initial weights (``torch.manual_seed`` before building it).
        activation: a name known to :func:`actlab.engine.models.activation_module`.
        lr: the member's learning rate.
        init: ``"default"`` (PyTorch's), ``"xavier"``, ``"he"`` or ``"normal:STD"``
            (see :func:`actlab.engine.models.init_mlp_`).
        bias: when set, every hidden layer's bias is filled with this constant after
            the init scheme (the output layer keeps its own); chapter 4's bias
            experiments.
        norm: ``"none"`` or ``"layer"`` (a LayerNorm between each hidden linear layer
            and its activation, see :func:`actlab.engine.models.mlp`).
    """

    seed: int
    activation: str = "relu"
    lr: float = 1e-3
    init: str = "default"
    bias: float | None = None
    norm: str = "none"


def members_grid(
    seeds: Iterable[int],
    activations: Sequence[str] = ("relu",),
    lrs: Sequence[float] = (1e-3,),
    inits: Sequence[str] = ("default",),
    biases: Sequence[float | None] = (None,),
    norms: Sequence[str] = ("none",),
) -> list[Member]:
    """Every combination of activation, norm, init, bias, learning rate and seed (seed fastest)."""
    seeds = list(seeds)
    return [
        Member(seed=s, activation=a, lr=lr, init=i, bias=bias, norm=n)
        for a, n, i, bias, lr, s in itertools.product(activations, norms, inits, biases, lrs, seeds)
    ]


def build_member(
    member: Member,
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """The network ``member`` describes, initialised from its seed, as a plain ``nn.Sequential``.

    This is the network an ensemble member is equal to: the ensemble copies its
    initial weights from here.
    """
    torch.manual_seed(member.seed)
    net = mlp(in_dim, width, depth, out_dim, activation=member.activation, norm=member.norm)
    init_mlp_(net, member.init)
    if member.bias is not None:
        with torch.no_grad():
            for layer in [m for m in net if isinstance(m, nn.Linear)][:-1]:
                layer.bias.fill_(member.bias)
    return net.to(dtype)


_ATEN = torch.ops.aten

# An activation module's forward and the derivative PyTorch's autograd applies to it,
# as ``(forward(z, out), backward(grad, z, y, out), uses)``: each writes into ``out``,
# and ``uses`` says what the backward reads:
#
# * ``"y"``: the output only, so the input need not be kept after the forward pass;
# * ``"d"``: the input, and the result is the gradient times a function of the input
#   computed in the same kernel, bit for bit: ``backward(g, z) == g * backward(1, z)``.
#   The hand-written step takes that derivative in the forward pass, while the input
#   is still in cache, and the backward pass is one product;
# * ``"z"``: the input, in some other way;
# * ``""``: neither (the identity).
#
# These are the kernels autograd itself runs for the module (for Leaky ReLU with a
# non-negative slope, its form that reads the output, which takes the same branch
# everywhere), so the gradients are bit for bit those of the ungrouped network
# (tests/test_ensemble.py checks every activation and each ``uses``).
_Kernels = tuple[Callable[..., Any], Callable[..., Any], str]


def _kernels(phi: nn.Module) -> _Kernels | None:
    """The fused kernels of ``phi``, or ``None`` when it is not one of the known modules."""
    if type(phi) is nn.Sigmoid:
        fwd = lambda z, o: torch.sigmoid(z, out=o)  # noqa: E731
        return fwd, lambda g, z, y, o: _ATEN.sigmoid_backward.grad_input(g, y, grad_input=o), "y"
    if type(phi) is nn.Tanh:
        fwd = lambda z, o: torch.tanh(z, out=o)  # noqa: E731
        return fwd, lambda g, z, y, o: _ATEN.tanh_backward.grad_input(g, y, grad_input=o), "y"
    if type(phi) is nn.ReLU and not phi.inplace:  # relu is clamp_min(z, 0) in ATen
        fwd = lambda z, o: torch.clamp_min(z, 0, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.threshold_backward.grad_input(g, y, 0, grad_input=o)  # noqa: E731
        return fwd, bwd, "y"
    if type(phi) is nn.LeakyReLU and not phi.inplace:
        a = phi.negative_slope
        fwd = lambda z, o: _ATEN.leaky_relu.out(z, a, out=o)  # noqa: E731
        if a >= 0:  # y > 0 exactly where z > 0

            def bwd(g, z, y, o):
                return _ATEN.leaky_relu_backward.grad_input(g, y, a, True, grad_input=o)

            return fwd, bwd, "y"
        bwd = lambda g, z, y, o: _ATEN.leaky_relu_backward.grad_input(g, z, a, False, grad_input=o)  # noqa: E731
        return fwd, bwd, "z"
    if type(phi) is nn.ELU and not phi.inplace:
        a = phi.alpha
        fwd = lambda z, o: _ATEN.elu.out(z, a, 1, 1, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.elu_backward.grad_input(g, a, 1, 1, False, z, grad_input=o)  # noqa: E731
        return fwd, bwd, "d" if a == 1 else "z"  # g * alpha * e^z groups differently
    if type(phi) is nn.GELU:
        ap = phi.approximate
        fwd = lambda z, o: _ATEN.gelu.out(z, approximate=ap, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.gelu_backward.grad_input(g, z, approximate=ap, grad_input=o)  # noqa: E731
        return fwd, bwd, "d"
    if type(phi) is nn.Softplus:
        b, t = phi.beta, phi.threshold
        fwd = lambda z, o: _ATEN.softplus.out(z, b, t, out=o)  # noqa: E731
        bwd = lambda g, z, y, o: _ATEN.softplus_backward.grad_input(g, z, b, t, grad_input=o)  # noqa: E731
        return fwd, bwd, "z"
    if type(phi) is nn.SiLU and not phi.inplace:
        fwd = lambda z, o: _ATEN.silu.out(z, out=o)  # noqa: E731
        return fwd, lambda g, z, y, o: _ATEN.silu_backward.grad_input(g, z, grad_input=o), "z"
    if type(phi) is nn.Identity:
        return (lambda z, o: o.copy_(z)), (lambda g, z, y, o: o.copy_(g)), ""
    return None


class _GroupedActivation(torch.autograd.Function):
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
    def forward(ctx, z: torch.Tensor, runs: list[tuple[int, int, nn.Module, Any]]) -> torch.Tensor:
        out = torch.empty_like(z)
        track = ctx.needs_input_grad[0]
        graphs: list[Any] = []
        for s, e, phi, kern in runs:
            if kern is not None:
                kern[0](z[s:e], out[s:e])
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
                kern[1](grad_out[s:e], z[s:e], y[s:e], grad_z[s:e])
            else:
                zs, a = graph
                (grad_z[s:e],) = torch.autograd.grad(a, zs, grad_out[s:e])
        ctx.runs = ctx.graphs = None
        return grad_z, None


class EnsembleMLP(nn.Module):
    """E multilayer perceptrons of one shape with stacked weights.

    Layer ``k`` has ``weights[k]`` of shape ``(E, fan_in, fan_out)`` (the transpose
    of ``nn.Linear.weight``, so that ``h @ W`` needs no transposition) and
    ``biases[k]`` of shape ``(E, 1, fan_out)``. When any member uses ``norm="layer"``,
    hidden layer ``k`` also has ``norm_weights[k]`` and ``norm_biases[k]`` of shape
    ``(E, 1, width)``: the LayerNorm's affine parameters (unused, and so never
    updated, for the members without a norm).
    """

    def __init__(
        self,
        members: Sequence[Member],
        in_dim: int,
        width: int,
        depth: int,
        out_dim: int,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        for m in members:
            if m.norm not in NORMS:
                raise ValueError(f"unknown norm {m.norm!r}; use one of {NORMS}")
        self.members = list(members)
        self.shape = (in_dim, width, depth, out_dim)
        nets = [build_member(m, in_dim, width, depth, out_dim, dtype) for m in self.members]
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.weights = nn.ParameterList(
            nn.Parameter(
                torch.stack([layers[k].weight.detach().T for layers in linears]).contiguous()
            )
            for k in range(depth + 1)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[k].bias.detach()[None, :] for layers in linears]))
            for k in range(depth + 1)
        )
        norms = [[m for m in net if isinstance(m, nn.LayerNorm)] for net in nets]
        uses_norm = [m.norm == "layer" for m in self.members]
        self.norm_weights = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        mask = None if all(uses_norm) else torch.tensor(uses_norm).view(-1, 1, 1)
        self.register_buffer("_norm_mask", mask)
        if any(uses_norm):
            ones = torch.ones(1, width, dtype=dtype)
            for k in range(depth):
                self.norm_weights.append(
                    nn.Parameter(
                        torch.stack(
                            [ln[k].weight.detach()[None] if ln else ones for ln in norms]
                        ).contiguous()
                    )
                )
                self.norm_biases.append(
                    nn.Parameter(
                        torch.stack(
                            [ln[k].bias.detach()[None] if ln else 0 * ones for ln in norms]
                        ).contiguous()
                    )
                )
        # Runs of consecutive members sharing an activation: one call per run.
        self._runs: list[tuple[int, int, nn.Module, Any]] = []
        for name, group in itertools.groupby(
            enumerate(m.activation for m in self.members), key=lambda t: t[1]
        ):
            idx = [i for i, _ in group]
            phi = activation_module(name)
            self._runs.append((idx[0], idx[-1] + 1, phi, _kernels(phi)))

    @property
    def activation_runs(self) -> list[tuple[int, int, str]]:
        """``(start, stop, activation)`` for each run of consecutive members sharing an activation."""
        return [(s, e, self.members[s].activation) for s, e, _, _ in self._runs]

    @property
    def size(self) -> int:
        """Number of members E."""
        return len(self.members)

    @property
    def n_layers(self) -> int:
        """Number of linear layers (hidden layers + output layer)."""
        return len(self.weights)

    @property
    def params(self) -> list[nn.Parameter]:
        """Every trained tensor: weights, biases, then the norms' affine parameters."""
        return [*self.weights, *self.biases, *self.norm_weights, *self.norm_biases]

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if len(self._runs) == 1:
            return self._runs[0][2](z)
        return _GroupedActivation.apply(z, self._runs)

    def _norm(self, k: int, z: torch.Tensor) -> torch.Tensor:
        if not len(self.norm_weights):
            return z
        normed = torch.addcmul(
            self.norm_biases[k], F.layer_norm(z, z.shape[-1:]), self.norm_weights[k]
        )
        return normed if self._norm_mask is None else torch.where(self._norm_mask, normed, z)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Outputs, pre-activations and hidden activations of every member.

        Args:
            x: inputs ``(N, in_dim)`` shared by all members, or ``(E, N, in_dim)``.

        Returns:
            ``(out, pre, hidden)``: ``out`` of shape ``(E, N, out_dim)``; ``pre[k]`` the
            input of hidden layer ``k``'s activation (after its norm, if any) and
            ``hidden[k]`` its output, each ``(E, N, width)``; layer 0 nearest the input.
        """
        h = x.expand(self.size, *x.shape) if x.dim() == 2 else x
        pre, hidden = [], []
        for k in range(self.n_layers - 1):
            z = self._norm(k, torch.baddbmm(self.biases[k], h, self.weights[k]))
            h = self._act(z)
            pre.append(z)
            hidden.append(h)
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return out, pre, hidden

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """Outputs of every member, shape ``(E, N, out_dim)``.

        Args:
            x: inputs ``(N, in_dim)`` shared by all members, or ``(E, N, in_dim)``.
            return_hidden: also return the list of hidden activations, each ``(E, N, width)``.
        """
        out, _, hidden = self.trace(x)
        return (out, hidden) if return_hidden else out

    @torch.no_grad()
    def member_module(self, i: int) -> nn.Sequential:
        """Member ``i`` with its current weights, as a plain ``nn.Sequential`` on the CPU."""
        in_dim, width, depth, out_dim = self.shape
        member = self.members[i]
        net = mlp(in_dim, width, depth, out_dim, activation=member.activation, norm=member.norm)
        net = net.to(self.weights[0].dtype)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for k, layer in enumerate(linears):
            layer.weight.copy_(self.weights[k][i].T.cpu())
            layer.bias.copy_(self.biases[k][i, 0].cpu())
        for k, ln in enumerate(m for m in net if isinstance(m, nn.LayerNorm)):
            ln.weight.copy_(self.norm_weights[k][i, 0].cpu())
            ln.bias.copy_(self.norm_biases[k][i, 0].cpu())
        return net


class _StackedOptimizer:
    """Adam or SGD over stacked parameters, with one learning rate per member (leading dim).

    On the CPU and on CUDA the update is PyTorch's fused kernel (``torch._fused_adam_``,
    ``torch._fused_sgd_``: one pass over each tensor, the whole arithmetic of the step
    in it), called once per distinct learning rate on the runs of members that share
    it; elsewhere (and when ``fused=False``) it is a few ``torch._foreach_*`` calls over
    all stacked tensors with the per-member learning rates broadcast. Both follow
    ``torch.optim``'s update formulas step for step.
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        lrs: torch.Tensor,
        kind: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.0,
        fused: bool | None = None,
    ) -> None:
        if kind not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {kind!r}; use 'adam' or 'sgd'")
        if lrs.dim() != 1 or any(p.shape[0] != lrs.shape[0] for p in params):
            raise ValueError("lrs needs one learning rate per member (the leading dim)")
        self.params, self.kind = params, kind
        self.lrs = [lrs.view(-1, *([1] * (p.dim() - 1))) for p in params]
        self.betas, self.eps, self.momentum = betas, eps, momentum
        self.t = 0
        self.state: list[list[torch.Tensor]] = [[] for _ in params]
        device = params[0].device if params else torch.device("cpu")
        self.fused = device.type in ("cpu", "cuda") if fused is None else fused
        # Runs of consecutive members with one learning rate, gathered per rate.
        self.lr_runs: dict[float, list[tuple[int, int]]] = {}
        for lr, group in itertools.groupby(enumerate(lrs.tolist()), key=lambda t: t[1]):
            idx = [i for i, _ in group]
            self.lr_runs.setdefault(float(lr), []).append((idx[0], idx[-1] + 1))
        self._step_t = torch.zeros((), dtype=torch.float32, device=device)

    def _views(
        self, tensors: list[torch.Tensor], runs: list[tuple[int, int]]
    ) -> list[torch.Tensor]:
        if len(runs) == 1 and runs[0] == (0, tensors[0].shape[0]):
            return tensors
        return [t[s:e] for t in tensors for s, e in runs]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError("every stacked parameter needs a gradient before step()")
        grads = [p.grad for p in params]
        if self.kind == "adam" and not self.state[0]:
            for st, p in zip(self.state, params, strict=True):
                st += [torch.zeros_like(p), torch.zeros_like(p)]
        if self.kind == "sgd" and self.momentum and not self.state[0]:
            first = True
            for st, p in zip(self.state, params, strict=True):
                st.append(torch.empty_like(p))
        else:
            first = False
        if self.fused:
            self._fused_step(params, grads, first)
        else:
            self._foreach_step(params, grads, first)

    def _fused_step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], first: bool
    ) -> None:
        self._step_t.fill_(self.t)
        b1, b2 = self.betas
        for lr, runs in self.lr_runs.items():
            ps, gs = self._views(params, runs), self._views(grads, runs)
            if self.kind == "adam":
                m = self._views([st[0] for st in self.state], runs)
                v = self._views([st[1] for st in self.state], runs)
                torch._fused_adam_(
                    ps, gs, m, v, [], [self._step_t] * len(ps), lr=lr, beta1=b1, beta2=b2,
                    weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False,
                )  # fmt: skip
            else:
                bufs = self._views([st[0] for st in self.state], runs) if self.momentum else []
                torch._fused_sgd_(
                    ps, gs, bufs, weight_decay=0.0, momentum=self.momentum, lr=lr,
                    dampening=0.0, nesterov=False, maximize=False, is_first_step=first,
                )  # fmt: skip

    def _foreach_step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], first: bool
    ) -> None:
        # One foreach call per arithmetic step over all stacked tensors instead of a
        # handful of calls per tensor; the per-member learning rates broadcast.
        if self.kind == "sgd":
            if self.momentum:
                bufs = [st[0] for st in self.state]
                if first:
                    torch._foreach_copy_(bufs, grads)
                else:
                    torch._foreach_mul_(bufs, self.momentum)
                    torch._foreach_add_(bufs, grads)
                grads = bufs
            torch._foreach_sub_(params, torch._foreach_mul(grads, self.lrs))
            return
        b1, b2 = self.betas
        m = [st[0] for st in self.state]
        v = [st[1] for st in self.state]
        # Same arithmetic as torch.optim.Adam's update.
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        bc1 = 1 - b1**self.t
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, self.lr_over_bc(bc1))
        torch._foreach_sub_(params, update)

    def lr_over_bc(self, bc1: float) -> list[torch.Tensor]:
        """Each parameter's per-member learning rate divided by Adam's bias correction."""
        return [lr / bc1 for lr in self.lrs]


# A core's level-2 cache where the system does not say (1 to 2 MiB is common).
_L2_UNKNOWN = 1 << 20


class _HandStep:
    """A training step's forward and backward pass written out, into buffers kept between steps.

    Autograd records a graph node per operation and allocates every intermediate anew at
    each step; for chapter 3's small networks that bookkeeping, the copies it implies and
    cache-cold fresh memory cost more than the activations themselves. Here:

    * each layer's weight and bias are one tensor ``(E, fan_in + 1, fan_out)``, the bias
      its last row, and each hidden activation is stored with a column of ones after it,
      so a single ``bmm`` computes a layer with its bias, and a single ``bmm`` its weight
      and bias gradients together (no broadcast copy of the bias, no sum for its
      gradient). The model's ``weights[k]`` and ``biases[k]`` become views of these
      tensors, so they always hold the trained values;
    * every run of members sharing an activation is computed by the kernels autograd
      would use for it (see :func:`_kernels`), on views of the layer's buffers that are
      sliced once, and its derivative is applied in place. Float32 GELU goes to
      oneDNN, which leaves a strided ``out`` unwritten, so it runs in place in a
      contiguous scratch tensor and is copied beside the column of ones.
      The activations then equal the module's bit for bit where a row of a layer
      (its width) is a whole number of the CPU's vector loop, e.g. 64; in narrower
      or ragged rows the last elements take a kernel's scalar path, equal to
      rounding (tests/test_ensemble.py checks both);
    * the loss's gradient with respect to the outputs (a tensor of ``E x N x out_dim``
      numbers) is written out for the mean squared error and left to autograd for the
      other losses of :func:`_loss_per_member` (see :func:`_loss_and_grad`);
    * on the CPU the members go through the step in chunks that fit the cache
      (:meth:`members_per_chunk`; ``chunk`` fixes the number), the whole forward and
      backward pass of one chunk before the next. Where no run of an activation is cut
      between chunks, each member's numbers are those of the unchunked step bit for bit
      (tested); a run cut into pieces can round differently in a piece's last
      elements, as in an ensemble of another make-up.

    Only for members without a norm whose activations all have kernels (every
    activation of the course); :func:`train_ensemble` uses autograd otherwise.
    """

    def __init__(self, model: EnsembleMLP, chunk: int | None = None) -> None:
        if not self.supports(model):
            raise ValueError("the hand-written step needs members without norms and known kernels")
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be a positive number of members, got {chunk}")
        self.model, self.chunk = model, chunk
        self.layers: list[torch.Tensor] = []
        with torch.no_grad():
            for W, b in zip(model.weights, model.biases, strict=True):
                packed = torch.cat([W.detach(), b.detach()], dim=1)
                W.data, b.data = packed[:, :-1], packed[:, -1:]
                packed.grad = torch.zeros_like(packed)  # written by every backward pass
                self.layers.append(packed)
        # The transposed weights (without the bias row) that carry gradients down.
        self._weights_t = [p[:, :-1].transpose(1, 2) for p in self.layers]
        self._buffers: dict[int, dict[str, Any]] = {}

    @staticmethod
    def supports(model: EnsembleMLP) -> bool:
        """Whether ``model`` can be trained by this step (no norms, every activation has kernels)."""
        return not len(model.norm_weights) and all(r[3] is not None for r in model._runs)

    @property
    def weight_grads(self) -> list[torch.Tensor]:
        """The last backward pass's weight gradients, ``(E, fan_in, fan_out)`` per layer (views)."""
        return [p.grad[:, :-1] for p in self.layers]

    def members_per_chunk(self, n: int, device: torch.device) -> int:
        """How many members one pass of the step takes at a time, on batches of ``n`` examples.

        On the CPU, as many as fit one layer's work for them in a core's level-2 cache
        (:func:`actlab.engine.device.l2_cache_bytes`): per member, that layer's input, output
        and gradient and its weights and their gradient, for the layer with the most of
        them. One core's cache whatever the thread count, so that the chunks, and with
        them the numbers, do not depend on it. On other devices, every member; where the
        step was given ``chunk``, that many.
        """
        if self.chunk is not None:
            return self.chunk
        if device.type != "cpu":
            return self.model.size
        budget = l2_cache_bytes() or _L2_UNKNOWN
        itemsize = self.layers[0].element_size()
        per_member = max(
            itemsize * (n * fan_in1 + n * (fan_out + 1) + n * fan_out + 2 * fan_in1 * fan_out)
            for _, fan_in1, fan_out in (p.shape for p in self.layers)
        )
        return max(1, min(self.model.size, budget // per_member))

    def _buffers_for(self, n: int, x: torch.Tensor) -> dict[str, Any]:
        """The buffers of a step on ``n`` examples, and each chunk's calls bound to them.

        The members are taken in chunks (:func:`chunk_members`, at most
        :meth:`members_per_chunk` each), one after the other: forward, loss and backward
        of one chunk, then the next, in buffers sized for the largest chunk that every
        chunk reuses. A layer's work for a chunk then stays in cache from its product to
        its activation, and from the backward products to the derivative.

        Each layer's product goes straight into that layer's activation buffer (beside
        its column of ones), and every activation is applied there in place while the
        buffer is still in cache. Only what the backward pass reads is kept besides:
        for the runs whose derivative reads the input, that derivative (``uses ==
        "d"``) or a copy of the input (``"z"``). A ``"d"`` run takes a round trip
        through a contiguous scratch tensor that every layer reuses, in cache too: its
        kernels then see memory laid out as in the ungrouped network (float32 GELU
        goes to oneDNN, which would read a strided input otherwise than the module's
        and leaves a strided output unwritten).
        """
        bufs = self._buffers.get(n)
        if bufs is not None:
            return bufs
        hidden = len(self.layers) - 1
        in_dim, width, out_dim = self.model.shape[0], self.model.shape[1], self.model.shape[3]
        runs = [(s, e, kern) for s, e, _, kern in self.model._runs]
        spans = chunk_members([(s, e) for s, e, _ in runs], self.members_per_chunk(n, x.device))
        # Each chunk's runs, numbered from the chunk's first member.
        local = [
            [(max(s, c0) - c0, min(e, c1) - c0, kern) for s, e, kern in runs if s < c1 and e > c0]
            for c0, c1 in spans
        ]
        M = max(c1 - c0 for c0, c1 in spans)
        kept_rows = max(sum(e - s for s, e, k in rl if k[2] in ("d", "z")) for rl in local)
        longest = max((e - s for rl in local for s, e, k in rl if k[2] == "d"), default=0)
        kw = dict(dtype=x.dtype, device=x.device)
        x1 = torch.ones(M, n, in_dim + 1, **kw)  # the input, with its column of ones
        a = [torch.ones(M, n, width + 1, **kw) for _ in range(hidden)]  # ones column kept
        g = [torch.empty(M, n, width, **kw) for _ in range(2)]
        kept = [torch.empty(kept_rows, n, width, **kw) for _ in range(hidden)]
        z = torch.empty(longest, n, width, **kw)  # the scratch of the "d" runs
        ones = torch.ones_like(z)  # the gradient a "d" derivative is taken of
        out = torch.empty(M, n, out_dim, **kw)
        chunks = []
        for (c0, c1), chunk_runs in zip(spans, local, strict=True):
            C = c1 - c0
            layers = [p[c0:c1] for p in self.layers]
            xc, ac, oc = x1[:C], [t[:C] for t in a], out[:C]
            fwd: list[list[Callable[[], Any]]] = []
            bwd: list[list[Callable[[], Any]]] = []
            for k in range(hidden):
                h, y, gk = xc if k == 0 else ac[k - 1], ac[k][..., :-1], g[(k + 1) % 2][:C]
                fwd.append([functools.partial(torch.bmm, h, layers[k], out=y)])
                bwd.append([])  # layer k + 1's backward writes g[(k + 1) % 2]
                row = 0  # the next free row of kept[k]
                for s, e, (forward, backward, uses) in chunk_runs:
                    ys, gs = y[s:e], gk[s:e]  # views: the whole tensors for one run
                    if uses in ("d", "z"):
                        kept_s, row = kept[k][row : row + e - s], row + e - s
                    if uses == "d":  # the derivative, taken now; the backward is a product
                        zs = z[: e - s]
                        fwd[k] += [
                            functools.partial(zs.copy_, ys),
                            functools.partial(backward, ones[: e - s], zs, None, kept_s),
                            functools.partial(forward, zs, zs),
                            functools.partial(ys.copy_, zs),
                        ]  # fmt: skip
                        bwd[k].append(functools.partial(torch.mul, gs, kept_s, out=gs))
                        continue
                    if uses == "z":  # the input, kept
                        fwd[k].append(functools.partial(kept_s.copy_, ys))
                        bwd[k].append(functools.partial(backward, gs, kept_s, ys, gs))
                    else:  # reads the output, or nothing
                        bwd[k].append(functools.partial(backward, gs, None, ys, gs))
                    if uses:  # the identity in place is nothing to do
                        fwd[k].append(functools.partial(forward, ys, ys))
            chunks.append({
                "span": (c0, c1), "x1": xc, "fwd": fwd, "bwd": bwd, "out": oc,
                "layers": layers, "grads": [p.grad[c0:c1] for p in self.layers],
                "weights_t": [w[c0:c1] for w in self._weights_t],
                "a_t": [t.transpose(1, 2) for t in ac], "g": [t[:C] for t in g],
                "last": ac[-1] if hidden else xc,
            })  # fmt: skip
        bufs = {"x1": x1, "a": a, "g": g, "kept": kept, "z": z, "ones": ones, "out": out}
        bufs["chunks"] = chunks
        self._buffers[n] = bufs
        return bufs

    def __call__(self, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
        """Forward and backward pass on ``(x, y)``: fills every ``layers[k].grad``.

        ``x`` is ``(n, in_dim)`` or ``(E, n, in_dim)`` (one set per member), ``y`` the
        targets of :func:`_loss_per_member`, likewise shared or one set per member.

        Returns:
            The loss of each member, shape ``(E,)``, before the update.
        """
        bufs = self._buffers_for(x.shape[-2], x)
        x_each = x.dim() == _shared_dims("X", loss) + 1  # one set per member
        y_each = y.dim() == _shared_dims("y", loss) + 1
        losses = []
        with torch.no_grad():
            for c in bufs["chunks"]:
                c0, c1 = c["span"]
                c["x1"][..., :-1].copy_(x[c0:c1] if x_each else x)
                for calls in c["fwd"]:
                    for call in calls:
                        call()
                layers, grads = c["layers"], c["grads"]
                torch.bmm(c["last"], layers[-1], out=c["out"])
                per_member, g = _loss_and_grad(c["out"], y[c0:c1] if y_each else y, loss)
                losses.append(per_member)
                for k in range(len(layers) - 1, 0, -1):
                    torch.bmm(c["a_t"][k - 1], g, out=grads[k])
                    g_below = c["g"][k % 2]
                    torch.bmm(g, c["weights_t"][k], out=g_below)
                    for call in c["bwd"][k - 1]:
                        call()  # the activation's derivative, in place
                    g = g_below
                torch.bmm(c["x1"].transpose(1, 2), g, out=grads[0])
        return losses[0] if len(losses) == 1 else torch.cat(losses)


def chunk_members(runs: Sequence[tuple[int, int]], most: int) -> list[tuple[int, int]]:
    """Consecutive ranges of members, of at most ``most`` each, covering ``runs`` in order.

    ``runs`` are the ranges ``[s, e)`` of members that share an activation, in order and
    without gaps. A run longer than ``most`` is cut into pieces of nearly equal size;
    then neighbouring runs and pieces share a range while it holds at most ``most``
    members. So a run is cut only where it must be: each piece of a run is one more call
    per layer for each of its kernels.

    A range of one member, where there are more, joins its neighbour even beyond
    ``most``: a batch of one matrix takes another product kernel than a batch of
    several, one that rounds differently. Where every chunk holds two members or more
    and no run is cut, a member's numbers do not depend on the chunks, bit for bit.
    """
    if most < 1:
        raise ValueError(f"a chunk needs at least one member, got {most}")
    pieces = []
    for s, e in runs:
        k = -(-(e - s) // most)  # the fewest pieces of at most `most`
        cuts = [s + (e - s) * i // k for i in range(k + 1)]
        pieces += zip(cuts, cuts[1:])
    spans: list[tuple[int, int]] = []
    for s, e in pieces:
        if spans and e - spans[-1][0] <= most:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    size = lambda i: spans[i][1] - spans[i][0]  # noqa: E731
    while len(spans) > 1 and (lone := [i for i in range(len(spans)) if size(i) == 1]):
        i = lone[0]
        if i == 0 or i < len(spans) - 1 and size(i + 1) < size(i - 1):
            j = i + 1  # join the smaller neighbour
        else:
            j = i - 1
        lo, hi = min(i, j), max(i, j)
        spans[lo : hi + 1] = [(spans[lo][0], spans[hi][1])]
    return spans


@dataclass
class EnsembleResult:
    """What :func:`train_ensemble` measured.

    Attributes:
        members: the members, in the order of every member axis below.
        losses: training loss per epoch and member, shape ``(num_epochs, E)``; the
            mean loss of the epoch's steps, computed before each step's update.
        grad_epochs: the epochs at which gradient norms were recorded.
        grad_norms: Frobenius norm of each linear layer's weight gradient, shape
            ``(len(grad_epochs), E, n_layers)``, layer 0 nearest the input; taken
            at the first step of the epoch (before its update), so epoch 0 is the
            gradient at initialisation.
        model: the trained ensemble.
        seconds: wall time of the training loop (probes included).
        device: where it ran, in words.
        probes: what the ``probe`` of :func:`train_ensemble` returned, by epoch (the
            weights after that many epochs of updates; 0 is the initialisation).
    """

    members: list[Member]
    losses: np.ndarray
    grad_epochs: np.ndarray
    grad_norms: np.ndarray
    model: EnsembleMLP
    seconds: float
    device: str
    probes: dict[int, Any] = field(default_factory=dict)

    def where(self, **attrs: object) -> np.ndarray:
        """Indices of the members whose fields equal ``attrs``, e.g. ``where(activation="relu")``."""
        return np.array(
            [
                i
                for i, m in enumerate(self.members)
                if all(getattr(m, k) == v for k, v in attrs.items())
            ],
            dtype=int,
        )


def _squared_error(diff: torch.Tensor) -> torch.Tensor:
    """Each member's mean squared error from ``out - y``, shape ``(E,)``."""
    return (diff**2).mean(dim=(1, 2))


def _loss_per_member(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return _squared_error(out - y)
    if loss == "ce":
        E, N, C = out.shape
        target = y.repeat(E) if y.dim() == 1 else y.reshape(E * N)
        per = F.cross_entropy(out.reshape(E * N, C), target, reduction="none")
        return per.view(E, N).mean(dim=1)
    raise ValueError(f"unknown loss {loss!r}; use 'mse' or 'ce'")


def _shared_dims(name: str, loss: str) -> int:
    """The dims of inputs (``name == "X"``) or targets (``"y"``) shared by every member:
    ``(N, in_dim)``, ``(N, out_dim)`` for ``"mse"``, class indices ``(N,)`` for ``"ce"``.
    One set per member has one dim more in front, ``E``."""
    return 2 if name == "X" or loss != "ce" else 1


def _loss_and_grad(
    out: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's loss, shape ``(E,)``, and the gradient of their sum with respect to ``out``.

    For the mean squared error the gradient is written out: ``(out - y) * (2 / n)``
    with ``n`` the numbers per member, which is bit for bit what autograd computes
    (tests/test_ensemble.py checks it); other losses go through autograd.
    """
    if loss == "mse":
        diff = out - y
        per_member = _squared_error(diff)
        return per_member, diff.mul_(2.0 / (out.shape[1] * out.shape[2]))
    with torch.enable_grad():
        out = out.detach().requires_grad_(True)
        per_member = _loss_per_member(out, y, loss)
        (grad,) = torch.autograd.grad(per_member.sum(), out)
    return per_member.detach(), grad


def epoch_batches(
    n: int, batch_size: int | None, epoch: int, data_seed: int
) -> list[torch.Tensor] | None:
    """Index batches of one epoch (``None`` for full batch); the same for every member.

    The order is drawn from ``data_seed`` and the epoch number, so a network trained
    alone with the same arguments sees the same batches.
    """
    if batch_size is None or batch_size >= n:
        return None
    gen = torch.Generator().manual_seed(data_seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


Probe = Callable[["EnsembleMLP", torch.Tensor], Any]


class _Trainer:
    """The steps of :func:`train_ensemble`: gradients, then the optimiser's update.

    The gradients come from :class:`_HandStep` where it applies (members without norms)
    and from autograd otherwise; both give each member the gradient of its own loss.
    """

    def __init__(
        self,
        model: EnsembleMLP,
        lrs: torch.Tensor,
        optimizer: str = "adam",
        momentum: float = 0.0,
        loss: str = "mse",
    ) -> None:
        self.model, self.loss = model, loss
        self.hand = _HandStep(model) if _HandStep.supports(model) else None
        params = self.hand.layers if self.hand is not None else model.params
        self.opt = _StackedOptimizer(params, lrs, kind=optimizer, momentum=momentum)

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Every parameter's gradient on ``(x, y)``; returns each member's loss, shape ``(E,)``."""
        if self.hand is not None:
            return self.hand(x, y, self.loss)
        for p in self.model.params:
            p.grad = None
        per_member = _loss_per_member(self.model(x), y, self.loss)
        per_member.sum().backward()
        return per_member.detach()

    @torch.no_grad()
    def weight_grad_norms(self) -> torch.Tensor:
        """Frobenius norm of each layer's weight gradient, shape ``(E, n_layers)``."""
        if self.hand is not None:
            grads = self.hand.weight_grads
        else:
            grads = [w.grad for w in self.model.weights]
        return torch.stack([torch.linalg.vector_norm(g, dim=(1, 2)) for g in grads], dim=1)

    def update(self) -> None:
        """One step of the optimiser with the gradients of the last :meth:`gradients`."""
        self.opt.step()


def _run_epochs(
    trainer: _Trainer,
    X_t: torch.Tensor,
    y_t: torch.Tensor,
    batch_size: int | None,
    data_seed: int,
    num_epochs: int,
    progress: bool,
    losses: torch.Tensor,
    norms: torch.Tensor,
    slot: dict[int, int],
    probe: Probe | None = None,
    probe_at: frozenset[int] = frozenset(),
    probes: dict[int, Any] | None = None,
) -> None:
    """The epochs of :func:`train_ensemble`; fills ``losses``, ``norms`` and ``probes`` in place."""
    model = trainer.model
    E, device = model.size, X_t.device
    n = X_t.shape[-2]
    # The example axis: the one before the features, or the last one of class labels.
    y_axis = y_t.dim() - (1 if trainer.loss == "ce" else 2)

    def run_probe(epoch: int) -> None:
        if probe is not None and epoch in probe_at and probes is not None:
            with torch.no_grad():
                probes[epoch] = probe(model, X_t)

    for epoch in tqdm(range(num_epochs), disable=not progress, desc=f"{E} nets", leave=False):
        run_probe(epoch)
        batches = epoch_batches(n, batch_size, epoch, data_seed)
        for b, idx in enumerate(batches if batches is not None else [None]):
            if idx is None:
                xb, yb = X_t, y_t
            else:
                idx = idx.to(device)
                xb, yb = X_t.index_select(X_t.dim() - 2, idx), y_t.index_select(y_axis, idx)
            per_member = trainer.gradients(xb, yb)
            losses[epoch] += per_member
            if b == 0 and epoch in slot:
                norms[slot[epoch]] = trainer.weight_grad_norms()
            trainer.update()
        if batches is not None:
            losses[epoch] /= len(batches)
    run_probe(num_epochs)


def train_ensemble(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    num_epochs: int,
    optimizer: str = "adam",
    loss: str = "mse",
    batch_size: int | None = None,
    momentum: float = 0.0,
    grad_epochs: Iterable[int] | None = None,
    data_seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    cpu_threads: int | str | None = "auto",
    probe: Probe | None = None,
    probe_epochs: Iterable[int] = (),
) -> EnsembleResult:
    """Train every member on ``(X, y)`` at once and record losses and per-layer gradient norms.

    Args:
        members: the networks to train (see :class:`Member`, :func:`members_grid`).
        X: inputs ``(N, in_dim)`` shared by every member, or ``(E, N, in_dim)``, one set
            per member.
        y: targets ``(N, out_dim)`` (or ``(E, N, out_dim)``, one set per member) for
            ``loss="mse"``; class indices ``(N,)`` (or ``(E, N)``) for ``"ce"``.
        depth, width: hidden layers and units per hidden layer.
        num_epochs: passes over the data.
        optimizer: ``"adam"`` (default betas) or ``"sgd"`` (with ``momentum``).
        loss: ``"mse"`` (mean squared error) or ``"ce"`` (cross-entropy on logits).
        batch_size: ``None`` for full-batch steps (one step per epoch).
        grad_epochs: epochs at which to record gradient norms (default: every epoch).
        data_seed: seeds the batch order when ``batch_size`` is set.
        device: defaults to :func:`actlab.engine.device.get_device`.
        dtype: parameter dtype (``torch.float64`` for exact comparisons in tests).
        progress: show a tqdm progress bar.
        cpu_threads: intra-op threads while training on the CPU (restored afterwards,
            see :func:`actlab.engine.device.cpu_threads`): a number, ``"auto"`` (the default:
            one thread per usable core that other work is not already using, from the
            process's CPU affinity and the machine's load, see
            :func:`actlab.engine.device.auto_threads`) or ``None`` to leave PyTorch's setting
            alone. Busy cores get no thread: when the cores are busy with other work,
            OpenMP threads waiting for each other made training 5 to 10 times slower in
            our measurements (benchmarks/ENSEMBLE.md). The results do not depend on it:
            a step's kernels give the same numbers on one thread or several.
        probe: ``probe(model, X)`` is called under ``torch.no_grad()`` at the start of each
            epoch in ``probe_epochs`` (the weights after that many epochs of updates) and,
            for ``num_epochs`` itself, after training; what it returns is kept in
            ``result.probes[epoch]``. Use :meth:`EnsembleMLP.trace` in it to see
            pre-activations. Its cost counts in ``result.seconds``.
        probe_epochs: the epochs at which to call ``probe`` (``0 <= e <= num_epochs``).

    Returns:
        An :class:`EnsembleResult`.
    """
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(
        np.asarray(X) if not torch.is_tensor(X) else X, dtype=dtype, device=device
    )
    y_dtype = torch.long if loss == "ce" else dtype
    y_t = torch.as_tensor(
        np.asarray(y) if not torch.is_tensor(y) else y, dtype=y_dtype, device=device
    )
    E = len(members)
    for name, t in (("X", X_t), ("y", y_t)):
        feature_dims = _shared_dims(name, loss)
        if t.dim() == feature_dims + 1 and t.shape[0] != E:
            raise ValueError(f"per-member {name} has {t.shape[0]} sets for {E} members")
        if t.dim() not in (feature_dims, feature_dims + 1):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; see the docstring")
    if X_t.shape[-2] != y_t.shape[-1 if loss == "ce" else -2]:
        raise ValueError(f"X and y hold different numbers of examples: {X_t.shape}, {y_t.shape}")
    out_dim = int(y_t.max().item()) + 1 if loss == "ce" else y_t.shape[-1]
    model = EnsembleMLP(members, X_t.shape[-1], width, depth, out_dim, dtype=dtype).to(device)
    lrs = torch.tensor([m.lr for m in model.members], dtype=dtype, device=device)
    trainer = _Trainer(model, lrs, optimizer=optimizer, momentum=momentum, loss=loss)

    record = set(range(num_epochs)) if grad_epochs is None else {int(e) for e in grad_epochs}
    record_sorted = sorted(e for e in record if 0 <= e < num_epochs)
    n_layers = model.n_layers
    losses = torch.zeros(num_epochs, E, dtype=dtype, device=device)
    norms = torch.zeros(len(record_sorted), E, n_layers, dtype=dtype, device=device)
    slot = {e: i for i, e in enumerate(record_sorted)}
    probe_at = frozenset(int(e) for e in probe_epochs if 0 <= int(e) <= num_epochs)
    probes: dict[int, Any] = {}

    with limit_cpu_threads(cpu_threads, device), Stopwatch(device) as watch:
        where = describe_device(device)  # as trained, with the thread count in force
        _run_epochs(
            trainer, X_t, y_t, batch_size, data_seed, num_epochs, progress, losses, norms,
            slot, probe, probe_at, probes,
        )  # fmt: skip

    return EnsembleResult(
        members=list(model.members),
        losses=losses.cpu().numpy(),
        grad_epochs=np.array(record_sorted, dtype=int),
        grad_norms=norms.cpu().numpy(),
        model=model,
        seconds=watch.seconds,
        device=where,
        probes=dict(sorted(probes.items())),
    )


def train_single(
    member: Member,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    num_epochs: int,
    loss: str = "mse",
    optimizer: str = "adam",
    momentum: float = 0.0,
    batch_size: int | None = None,
    data_seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Train one member alone with ``torch.optim``: the ordinary loop, the baseline.

    ``benchmarks/bench_ensemble.py`` times a Python loop of these against
    :func:`train_ensemble`, and chapter 6 times one network per activation with it.
    The batches are those of :func:`epoch_batches`, as in the ensemble.

    Returns:
        The loss per epoch (mean over the epoch's steps), shape ``(num_epochs,)``.
    """
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(
        np.asarray(X) if not torch.is_tensor(X) else X, dtype=torch.float32, device=device
    )
    y_dtype = torch.long if loss == "ce" else torch.float32
    y_t = torch.as_tensor(
        np.asarray(y) if not torch.is_tensor(y) else y, dtype=y_dtype, device=device
    )
    out_dim = int(y_t.max().item()) + 1 if loss == "ce" else y_t.shape[1]
    loss_fn = {"mse": F.mse_loss, "ce": F.cross_entropy}.get(loss)
    if loss_fn is None:
        raise ValueError(f"unknown loss {loss!r}; use 'mse' or 'ce'")
    net = build_member(member, X_t.shape[1], width, depth, out_dim).to(device)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=member.lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=member.lr, momentum=momentum)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam' or 'sgd'")
    losses = torch.zeros(num_epochs, device=device)
    for epoch in range(num_epochs):
        batches = epoch_batches(X_t.shape[0], batch_size, epoch, data_seed)
        for idx in batches if batches is not None else [None]:
            xb, yb = (X_t, y_t) if idx is None else (X_t[idx.to(device)], y_t[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            step_loss = loss_fn(net(xb), yb)
            step_loss.backward()
            opt.step()
            losses[epoch] += step_loss.detach()
        if batches is not None:
            losses[epoch] /= len(batches)
    return losses.cpu().numpy()


def gradient_norms_at_init(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Per-layer weight-gradient norms of the MSE loss at initialisation, shape ``(E, depth + 1)``.

    One forward and backward pass of the stacked members, no update (chapter 3's explorer).
    """
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=device)
    model = EnsembleMLP(members, X_t.shape[1], width, depth, y_t.shape[1]).to(device)
    _loss_per_member(model(X_t), y_t, "mse").sum().backward()
    norms = torch.stack([w.grad.flatten(1).norm(dim=1) for w in model.weights], dim=1)
    return norms.cpu().numpy()


@torch.no_grad()
def hidden_variances(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    out_dim: int = 1,
) -> np.ndarray:
    """Variance of each hidden layer's activations at initialisation, shape ``(E, depth)``.

    The variance is taken over examples and units together (chapter 3, initialisation).
    """
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    model = EnsembleMLP(members, X_t.shape[1], width, depth, out_dim)
    _, hidden = model(X_t, return_hidden=True)
    return torch.stack([h.flatten(1).var(dim=1) for h in hidden], dim=1).numpy()
