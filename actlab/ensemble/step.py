"""The training step written out by hand: forward and backward pass into buffers kept between steps.

:func:`~actlab.ensemble.train_ensemble` takes this step for members without a norm
(:meth:`HandStep.supports`) and autograd otherwise; the tests check it against
autograd and against the network trained alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from actlab.engine.device import l2_cache_bytes

from .kernels import Kernels, Uses
from .loss import loss_and_grad, shared_dims
from .model import EnsembleMLP

# A core's level-2 cache where the system does not say (1 to 2 MiB is common).
_L2_UNKNOWN = 1 << 20

# The activations whose backward reads the input: the step keeps it, or its derivative.
_KEEPS = (Uses.DERIVATIVE, Uses.INPUT)


@dataclass(eq=False)
class _Run:
    """A run of a chunk's members sharing an activation, in one hidden layer's buffers.

    Attributes:
        kernels: the activation's kernels (:func:`~actlab.ensemble.kernels.kernels_of`).
        out: the run's rows of the layer's output: its pre-activations, made its
            activations in place.
        grad: the run's rows of the gradient with respect to the layer's output, made the
            gradient with respect to its pre-activations in place.
        kept: what the backward reads besides, for the runs whose backward reads the
            input: the derivative (``Uses.DERIVATIVE``) or a copy of the input
            (``Uses.INPUT``).
        scratch: for ``Uses.DERIVATIVE``, the contiguous tensor its kernels run in.
        ones: for ``Uses.DERIVATIVE``, the gradient its derivative is taken of.
    """

    kernels: Kernels
    out: torch.Tensor
    grad: torch.Tensor
    kept: torch.Tensor | None = None
    scratch: torch.Tensor | None = None
    ones: torch.Tensor | None = None

    def forward(self) -> None:
        """The activation, in place, keeping what the backward pass reads."""
        forward, backward, uses = self.kernels
        if uses is Uses.DERIVATIVE:  # the derivative, taken now; the backward is a product
            self.scratch.copy_(self.out)
            backward(self.ones, self.scratch, None, self.kept)
            forward(self.scratch, self.scratch)
            self.out.copy_(self.scratch)
        elif uses is Uses.INPUT:  # the input, kept
            self.kept.copy_(self.out)
            forward(self.out, self.out)
        elif uses is Uses.OUTPUT:
            forward(self.out, self.out)
        # Uses.NOTHING: the identity in place is nothing to do

    def backward(self) -> None:
        """The activation's derivative applied to ``grad``, in place."""
        _, backward, uses = self.kernels
        if uses is Uses.DERIVATIVE:
            torch.mul(self.grad, self.kept, out=self.grad)
        elif uses is Uses.INPUT:
            backward(self.grad, self.kept, self.out, self.grad)
        else:  # reads the output, or nothing
            backward(self.grad, None, self.out, self.grad)


@dataclass(eq=False)
class _Layer:
    """One linear layer of a chunk, with its activation: views of the step's buffers.

    Attributes:
        inputs: the layer's input with its column of ones, ``(C, n, fan_in + 1)``: the
            chunk's input, or the layer below's activations.
        inputs_t: ``inputs`` transposed, for the gradient of the weights and bias.
        weights: the packed weights and bias, ``(C, fan_in + 1, fan_out)``, bias last.
        weights_t: the weights without the bias, transposed: they carry gradients down.
        grad: the gradient of ``weights``, written by every backward pass.
        out: the layer's product, ``(C, n, fan_out)``; for a hidden layer the columns
            beside the next layer's column of ones, where its activation is applied.
        out_grad: for a hidden layer, the gradient with respect to ``out``.
        runs: for a hidden layer, its activation's runs over ``out`` and ``out_grad``.
    """

    inputs: torch.Tensor
    inputs_t: torch.Tensor
    weights: torch.Tensor
    weights_t: torch.Tensor
    grad: torch.Tensor
    out: torch.Tensor
    out_grad: torch.Tensor | None = None
    runs: list[_Run] = field(default_factory=list)

    def forward(self) -> None:
        """The layer's product, straight into ``out``, then its activation there in place."""
        torch.bmm(self.inputs, self.weights, out=self.out)
        for run in self.runs:
            run.forward()


