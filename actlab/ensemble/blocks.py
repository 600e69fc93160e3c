"""The stacked residual network: E residual (or gated) networks of one shape, one tensor per layer.

Each member equals :func:`~actlab.ensemble.members.build_member`'s
:class:`~actlab.engine.blocks.ResidualNet` for it (the tests check outputs and
gradients). Every linear layer is one ``torch.baddbmm`` for all members together, and
each member's activation is applied run by run as in
:class:`~actlab.ensemble.model.EnsembleMLP`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from actlab.engine.blocks import ResidualNet, check_block

from .members import Member
from .model import Stacked


class EnsembleResidual(Stacked):
    """E residual or gated networks (:class:`~actlab.engine.blocks.ResidualNet`) with stacked weights.

    ``weights`` lists every linear layer's weight, shape ``(E, fan_in, fan_out)``, in the
    order of the network's linear layers: the input projection, then per block ``W1``,
    ``V`` (gated blocks only) and ``W2``, then the head; ``biases`` likewise, shape
    ``(E, 1, fan_out)``. When any member uses ``norm="layer"``, ``norm_weights[k]`` and
    ``norm_biases[k]`` (shape ``(E, 1, width)``) are the affine parameters of block
    ``k``'s LayerNorm, and index ``depth`` those of the final one. Members may mix
    ``norm="layer"`` and ``"none"`` (the norm's parameters are then unused, and never
    updated, for the members without one); they must share the block kind.

    Args:
        members: the networks; all of one block kind, ``"residual"`` or ``"gated"``.
        in_dim, out_dim: input and output widths.
        width: the stream's width d.
        depth: the number of blocks L.
        branch_width: the branches' hidden width m (default ``width``).
        dtype: parameter dtype.
    """

    def __init__(
        self,
        members: Sequence[Member],
        in_dim: int,
        width: int,
        depth: int,
        out_dim: int,
        branch_width: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        kinds = sorted({m.block for m in members})
        if len(kinds) > 1:
            raise ValueError(f"the members of one ensemble share their block kind; got {kinds}")
        for m in members:
            check_block(m.block, m.branch, m.norm)
        if kinds[0] == "plain":
            raise ValueError("plain members make an EnsembleMLP")
        self.block = kinds[0]
        self.shape = (in_dim, width, depth, out_dim)
        self.branch_width = width if branch_width is None else branch_width
        self.per_block = 3 if self.block == "gated" else 2
        self._stack(members, self.dims, dtype, depth, width, norms=depth + 1)

    @property
    def dims(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of every linear layer, in the order of ``weights``."""
        in_dim, width, depth, out_dim = self.shape
        m = self.branch_width
        block = [(width, m)] * (self.per_block - 1) + [(m, width)]
        return [(in_dim, width), *block * depth, (width, out_dim)]

    def block_layers(self, k: int) -> list[int]:
        """Indices into ``weights`` of block ``k``'s layers: ``W1``, (``V``,) ``W2``."""
        start = 1 + k * self.per_block
        return list(range(start, start + self.per_block))

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Outputs and the stream of every member.

        Args:
            x: inputs ``(N, in_dim)`` shared by all members, or ``(E, N, in_dim)``.

        Returns:
            ``(out, stream)``: ``out`` of shape ``(E, N, out_dim)``; ``stream`` the list
            ``h_0, ..., h_L`` (the input projection, then each block's output), each
            ``(E, N, width)``.
        """
        W, B = list(self.weights), list(self.biases)
        h = torch.baddbmm(B[0], x.expand(self.size, *x.shape) if x.dim() == 2 else x, W[0])
        stream = [h]
        gated = self.block == "gated"
        for k in range(self.shape[2]):
            j = 1 + k * self.per_block
            u = self._norm(k, h)
            a = self._act(torch.baddbmm(B[j], u, W[j]))
            if gated:
                a = a * torch.baddbmm(B[j + 1], u, W[j + 1])
            h = h + torch.baddbmm(B[j + self.per_block - 1], a, W[j + self.per_block - 1])
            stream.append(h)
        out = torch.baddbmm(B[-1], self._norm(self.shape[2], h), W[-1])
        return out, stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every member, shape ``(E, N, out_dim)`` (``x`` as for :meth:`trace`)."""
        return self.trace(x)[0]

    @torch.no_grad()
    def member_module(self, i: int) -> ResidualNet:
        """Member ``i`` with its current weights, as a plain :class:`ResidualNet` on the CPU."""
        in_dim, width, depth, out_dim = self.shape
        m = self.members[i]
        net = ResidualNet(
            in_dim, width, depth, out_dim, m.activation, m.block, m.norm, self.branch_width
        ).to(self.weights[0].dtype)
        linears = [mod for mod in net.modules() if isinstance(mod, nn.Linear)]
        for k, layer in enumerate(linears):
            layer.weight.copy_(self.weights[k][i].T.cpu())
            layer.bias.copy_(self.biases[k][i, 0].cpu())
        norms = [mod for mod in net.modules() if isinstance(mod, nn.LayerNorm)]
        for k, ln in enumerate(norms):
            ln.weight.copy_(self.norm_weights[k][i, 0].cpu())
            ln.bias.copy_(self.norm_biases[k][i, 0].cpu())
        return net
