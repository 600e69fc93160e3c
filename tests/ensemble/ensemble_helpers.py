"""What the ensemble's tests share: data, members, and the network trained alone to compare with."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from actlab.ensemble import Member, build_member, epoch_batches

DEPTH, WIDTH, EPOCHS = 3, 8, 15


def data(n: int = 24, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.stack([np.sin(X[:, 0]) * X[:, 1], np.cos(X[:, 1])], axis=1)
    return X, y


def train_alone(
    member: Member,
    X: np.ndarray,
    y: np.ndarray,
    optimizer: str,
    momentum: float = 0.0,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[np.ndarray, list[list[torch.Tensor]], torch.nn.Module]:
    """An ordinary training loop with torch.optim: the reference the ensemble must match."""
    net = build_member(member, X.shape[1], WIDTH, DEPTH, y.shape[1], dtype=dtype)
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=member.lr, foreach=False)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=member.lr, momentum=momentum, foreach=False)
    Xt, yt = torch.tensor(X, dtype=dtype), torch.tensor(y, dtype=dtype)
    losses, grads = [], []
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for epoch in range(EPOCHS):
        batches = epoch_batches(len(X), batch_size, epoch, data_seed=3)
        epoch_losses = []
        for b, idx in enumerate(batches if batches is not None else [None]):
            xb, yb = (Xt, yt) if idx is None else (Xt[idx], yt[idx])
            opt.zero_grad()
            loss = F.mse_loss(net(xb), yb)
            loss.backward()
            if b == 0:
                grads.append([layer.weight.grad.detach().clone() for layer in linears])
            opt.step()
            epoch_losses.append(loss.item())
        losses.append(np.mean(epoch_losses))
    return np.array(losses), grads, net


def assert_trains_as_alone(
    res, i: int, member: Member, X, y, optimizer: str, momentum: float = 0.0, batch_size=None
) -> None:
    """Member ``i`` of ``res`` has the losses, gradient norms and weights of the network alone."""
    losses, grads, net = train_alone(member, X, y, optimizer, momentum, batch_size)
    np.testing.assert_allclose(res.losses[:, i], losses, rtol=1e-9, atol=1e-12)
    ref_norms = np.array([[g.norm().item() for g in epoch] for epoch in grads])
    np.testing.assert_allclose(res.grad_norms[:, i, :], ref_norms, rtol=1e-8, atol=1e-14)
    # Trained weights equal too (so every gradient along the way was the same).
    trained = res.model.member_module(i)
    for p, q in zip(trained.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


MEMBERS = [
    Member(seed=0, activation="sigmoid", lr=1e-2),
    Member(seed=1, activation="sigmoid", lr=3e-3, init="xavier"),
    Member(seed=2, activation="relu", lr=1e-2, init="he"),
    Member(seed=3, activation="gelu", lr=5e-3),
    Member(seed=4, activation="tanh", lr=2e-2, init="normal:0.5"),
    Member(seed=0, activation="sigmoid", lr=1e-3),
]


EXTRA_MEMBERS = [
    Member(seed=0, activation="relu", lr=1e-2, norm="layer"),
    Member(seed=1, activation="relu", lr=1e-2, bias=-0.7),
    Member(seed=2, activation="gelu", lr=5e-3, init="he", bias=0.1, norm="layer"),
    Member(seed=3, activation="tanh", lr=2e-2),
]
