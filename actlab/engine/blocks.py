"""Residual and gated networks (chapter 7): a stream of width d, blocks that add a branch to it.

The network: an input projection ``h_0 = x W_in + b_in`` (no activation), then for each
block ``k = 1..L``

* residual: ``h_k = h_{k-1} + W2_k act(W1_k n(h_{k-1}) + b1_k) + b2_k``;
* gated: ``h_k = h_{k-1} + W2_k [act(W1_k n(h_{k-1}) + b1_k) * (V_k n(h_{k-1}) + c_k)] + b2_k``
  (GLU with the sigmoid, ReGLU with ReLU, GEGLU with GELU, SwiGLU with SiLU; Shazeer 2020);

with ``n`` a LayerNorm before each branch (pre-LN, Xiong et al. 2020) and another before
the head when ``norm="layer"``, the identity otherwise; the head is ``out = h_L W_out + b_out``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from actlab.engine.models import NORMS, activation_module, init_mlp_

BLOCKS = ("plain", "residual", "gated")
"""The block kinds: a plain MLP (:func:`actlab.engine.models.mlp`), residual, gated."""
BRANCHES = ("default", "scaled", "zero")
"""How a branch's last linear layer starts: as the init scheme gives it, its weights times
``1/sqrt(L)``, or weights and bias 0 (every block the identity)."""


def check_block(block: str, branch: str = "default", norm: str = "none") -> None:
    """Raise ``ValueError`` unless ``block``, ``branch`` and ``norm`` are known names."""
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}; use one of {BLOCKS}")
    if branch not in BRANCHES:
        raise ValueError(f"unknown branch {branch!r}; use one of {BRANCHES}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")


class ResidualBlock(nn.Module):
    """One block ``h + branch(h)``: ``fc2(act(fc1(n(h))) [* gate(n(h))])``.

    Args:
        width: the stream's width d.
        branch_width: the branch's hidden width m.
        activation: a name known to :func:`actlab.engine.models.activation_module`.
        gated: multiply the activation by a second linear map of the input (``gate``).
        norm: ``"layer"`` for a LayerNorm before the branch, ``"none"``.
    """

    def __init__(
        self, width: int, branch_width: int, activation: str, gated: bool, norm: str
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width) if norm == "layer" else nn.Identity()
        self.fc1 = nn.Linear(width, branch_width)
        self.gate = nn.Linear(width, branch_width) if gated else None
        self.act = activation_module(activation)
        self.fc2 = nn.Linear(branch_width, width)

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """What the block adds to the stream."""
        u = self.norm(h)
        a = self.act(self.fc1(u))
        if self.gate is not None:
            a = a * self.gate(u)
        return self.fc2(a)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)


class ResidualNet(nn.Module):
    """Input projection, ``depth`` residual (or gated) blocks, a final norm and a linear head.

    Args:
        in_dim, out_dim: input and output widths.
        width: the stream's width d.
        depth: the number of blocks L.
        activation: each branch's activation.
        block: ``"residual"`` or ``"gated"``.
        norm: ``"layer"`` (pre-LN: a LayerNorm before each branch and before the head)
            or ``"none"``.
        branch_width: the branch's hidden width m (default ``width``).

    Its linear layers, in the order :func:`actlab.engine.models.linear_layers` lists
    them: ``inp``, then per block ``fc1``, ``gate`` (gated only), ``fc2``, then ``head``.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        depth: int,
        out_dim: int,
        activation: str = "relu",
        block: str = "residual",
        norm: str = "none",
        branch_width: int | None = None,
    ) -> None:
        super().__init__()
        check_block(block, norm=norm)
        if block == "plain":
            raise ValueError("a plain network is actlab.engine.models.mlp")
        m = width if branch_width is None else branch_width
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, m, activation, block == "gated", norm) for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width) if norm == "layer" else nn.Identity()
        self.head = nn.Linear(width, out_dim)

    def streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stream ``h_0, ..., h_L``: the input projection and each block's output."""
        hs = [self.inp(x)]
        for blk in self.blocks:
            hs.append(blk(hs[-1]))
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.final_norm(h))


@torch.no_grad()
def init_branches_(net: ResidualNet, branch: str = "default") -> ResidualNet:
    """Start each branch's last linear layer as ``branch`` says (:data:`BRANCHES`), in place.

    ``"scaled"`` multiplies its weights by ``1/sqrt(L)``, ``"zero"`` sets its weights and
    bias to 0; ``"default"`` leaves them. Returns ``net``.
    """
    check_block("residual", branch)
    scale = 1 / math.sqrt(max(len(net.blocks), 1))
    for blk in net.blocks:
        if branch == "scaled":
            blk.fc2.weight.mul_(scale)
        elif branch == "zero":
            blk.fc2.weight.zero_()
            blk.fc2.bias.zero_()
    return net


# nn.Linear's own initialisation: kaiming_uniform_ with a = sqrt(5), written as torch does.
_LINEAR_GAIN = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))


def linears_numel(dims: list[tuple[int, int]]) -> int:
    """The number of weights and biases of linear layers ``(fan_in, fan_out)``."""
    return sum(n_in * n_out + n_out for n_in, n_out in dims)


@torch.no_grad()
def draw_linears_(flat: torch.Tensor, dims: list[tuple[int, int]], init: str = "default") -> None:
    """Fill ``flat`` with the initial weights and biases of ``nn.Linear(fan_in, fan_out)`` layers.

    ``flat`` (float32, :func:`linears_numel` long) receives, layer after layer, the
    weight ``(fan_out, fan_in)`` flattened and the bias: exactly (bit for bit, from the
    same state of the generator) what building the layers in the order of ``dims`` and
    then :func:`actlab.engine.models.init_mlp_` with ``init`` gives them, without
    building modules: building thousands of ``nn.Linear`` for a deep ensemble takes
    seconds, drawing their numbers does not.
    """
    parts = flat.split([n for n_in, n_out in dims for n in (n_in * n_out, n_out)])
    for j, (fan_in, _) in enumerate(dims):
        bound = math.sqrt(3.0) * (_LINEAR_GAIN / math.sqrt(fan_in)) if fan_in else 0.0
        parts[2 * j].uniform_(-bound, bound)
        b_bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        parts[2 * j + 1].uniform_(-b_bound, b_bound)
    if init == "default":
        return
    for j, (fan_in, fan_out) in enumerate(dims):  # as init_mlp_ does, layer after layer
        w = parts[2 * j].view(fan_out, fan_in)
        if init == "xavier":
            nn.init.xavier_uniform_(w)
        elif init == "he":
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        elif init.startswith("normal:"):
            nn.init.normal_(w, 0.0, float(init.split(":", 1)[1]))
        elif init != "default-zero-bias":
            raise ValueError(
                f"unknown init {init!r}; use default, default-zero-bias, xavier, he or normal:STD"
            )
        parts[2 * j + 1].zero_()


def residual_net(
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    activation: str = "relu",
    block: str = "residual",
    norm: str = "none",
    branch_width: int | None = None,
    init: str = "default",
    branch: str = "default",
) -> ResidualNet:
    """A :class:`ResidualNet` with ``init`` applied to every linear layer, then ``branch``.

    ``init`` is a scheme of :func:`actlab.engine.models.init_mlp_`; seed the generator
    before calling for reproducible weights.
    """
    net = ResidualNet(in_dim, width, depth, out_dim, activation, block, norm, branch_width)
    init_mlp_(net, init)
    return init_branches_(net, branch)
