"""The networks of an ensemble: what distinguishes a member, and the plain network it equals."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from actlab.engine.blocks import ResidualNet, check_block, draw_linears_, residual_net
from actlab.engine.models import init_mlp_, mlp


@dataclass(frozen=True)
class Member:
    """One network of an ensemble.

    Args:
        seed: seeds the member's initial weights (``torch.manual_seed`` before building it).
        activation: a name known to :func:`actlab.engine.models.activation_module`.
        lr: the member's learning rate.
        init: ``"default"`` (PyTorch's), ``"default-zero-bias"`` (PyTorch's weights, biases
            0), ``"xavier"``, ``"he"`` or ``"normal:STD"`` (see
            :func:`actlab.engine.models.init_mlp_`).
        bias: when set, every hidden layer's bias is filled with this constant after
            the init scheme (the output layer keeps its own); chapter 4's bias
            experiments.
        norm: ``"none"`` or ``"layer"``: for plain members a LayerNorm between each hidden
            linear layer and its activation (see :func:`actlab.engine.models.mlp`); for
            residual and gated members a LayerNorm before each branch and one before
            the head (pre-LN, see :class:`actlab.engine.blocks.ResidualNet`).
        block: ``"plain"`` (a multilayer perceptron), ``"residual"`` or ``"gated"`` (see
            :class:`actlab.engine.blocks.ResidualNet`; ``depth`` counts blocks, ``width``
            is the stream's width). For residual and gated members ``bias`` fills each
            branch's first bias ``b1``.
        branch: residual and gated members only (plain members ignore it): how each
            branch's last linear layer starts after the init scheme, ``"default"`` (as
            the scheme gives it), ``"scaled"`` (its weights times ``1/sqrt(depth)``) or
            ``"zero"`` (its weights and bias 0).
    """

    seed: int
    activation: str = "relu"
    lr: float = 1e-3
    init: str = "default"
    bias: float | None = None
    norm: str = "none"
    block: str = "plain"
    branch: str = "default"


def members_grid(
    seeds: Iterable[int],
    activations: Sequence[str] = ("relu",),
    lrs: Sequence[float] = (1e-3,),
    inits: Sequence[str] = ("default",),
    biases: Sequence[float | None] = (None,),
    norms: Sequence[str] = ("none",),
    *,
    blocks: Sequence[str] = ("plain",),
    branches: Sequence[str] = ("default",),
) -> list[Member]:
    """Every combination of block, branch, activation, norm, init, bias, learning rate and seed.

    The seed varies fastest, the block slowest.
    """
    seeds = list(seeds)
    grid = itertools.product(blocks, branches, activations, norms, inits, biases, lrs, seeds)
    return [
        Member(seed=s, activation=a, lr=lr, init=i, bias=bias, norm=n, block=bk, branch=br)
        for bk, br, a, n, i, bias, lr, s in grid
    ]


def build_member(
    member: Member,
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    dtype: torch.dtype = torch.float32,
    branch_width: int | None = None,
) -> nn.Sequential | ResidualNet:
    """The network ``member`` describes, initialised from its seed, as a plain module.

    This is the network an ensemble member is equal to (the ensemble draws the same
    initial weights, :func:`initial_linears`): an ``nn.Sequential`` for plain members,
    a :class:`~actlab.engine.blocks.ResidualNet` (branch width ``branch_width``, default
    ``width``) for residual and gated ones.
    """
    torch.manual_seed(member.seed)
    if member.block != "plain":
        net = residual_net(
            in_dim, width, depth, out_dim, member.activation, member.block, member.norm,
            branch_width, member.init, member.branch,
        )  # fmt: skip
        if member.bias is not None:
            with torch.no_grad():
                for blk in net.blocks:
                    blk.fc1.bias.fill_(member.bias)
        return net.to(dtype)
    net = mlp(in_dim, width, depth, out_dim, activation=member.activation, norm=member.norm)
    init_mlp_(net, member.init)
    if member.bias is not None:
        with torch.no_grad():
            for layer in [m for m in net if isinstance(m, nn.Linear)][:-1]:
                layer.bias.fill_(member.bias)
    return net.to(dtype)


def initial_linears(
    members: Sequence[Member],
    dims: list[tuple[int, int]],
    dtype: torch.dtype = torch.float32,
    *,
    depth: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The members' initial linear layers, stacked: what :func:`build_member` gives each.

    Args:
        members: all plain, or all residual/gated (of one kind).
        dims: ``(fan_in, fan_out)`` of every linear layer of the network, in order.
        dtype: the dtype of the stacked tensors (drawn in float32, then converted).
        depth: hidden layers (plain) or blocks.

    Returns:
        ``(weights, biases)``: per layer, ``(E, fan_in, fan_out)`` and ``(E, 1, fan_out)``.
    """
    E, sizes = len(members), [n for n_in, n_out in dims for n in (n_in * n_out, n_out)]
    buf = torch.empty(E, sum(sizes))
    per = (len(dims) - 2) // depth if depth else 0
    for i, m in enumerate(members):
        check_block(m.block, m.branch, m.norm)
        torch.manual_seed(m.seed)
        draw_linears_(buf[i], dims, m.init)
        parts = buf[i].split(sizes)
        if m.block == "plain":
            if m.bias is not None:
                for j in range(len(dims) - 1):
                    parts[2 * j + 1].fill_(m.bias)
            continue
        scale = 1 / math.sqrt(max(depth, 1))
        for k in range(depth):
            first, last = 1 + k * per, per + k * per
            if m.bias is not None:
                parts[2 * first + 1].fill_(m.bias)
            if m.branch == "scaled":
                parts[2 * last].mul_(scale)
            elif m.branch == "zero":
                parts[2 * last].zero_()
                parts[2 * last + 1].zero_()
    weights, biases, off = [], [], 0
    for n_in, n_out in dims:
        w = buf[:, off : off + n_in * n_out].view(E, n_out, n_in).transpose(1, 2)
        weights.append(w.to(dtype, copy=True, memory_format=torch.contiguous_format))
        off += n_in * n_out
        biases.append(buf[:, off : off + n_out].view(E, 1, n_out).to(dtype, copy=True))
        off += n_out
    return weights, biases
