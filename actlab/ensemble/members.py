"""The networks of an ensemble: what distinguishes a member, and the plain network it equals."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

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