@dataclass(eq=False)
class _Chunk:
    """Members ``[start, stop)`` of the ensemble, taken through the step together."""

    start: int
    stop: int
    layers: list[_Layer]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs on inputs ``x`` (shared, or the chunk's own), ``(C, n, out_dim)``."""
        self.layers[0].inputs[..., :-1].copy_(x)
        for layer in self.layers:
            layer.forward()
        return self.layers[-1].out

    def backward(self, g: torch.Tensor) -> None:
        """Every layer's gradient, from ``g``, the gradient with respect to the outputs."""
        layers = self.layers
        for k in range(len(layers) - 1, 0, -1):
            layer, below = layers[k], layers[k - 1]
            torch.bmm(layer.inputs_t, g, out=layer.grad)
            torch.bmm(g, layer.weights_t, out=below.out_grad)
            for run in below.runs:
                run.backward()  # the activation's derivative, in place
            g = below.out_grad
        torch.bmm(layers[0].inputs_t, g, out=layers[0].grad)


@dataclass(eq=False)
class _Buffers:
    """The tensors of a step on batches of ``n`` examples, sized for the largest chunk.

    Attributes:
        inputs: the input with its column of ones, ``(M, n, in_dim + 1)``.
        hidden: each hidden layer's activations with a column of ones, ``(M, n, width + 1)``.
        grads: two gradients with respect to a hidden layer's output, ``(M, n, width)``,
            one layer's in the one, the layer below's in the other.
        kept: for each hidden layer, what the runs whose backward reads the input keep.
        scratch: the contiguous tensor of the ``Uses.DERIVATIVE`` runs, every layer's.
        ones: ones of the scratch's shape, the gradient their derivative is taken of.
        out: the outputs, ``(M, n, out_dim)``.
        chunks: the chunks of members, one after the other, each on views of these.
    """

    inputs: torch.Tensor
    hidden: list[torch.Tensor]
    grads: list[torch.Tensor]
    kept: list[torch.Tensor]
    scratch: torch.Tensor
    ones: torch.Tensor
    out: torch.Tensor
    chunks: list[_Chunk] = field(default_factory=list)


class HandStep:
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
      would use for it (see :func:`~actlab.ensemble.kernels.kernels_of`), on views of
      the layer's buffers that are sliced once, and its derivative is applied in place.
      Float32 GELU goes to oneDNN, which leaves a strided ``out`` unwritten, so it runs
      in place in a contiguous scratch tensor and is copied beside the column of ones.
      The activations then equal the module's bit for bit where a row of a layer
      (its width) is a whole number of the CPU's vector loop, e.g. 64; in narrower
      or ragged rows the last elements take a kernel's scalar path, equal to
      rounding (tests/ensemble/test_ensemble_step.py checks both);
    * the loss's gradient with respect to the outputs (a tensor of ``E x N x out_dim``
      numbers) is written out for the mean squared error and left to autograd for the
      other losses (see :func:`~actlab.ensemble.loss.loss_and_grad`);
    * on the CPU the members go through the step in chunks that fit the cache
      (:meth:`members_per_chunk`; ``chunk`` fixes the number), the whole forward and
      backward pass of one chunk before the next. Where no run of an activation is cut
      between chunks, each member's numbers are those of the unchunked step bit for bit
      (tested); a run cut into pieces can round differently in a piece's last
      elements, as in an ensemble of another make-up.

    Only for members without a norm whose activations all have kernels (every
    activation of the course); :func:`~actlab.ensemble.train_ensemble` uses autograd
    otherwise.
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
        self._buffers: dict[int, _Buffers] = {}

    @staticmethod
    def supports(model: EnsembleMLP) -> bool:
        """Whether ``model`` can be trained by this step (no norms, every activation has kernels)."""
        return not len(model.norm_weights) and all(r.kernels is not None for r in model.runs)

    @property
    def weight_grads(self) -> list[torch.Tensor]:
        """The last backward pass's weight gradients, ``(E, fan_in, fan_out)`` per layer (views)."""
        return [p.grad[:, :-1] for p in self.layers]

    def members_per_chunk(self, n: int, device: torch.device) -> int:
        """How many members one pass of the step takes at a time, on batches of ``n`` examples.

        On the CPU, as many as fit one layer's work for them in a core's level-2 cache
        (:func:`actlab.engine.device.l2_cache_bytes`): per member, that layer's input,
        output and gradient and its weights and their gradient, for the layer with the
        most of them. One core's cache whatever the thread count, so that the chunks, and
        with them the numbers, do not depend on it. On other devices, every member; where
        the step was given ``chunk``, that many.
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

    def _buffers_for(self, n: int, x: torch.Tensor) -> _Buffers:
        """The buffers of a step on ``n`` examples, and its chunks of members on them.

        The members are taken in chunks (:func:`chunk_members`, at most
        :meth:`members_per_chunk` each), one after the other: forward, loss and backward
        of one chunk, then the next, in buffers sized for the largest chunk that every
        chunk reuses. A layer's work for a chunk then stays in cache from its product to
        its activation, and from the backward products to the derivative.

        Each layer's product goes straight into that layer's activation buffer (beside
        its column of ones), and every activation is applied there in place while the
        buffer is still in cache. Only what the backward pass reads is kept besides:
        for the runs whose derivative reads the input, that derivative
        (``Uses.DERIVATIVE``) or a copy of the input (``Uses.INPUT``). A
        ``Uses.DERIVATIVE`` run takes a round trip through a contiguous scratch tensor
        that every layer reuses, in cache too: its kernels then see memory laid out as in
        the ungrouped network (float32 GELU goes to oneDNN, which would read a strided
        input otherwise than the module's and leaves a strided output unwritten).
        """
        bufs = self._buffers.get(n)
        if bufs is not None:
            return bufs
        hidden = len(self.layers) - 1
        in_dim, width, out_dim = self.model.shape[0], self.model.shape[1], self.model.shape[3]
        runs = [(s, e, kern) for s, e, _, kern in self.model.runs]
        spans = chunk_members([(s, e) for s, e, _ in runs], self.members_per_chunk(n, x.device))
        # Each chunk's runs, numbered from the chunk's first member.
        local = [
            [(max(s, c0) - c0, min(e, c1) - c0, kern) for s, e, kern in runs if s < c1 and e > c0]
            for c0, c1 in spans
        ]
        M = max(c1 - c0 for c0, c1 in spans)
        kept_rows = max(sum(e - s for s, e, k in rl if k.uses in _KEEPS) for rl in local)
        longest = max(
            (e - s for rl in local for s, e, k in rl if k.uses is Uses.DERIVATIVE), default=0
        )
        kw = dict(dtype=x.dtype, device=x.device)
        inputs = torch.ones(M, n, in_dim + 1, **kw)
        activations = [torch.ones(M, n, width + 1, **kw) for _ in range(hidden)]
        grads = [torch.empty(M, n, width, **kw) for _ in range(2)]
        kept = [torch.empty(kept_rows, n, width, **kw) for _ in range(hidden)]
        scratch = torch.empty(longest, n, width, **kw)
        bufs = _Buffers(
            inputs=inputs, hidden=activations, grads=grads, kept=kept, scratch=scratch,
            ones=torch.ones_like(scratch), out=torch.empty(M, n, out_dim, **kw),
        )  # fmt: skip
        for (c0, c1), chunk_runs in zip(spans, local, strict=True):
            bufs.chunks.append(self._chunk(bufs, c0, c1, chunk_runs))
        self._buffers[n] = bufs
        return bufs

    def _chunk(
        self, bufs: _Buffers, c0: int, c1: int, runs: list[tuple[int, int, Kernels]]
    ) -> _Chunk:
        """Members ``[c0, c1)`` on views of ``bufs``; ``runs`` numbered from ``c0``."""
        C = c1 - c0
        inputs = [bufs.inputs[:C], *(t[:C] for t in bufs.hidden)]
        outs = [t[..., :-1] for t in inputs[1:]] + [bufs.out[:C]]
        layers = []
        for k, packed in enumerate(p[c0:c1] for p in self.layers):
            layer = _Layer(
                inputs=inputs[k], inputs_t=inputs[k].transpose(1, 2), weights=packed,
                weights_t=packed[:, :-1].transpose(1, 2), grad=self.layers[k].grad[c0:c1],
                out=outs[k],
            )  # fmt: skip
            if k < len(self.layers) - 1:  # a hidden layer: its activation
                layer.out_grad = bufs.grads[(k + 1) % 2][:C]
                row = 0  # the next free row of kept[k]
                for s, e, kern in runs:
                    run = _Run(kern, layer.out[s:e], layer.out_grad[s:e])
                    if kern.uses in _KEEPS:
                        run.kept, row = bufs.kept[k][row : row + e - s], row + e - s
                    if kern.uses is Uses.DERIVATIVE:
                        run.scratch, run.ones = bufs.scratch[: e - s], bufs.ones[: e - s]
                    layer.runs.append(run)
            layers.append(layer)
        return _Chunk(c0, c1, layers)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
        """Forward and backward pass on ``(x, y)``: fills every ``layers[k].grad``.

        ``x`` is ``(n, in_dim)`` or ``(E, n, in_dim)`` (one set per member), ``y`` the
        targets of :func:`~actlab.ensemble.loss.loss_per_member`, likewise shared or one
        set per member.

        Returns:
            The loss of each member, shape ``(E,)``, before the update.
        """
        bufs = self._buffers_for(x.shape[-2], x)
        x_each = x.dim() == shared_dims("X", loss) + 1  # one set per member
        y_each = y.dim() == shared_dims("y", loss) + 1
        losses = []
        with torch.no_grad():
            for c in bufs.chunks:
                out = c.forward(x[c.start : c.stop] if x_each else x)
                per_member, g = loss_and_grad(out, y[c.start : c.stop] if y_each else y, loss)
                losses.append(per_member)
                c.backward(g)
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
