"""Chapter 4's smallest network in which a dead unit comes back, trained step by step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# --------------------------------------------------------------------------- revival demo


@dataclass
class RevivalTrace:
    """The constructed revival example step by step (see :func:`revival_demo`)."""

    steps: np.ndarray
    positive: np.ndarray  # examples with z > 0 for the watched unit
    own_grad: np.ndarray  # norm of the gradient reaching the watched unit's own weights and bias
    input_max: np.ndarray  # largest value of the watched unit's input
    loss: np.ndarray


def revival_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """1 -> 1 -> 2 -> 1 ReLU network whose layer-2 unit 1 is dead on ``x in [0, 1]`` at the start.

    Layer 1: ``h = ReLU(0.5 x)``, at most 0.5 on the data. Layer 2: unit 0 is
    ``ReLU(h)`` (alive), unit 1 is ``ReLU(h - 1)``: dead while ``h < 1``. Output:
    ``a_0 + a_1``. The target ``3x`` needs a larger ``h``, so the alive path pulls
    layer 1's weight up until unit 1's input crosses 1 and it comes back.
    """
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0], [1.0]]))
        net[2].bias.copy_(torch.tensor([0.0, -1.0]))
        net[4].weight.fill_(1.0)
        net[4].bias.zero_()
    return net.to(dtype)


def revival_demo(steps: int = 60, lr: float = 0.05, n: int = 50) -> RevivalTrace:
    """Train :func:`revival_network` on ``y = 3x`` with plain gradient descent, watching unit 1 of layer 2.

    While the unit is dead its own weights and bias receive exactly zero gradient;
    it revives only because layer 1 (trained through the other unit) changes its input.
    """
    net = revival_network()
    X = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    y = 3 * X
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    rec: dict[str, list[float]] = {k: [] for k in ("positive", "own_grad", "input_max", "loss")}
    for _ in range(steps + 1):
        opt.zero_grad()
        h = net[1](net[0](X))
        z = net[2](h)
        loss = ((net[4](net[3](z)) - y) ** 2).mean()
        loss.backward()
        g = torch.cat([net[2].weight.grad[1], net[2].bias.grad[1:]])
        rec["positive"].append(float((z.detach()[:, 1] > 0).sum()))
        rec["own_grad"].append(float(g.norm()))
        rec["input_max"].append(float(h.detach().max()))
        rec["loss"].append(float(loss.detach()))
        opt.step()
    return RevivalTrace(steps=np.arange(steps + 1), **{k: np.array(v) for k, v in rec.items()})
