"""The stacked network: every member computes what its own network computes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ensemble_helpers import DEPTH, MEMBERS, WIDTH, data

from actlab.ensemble import EnsembleMLP, build_member


def test_first_gradients_equal_elementwise() -> None:
    """Not only the norms: the full weight gradients at initialisation agree entry by entry."""
    X, y = data()
    model = EnsembleMLP(MEMBERS, 2, WIDTH, DEPTH, 2, dtype=torch.float64)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    ((model(Xt) - yt) ** 2).mean(dim=(1, 2)).sum().backward()
    for i, member in enumerate(MEMBERS):
        net = build_member(member, 2, WIDTH, DEPTH, 2, dtype=torch.float64)
        F.mse_loss(net(Xt), yt).backward()
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        for k, layer in enumerate(linears):
            torch.testing.assert_close(
                model.weights[k].grad[i].T, layer.weight.grad, rtol=1e-10, atol=1e-12
            )
            torch.testing.assert_close(
                model.biases[k].grad[i, 0], layer.bias.grad, rtol=1e-10, atol=1e-12
            )


def test_forward_equals_member_modules_and_hidden_shapes() -> None:
    X, _ = data()
    model = EnsembleMLP(MEMBERS, 2, WIDTH, DEPTH, 2, dtype=torch.float64)
    Xt = torch.tensor(X)
    out, hidden = model(Xt, return_hidden=True)
    assert out.shape == (len(MEMBERS), len(X), 2)
    assert [h.shape for h in hidden] == [(len(MEMBERS), len(X), WIDTH)] * DEPTH
    for i in range(len(MEMBERS)):
        torch.testing.assert_close(out[i], model.member_module(i)(Xt))
