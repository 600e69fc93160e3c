"""The stacked network: E multilayer perceptrons of one shape, one tensor per layer."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actlab.engine.models import NORMS, activation_module, mlp

from .kernels import ActivationRun, GroupedActivation, kernels_of
from .members import Member, initial_linears


class Stacked(nn.Module):
    """What every stacked network of an ensemble shares: its members, their linear layers
    stacked (``weights[k]`` of shape ``(E, fan_in, fan_out)``, the transpose of
    ``nn.Linear.weight``, so that ``h @ W`` needs no transposition, and ``biases[k]`` of
    shape ``(E, 1, fan_out)``), the LayerNorms' affine parameters when any member uses
    ``norm="layer"`` (``norm_weights[k]`` and ``norm_biases[k]``, shape ``(E, 1, width)``,
    unused, and so never updated, for the members without a norm), and the runs of
    consecutive members sharing an activation (one call per run)."""

    def _stack(
        self,
        members: Sequence[Member],
        dims: list[tuple[int, int]],
        dtype: torch.dtype,
        depth: int,
        width: int,
        norms: int,
    ) -> None:
        """Set the members, their initial weights (those :func:`~actlab.ensemble.members.build_member`
        gives each member, drawn without building its modules), ``norms`` LayerNorms of
        ``width`` where any member has one, and the activation runs."""
        self.members = list(members)
        weights, biases = initial_linears(self.members, dims, dtype, depth=depth)
        self.weights = nn.ParameterList(nn.Parameter(w) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b) for b in biases)
        uses_norm = [m.norm == "layer" for m in self.members]
        self.norm_weights = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        mask = None if all(uses_norm) else torch.tensor(uses_norm).view(-1, 1, 1)
        self.register_buffer("_norm_mask", mask)
        if any(uses_norm):  # a LayerNorm starts at weight 1, bias 0
            E = len(self.members)
            for _ in range(norms):
                self.norm_weights.append(nn.Parameter(torch.ones(E, 1, width, dtype=dtype)))
                self.norm_biases.append(nn.Parameter(torch.zeros(E, 1, width, dtype=dtype)))
        self.runs: list[ActivationRun] = []
        for name, group in itertools.groupby(
            enumerate(m.activation for m in self.members), key=lambda t: t[1]
        ):
            idx = [i for i, _ in group]
            phi = activation_module(name)
            self.runs.append(ActivationRun(idx[0], idx[-1] + 1, phi, kernels_of(phi)))

    @property
    def activation_runs(self) -> list[tuple[int, int, str]]:
        """``(start, stop, activation)`` for each run of consecutive members sharing an activation."""
        return [(s, e, self.members[s].activation) for s, e, _, _ in self.runs]

    @property
    def size(self) -> int:
        """Number of members E."""
        return len(self.members)

    @property
    def n_layers(self) -> int:
        """Number of linear layers (``len(weights)``)."""
        return len(self.weights)

    @property
    def params(self) -> list[nn.Parameter]:
        """Every trained tensor: weights, biases, then the norms' affine parameters."""
        return [*self.weights, *self.biases, *self.norm_weights, *self.norm_biases]

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.runs) == 1:
            return self.runs[0].module(z)
        return GroupedActivation.apply(z, self.runs)

    def _norm(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """LayerNorm ``k`` (with its affine parameters) for the members that have one."""
        if not len(self.norm_weights):
            return z
        normed = torch.addcmul(
            self.norm_biases[k], F.layer_norm(z, z.shape[-1:]), self.norm_weights[k]
        )
        return normed if self._norm_mask is None else torch.where(self._norm_mask, normed, z)


class EnsembleMLP(Stacked):
    """E multilayer perceptrons of one shape with stacked weights (see :class:`Stacked`).

    Layer ``k`` is ``weights[k]`` and ``biases[k]``; hidden layer ``k``'s LayerNorm, where
    any member has one, is ``norm_weights[k]`` and ``norm_biases[k]``.
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
            if m.block != "plain":
                raise ValueError(
                    f"EnsembleMLP takes plain members, not {m.block!r} ones "
                    "(those make an actlab.ensemble.blocks.EnsembleResidual)"
                )
        self.shape = (in_dim, width, depth, out_dim)
        dims = list(itertools.pairwise([in_dim, *[width] * depth, out_dim]))
        self._stack(members, dims, dtype, depth, width, norms=depth)

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
