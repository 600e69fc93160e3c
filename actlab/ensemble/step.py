"""The training step written out by hand: forward and backward pass into buffers kept between steps.

:func:`~actlab.ensemble.train_ensemble` takes this step for members without a norm
(:meth:`HandStep.supports`) and autograd otherwise; the tests check it against
autograd and against the network trained alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from actlab.engine.device import l2_cache_bytes

from .loss import loss_and_grad, shared_dims
from .model import EnsembleMLP

# A core's level-2 cache where the system does not say (1 to 2 MiB is common).
_L2_UNKNOWN = 1 << 20


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
      would use for it (see :func:`~actlab.ensemble.kernels.kernels_of`), on views of the layer's buffers that are
      sliced once, and its derivative is applied in place. Float32 GELU goes to
      oneDNN, which leaves a strided ``out`` unwritten, so it runs in place in a
      contiguous scratch tensor and is copied beside the column of ones.
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
    activation of the course); :func:`~actlab.ensemble.train_ensemble` uses autograd otherwise.
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
        return not len(model.norm_weights) and all(r.kernels is not None for r in model.runs)

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
        runs = [(s, e, kern) for s, e, _, kern in self.model.runs]
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
        targets of :func:`~actlab.ensemble.loss.loss_per_member`, likewise shared or one set per member.

        Returns:
            The loss of each member, shape ``(E,)``, before the update.
        """
        bufs = self._buffers_for(x.shape[-2], x)
        x_each = x.dim() == shared_dims("X", loss) + 1  # one set per member
        y_each = y.dim() == shared_dims("y", loss) + 1
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
                per_member, g = loss_and_grad(c["out"], y[c0:c1] if y_each else y, loss)
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
