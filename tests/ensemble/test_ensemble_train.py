"""Batched ensemble training: every member trains exactly as the same network trained alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ensemble_helpers import (
    DEPTH,
    EPOCHS,
    EXTRA_MEMBERS,
    MEMBERS,
    WIDTH,
    assert_trains_as_alone,
    data,
    train_alone,
)

from actlab.engine.activations import names
from actlab.ensemble import (
    EnsembleMLP,
    Member,
    build_member,
    members_grid,
    train_ensemble,
    train_single,
)


@pytest.mark.parametrize(
    "optimizer, momentum, batch_size",
    [("adam", 0.0, None), ("sgd", 0.0, None), ("sgd", 0.9, None), ("adam", 0.0, 10)],
)
def test_member_matches_network_trained_alone(
    optimizer: str, momentum: float, batch_size: int | None
) -> None:
    X, y = data()
    res = train_ensemble(
        MEMBERS,
        X,
        y,
        depth=DEPTH,
        width=WIDTH,
        num_epochs=EPOCHS,
        optimizer=optimizer,
        momentum=momentum,
        batch_size=batch_size,
        data_seed=3,
        device="cpu",
        dtype=torch.float64,
        progress=False,
    )
    assert res.losses.shape == (EPOCHS, len(MEMBERS))
    assert res.grad_norms.shape == (EPOCHS, len(MEMBERS), DEPTH + 1)
    for i, member in enumerate(MEMBERS):
        assert_trains_as_alone(res, i, member, X, y, optimizer, momentum, batch_size)


def test_float32_agrees_with_plain_adam_loop() -> None:
    """In float32 (the chapters' precision, where CPU kernels may take other paths than in
    float64), with torch.optim.Adam's default (foreach) path: every activation of the
    course agrees to float tolerance."""
    X, y = data()
    members = members_grid(range(2), activations=names(), lrs=(1e-2,))
    res = train_ensemble(
        members, X, y, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, device="cpu", progress=False
    )
    for i, member in enumerate(members):
        alone = train_single(
            member, X, y, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, device="cpu"
        )
        np.testing.assert_allclose(res.losses[:, i], alone, rtol=2e-4, atol=1e-6)


def test_cross_entropy_members_match() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    members = [Member(seed=s, activation="relu", lr=1e-2) for s in range(2)]
    res = train_ensemble(
        members,
        X,
        labels,
        depth=2,
        width=6,
        num_epochs=5,
        loss="ce",
        device="cpu",
        dtype=torch.float64,
        progress=False,
    )
    for i, m in enumerate(members):
        net = build_member(m, 3, 6, 2, 3, dtype=torch.float64)
        opt = torch.optim.Adam(net.parameters(), lr=m.lr)
        Xt, yt = torch.tensor(X), torch.tensor(labels)
        for epoch in range(5):
            opt.zero_grad()
            loss = F.cross_entropy(net(Xt), yt)
            loss.backward()
            opt.step()
            assert res.losses[epoch, i] == pytest.approx(loss.item(), rel=1e-9)


def test_grid_selection_and_recorded_epochs() -> None:
    members = members_grid(range(2), activations=("relu", "tanh"), lrs=(1e-3, 1e-2))
    assert len(members) == 8 and [m.seed for m in members[:2]] == [0, 1]
    X, y = data()
    res = train_ensemble(
        members,
        X,
        y,
        depth=2,
        width=4,
        num_epochs=6,
        grad_epochs=[0, 5, 99],
        device="cpu",
        progress=False,
    )
    assert list(res.grad_epochs) == [0, 5]
    assert res.grad_norms.shape == (2, 8, 3)
    assert list(res.where(activation="tanh", lr=1e-2)) == [6, 7]
    assert np.all(np.isfinite(res.losses)) and "cpu" in res.device


def test_rejects_bad_arguments() -> None:
    X, y = data()
    with pytest.raises(ValueError, match="optimizer"):
        train_ensemble(
            [Member(0)], X, y, depth=1, width=2, num_epochs=1, optimizer="rmsprop", progress=False
        )
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleMLP([], 2, 2, 1, 1)
    with pytest.raises(ValueError, match="unknown activation"):
        EnsembleMLP([Member(0, activation="nope")], 2, 2, 1, 1)
    with pytest.raises(ValueError, match="unknown loss"):
        train_ensemble([Member(0)], X, y, depth=1, width=2, num_epochs=1, loss="l1", progress=False)
    with pytest.raises(ValueError, match="unknown loss"):
        train_single(Member(0), X, y, depth=1, width=2, num_epochs=1, loss="l1", device="cpu")
    # one network trains on one set: no leading member axis
    with pytest.raises(ValueError, match="X has shape"):
        train_single(Member(0), X[None], y, depth=1, width=2, num_epochs=1, device="cpu")
    with pytest.raises(ValueError, match="different numbers of examples"):
        train_single(Member(0), X, y[:-1], depth=1, width=2, num_epochs=1, device="cpu")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_norm_and_bias_members_match_networks_trained_alone(optimizer: str) -> None:
    X, y = data()
    res = train_ensemble(
        EXTRA_MEMBERS, X, y, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, optimizer=optimizer,
        data_seed=3, device="cpu", dtype=torch.float64, progress=False,
    )  # fmt: skip
    for i, member in enumerate(EXTRA_MEMBERS):
        assert_trains_as_alone(res, i, member, X, y, optimizer)


def test_members_train_on_data_of_their_own() -> None:
    """X (E, N, in) and y (E, N, out): member i trains exactly as alone on (X[i], y[i])."""
    rng = np.random.default_rng(11)
    members = EXTRA_MEMBERS[:3]
    Xs = rng.uniform(-2, 2, size=(3, 24, 2))
    ys = np.stack([np.sin(Xs[0, :, :1]), np.abs(Xs[1, :, :1]), Xs[2, :, 1:] ** 3])
    res = train_ensemble(
        members, Xs, ys, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, batch_size=10,
        data_seed=3, device="cpu", dtype=torch.float64, progress=False,
    )  # fmt: skip
    for i, member in enumerate(members):
        losses, _, _ = train_alone(member, Xs[i], ys[i], "adam", batch_size=10)
        np.testing.assert_allclose(res.losses[:, i], losses, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="sets for"):
        train_ensemble(members[:2], Xs, ys, depth=1, width=2, num_epochs=1, progress=False)


def test_probes_see_the_weights_after_that_many_epochs() -> None:
    X, y = data()
    member = EXTRA_MEMBERS[1]

    def probe(model: EnsembleMLP, Xt: torch.Tensor) -> list[np.ndarray]:
        assert not torch.is_grad_enabled()
        _, pre, _ = model.trace(Xt)
        return [z.numpy().copy() for z in pre]

    res = train_ensemble(
        [member], X, y, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, probe=probe,
        probe_epochs=[0, 4, EPOCHS, EPOCHS + 3], device="cpu", dtype=torch.float64,
        progress=False,
    )  # fmt: skip
    assert list(res.probes) == [0, 4, EPOCHS]
    # the same network trained alone for 0, 4 and EPOCHS epochs
    net = build_member(member, 2, WIDTH, DEPTH, 2, dtype=torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=member.lr, foreach=False)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for epoch in range(EPOCHS + 1):
        if epoch in res.probes:
            h = Xt
            with torch.no_grad():
                for k, layer in enumerate(linears[:-1]):
                    z = layer(h)
                    np.testing.assert_allclose(res.probes[epoch][k][0], z.numpy(), rtol=1e-9)
                    h = torch.relu(z)
        if epoch < EPOCHS:
            opt.zero_grad()
            F.mse_loss(net(Xt), yt).backward()
            opt.step()


def test_train_single_cross_entropy_with_batches_matches_the_ensemble() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    member = Member(seed=7, activation="silu", lr=1e-2, norm="layer")
    res = train_ensemble(
        [member], X, labels, depth=2, width=6, num_epochs=6, loss="ce", batch_size=16,
        data_seed=5, device="cpu", progress=False,
    )  # fmt: skip
    alone = train_single(
        member, X, labels, depth=2, width=6, num_epochs=6, loss="ce", batch_size=16,
        data_seed=5, device="cpu",
    )  # fmt: skip
    np.testing.assert_allclose(res.losses[:, 0], alone, rtol=2e-4, atol=1e-6)


def test_results_do_not_depend_on_the_thread_count() -> None:
    """What train_ensemble's docstring promises for cpu_threads="auto": the same numbers."""
    X, y = data(n=64)
    members = members_grid(range(3), activations=("sigmoid", "relu", "gelu"), lrs=(1e-2,))
    kw = dict(depth=DEPTH, width=32, num_epochs=5, device="cpu", progress=False)
    one = train_ensemble(members, X, y, cpu_threads=1, **kw)
    two = train_ensemble(members, X, y, cpu_threads=2, **kw)
    assert one.device == "cpu (1 thread)" and two.device == "cpu (2 threads)"
    np.testing.assert_array_equal(one.losses, two.losses)
    for a, b in zip(one.model.params, two.model.params, strict=True):
        assert torch.equal(a, b)
