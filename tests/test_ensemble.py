"""Batched ensemble training: every member trains exactly as the same network trained alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actlab.ensemble import (
    EnsembleMLP,
    Member,
    build_member,
    epoch_batches,
    members_grid,
    train_ensemble,
    train_single,
)

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


def test_float32_agrees_with_plain_adam_loop() -> None:
    """In float32 (the chapters' precision, where CPU kernels may take other paths than in
    float64), with torch.optim.Adam's default (foreach) path: every activation of the
    course agrees to float tolerance."""
    from actlab.engine.activations import names

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


def test_forward_equals_member_modules_and_hidden_shapes() -> None:
    X, _ = data()
    model = EnsembleMLP(MEMBERS, 2, WIDTH, DEPTH, 2, dtype=torch.float64)
    Xt = torch.tensor(X)
    out, hidden = model(Xt, return_hidden=True)
    assert out.shape == (len(MEMBERS), len(X), 2)
    assert [h.shape for h in hidden] == [(len(MEMBERS), len(X), WIDTH)] * DEPTH
    for i in range(len(MEMBERS)):
        torch.testing.assert_close(out[i], model.member_module(i)(Xt))


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


# ---------------------------------------------------------------------------
# Hidden biases, LayerNorm, per-member data and probes (chapters 4 to 6)
# ---------------------------------------------------------------------------

EXTRA_MEMBERS = [
    Member(seed=0, activation="relu", lr=1e-2, norm="layer"),
    Member(seed=1, activation="relu", lr=1e-2, bias=-0.7),
    Member(seed=2, activation="gelu", lr=5e-3, init="he", bias=0.1, norm="layer"),
    Member(seed=3, activation="tanh", lr=2e-2),
]


def test_bias_fills_every_hidden_layer_but_not_the_output() -> None:
    net = build_member(Member(seed=4, bias=-5.0), 2, WIDTH, DEPTH, 1)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for layer in linears[:-1]:
        assert torch.all(layer.bias == -5.0)
    assert not torch.all(linears[-1].bias == -5.0)
    plain = build_member(Member(seed=4), 2, WIDTH, DEPTH, 1)
    for a, b in zip(linears, [m for m in plain if isinstance(m, torch.nn.Linear)], strict=True):
        torch.testing.assert_close(a.weight, b.weight)  # same weights, only biases differ


def test_layer_norm_sits_before_each_activation() -> None:
    net = build_member(Member(seed=0, norm="layer"), 2, WIDTH, DEPTH, 1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LayerNorm", "ReLU"] * DEPTH + ["Linear"]
    with pytest.raises(ValueError, match="unknown norm"):
        EnsembleMLP([Member(0, norm="batch")], 2, 2, 1, 1)


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


def test_members_grid_covers_biases_and_norms() -> None:
    grid = members_grid(range(2), ["relu"], biases=[None, 0.1], norms=["none", "layer"])
    assert len(grid) == 8
    assert {(m.bias, m.norm) for m in grid} == {
        (b, n) for b in (None, 0.1) for n in ("none", "layer")
    }


# ---------------------------------------------------------------------------
# The fused pieces of a step: grouped activations and the stacked optimiser
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grouped_activation_is_bit_for_bit_each_module(dtype: torch.dtype) -> None:
    """Every registry activation (and the identity) in one grouped node: outputs and input
    gradients equal, exactly, those of the activation's own module on its members."""
    from actlab.engine.activations import names
    from actlab.engine.models import activation_module
    from actlab.ensemble import _GroupedActivation, _kernels

    acts = [*names(), "none"]
    runs, start = [], 0
    for i, name in enumerate(acts):
        phi = activation_module(name)
        assert _kernels(phi) is not None, name  # no activation of the course falls back
        runs.append((start, start + 1 + i % 2, phi, _kernels(phi)))
        start += 1 + i % 2
    gen = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(start, 7, 5, generator=gen, dtype=dtype)).requires_grad_(True)
    with torch.no_grad():
        z[:, 0, :2] = 0.0  # the kinks, where the derivative is a convention
    g = torch.randn(start, 7, 5, generator=gen, dtype=dtype)
    out = _GroupedActivation.apply(z, runs)
    (grad,) = torch.autograd.grad(out, z, g)
    for s, e, phi, _ in runs:
        zs = z.detach()[s:e].clone().requires_grad_(True)
        ref = phi(zs)
        (ref_grad,) = torch.autograd.grad(ref, zs, g[s:e])
        assert torch.equal(out[s:e], ref), type(phi).__name__
        assert torch.equal(grad[s:e], ref_grad), type(phi).__name__
    with torch.no_grad():  # inference takes the same kernels
        assert torch.equal(_GroupedActivation.apply(z, runs), out.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_read_only_what_uses_says(dtype: torch.dtype) -> None:
    """What the hand-written step keeps for each activation is enough, bit for bit:
    a ``"y"`` backward never reads the input; a ``"d"`` backward is the gradient times its
    own derivative taken of ones (which the forward pass precomputes), for special
    values too."""
    from actlab.engine.activations import names
    from actlab.engine.models import activation_module
    from actlab.ensemble import _kernels

    gen = torch.Generator().manual_seed(5)
    z = 4 * torch.randn(3, 50, 8, generator=gen, dtype=dtype)
    z[0, 0, :6] = torch.tensor([0.0, -0.0, 1e-30, -1e30, float("inf"), float("-inf")])
    g = torch.randn(3, 50, 8, generator=gen, dtype=dtype)
    g[0, 1, :4] = torch.tensor([0.0, float("inf"), float("nan"), 1e-38])
    seen = set()
    for name in [*names(), "none"]:
        phi = activation_module(name)
        forward, backward, uses = _kernels(phi)
        seen.add(uses)
        y = torch.empty_like(z)
        forward(z, y)
        ref = torch.empty_like(z)
        backward(g, z, y, ref)
        got = torch.empty_like(z)
        if uses == "y":
            backward(g, None, y, got)
        elif uses == "d":
            d = torch.empty_like(z)
            backward(torch.ones_like(z), z, y, d)
            torch.mul(g, d, out=got)
        else:
            backward(g, z, y, got)
        torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True, msg=name)
    assert seen == {"y", "d", "z", ""}  # the course's activations take every path


def test_mse_gradient_written_out_is_autograd_s() -> None:
    """The hand-written step's MSE gradient equals autograd's bit for bit."""
    from actlab.ensemble import _loss_and_grad, _loss_per_member

    gen = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float64):
        for shape, y_shape in (((20, 200, 1), (200, 1)), ((3, 37, 3), (3, 37, 3))):
            out = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
            y = torch.randn(y_shape, generator=gen, dtype=dtype)
            ref = _loss_per_member(out, y, "mse")
            (ref_grad,) = torch.autograd.grad(ref.sum(), out)
            per_member, grad = _loss_and_grad(out.detach(), y, "mse")
            assert torch.equal(per_member, ref.detach()), (dtype, shape)
            assert torch.equal(grad, ref_grad), (dtype, shape)


def test_grouped_activation_falls_back_for_other_modules() -> None:
    """A module without known kernels (here Hardswish) runs through its own autograd graph."""
    from actlab.ensemble import _GroupedActivation, _kernels

    other, relu = torch.nn.Hardswish(), torch.nn.ReLU()
    assert _kernels(other) is None
    runs = [(0, 2, other, None), (2, 3, relu, _kernels(relu))]
    z = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    out = _GroupedActivation.apply(z, runs)
    ref = torch.cat([other(z[:2]), relu(z[2:])])
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out, z, g)
    (ref_grad,) = torch.autograd.grad(ref, z, g)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)


@pytest.mark.parametrize("kind, momentum", [("adam", 0.0), ("sgd", 0.0), ("sgd", 0.9)])
def test_fused_and_foreach_optimisers_agree(kind: str, momentum: float) -> None:
    """The fused kernels (grouped by learning rate) and the foreach path give the same steps."""
    from actlab.ensemble import _StackedOptimizer

    lrs = torch.tensor([1e-2, 1e-2, 3e-3, 1e-2, 5e-2], dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    shapes = [(5, 3, 4), (5, 1, 4), (5, 4, 1)]
    runs = {}
    for fused in (True, False):
        params = [
            torch.nn.Parameter(
                torch.randn(s, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
            )
            for s in shapes
        ]
        opt = _StackedOptimizer(params, lrs, kind=kind, momentum=momentum, fused=fused)
        assert opt.fused is fused
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            opt.step()
        runs[fused] = [p.detach().clone() for p in params]
        gen = torch.Generator().manual_seed(1)
    assert set(_StackedOptimizer(params, lrs).lr_runs) == {1e-2, 3e-3, 5e-2}
    for a, b in zip(runs[True], runs[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="one learning rate per member"):
        _StackedOptimizer(params, lrs[:3])


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


@pytest.mark.parametrize("width", [5, 64])
def test_hand_written_step_applies_each_module_as_it_would(width: int) -> None:
    """In float32 and in the step's own buffers (pre-activations written in place or
    into a scratch tensor, outputs in rows beside a column of ones), every hidden
    activation is what the member's module gives on the same pre-activations, and each
    derivative that reads the output gives from that strided buffer what it gives from
    a contiguous copy: bit for bit at width 64. At width 5 a row is shorter than the
    CPU's vector loop, so the kernels take their scalar path (as they do on the last
    elements of a tensor whose size is not a multiple of it): equal to rounding."""
    from actlab.engine.activations import names
    from actlab.ensemble import _HandStep

    def same(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
        if width == 64:
            assert torch.equal(got, ref), f"{what}: largest difference {(got - ref).abs().max()}"
        else:
            torch.testing.assert_close(got, ref, msg=what)

    members = [Member(seed=i, activation=a) for i, a in enumerate([*names(), "none", "gelu"])]
    X, y = data(40)
    model = EnsembleMLP(members, X.shape[1], width, DEPTH, y.shape[1], dtype=torch.float32)
    hand = _HandStep(model, chunk=len(members))  # one chunk: the buffers hold every member
    x = 3 * torch.tensor(X, dtype=torch.float32)  # pre-activations well beyond [-1, 1]
    hand(x, torch.tensor(y, dtype=torch.float32), "mse")
    bufs = hand._buffers[len(X)]
    gen = torch.Generator().manual_seed(11)
    h = bufs["x1"]
    for k in range(DEPTH):
        z = torch.bmm(h, hand.layers[k])  # contiguous, as nn.Linear's output is
        y_k = bufs["a"][k][..., :-1]
        assert not y_k.is_contiguous()
        for s, e, phi, (_, backward, uses) in model._runs:
            name = f"layer {k}, {type(phi).__name__}"
            same(y_k[s:e], phi(z[s:e]), name)
            if uses == "y":
                g = torch.randn(e - s, len(X), width, generator=gen)
                got, ref = torch.empty_like(g), torch.empty_like(g)
                backward(g, None, y_k[s:e], got)
                backward(g, None, y_k[s:e].contiguous(), ref)
                same(got, ref, f"{name}, derivative")
        h = bufs["a"][k]


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_hand_written_step_gives_autograds_gradients(loss: str) -> None:
    """The step train_ensemble takes for members without norms: every activation of the
    course in runs, per-member inputs, the same weight and bias gradients as autograd."""
    from actlab.engine.activations import names
    from actlab.ensemble import _HandStep

    members = [Member(seed=i, activation=a) for i, a in enumerate([*names(), "none", "relu"])]
    E, (X, y) = len(members), data()
    gen = torch.Generator().manual_seed(3)
    Xe = torch.tensor(X).expand(E, *X.shape) + 0.1 * torch.randn(
        E, *X.shape, generator=gen, dtype=torch.float64
    )
    ye = torch.tensor(y) if loss == "mse" else torch.randint(0, 3, (E, len(X)), generator=gen)
    ref = EnsembleMLP(
        members, 2, WIDTH, DEPTH, ye.shape[-1] if loss == "mse" else 3, dtype=torch.float64
    )
    model = EnsembleMLP(
        members, 2, WIDTH, DEPTH, ye.shape[-1] if loss == "mse" else 3, dtype=torch.float64
    )
    hand = _HandStep(model)
    from actlab.ensemble import _loss_per_member

    for x in (Xe, torch.tensor(X)):
        for p in ref.params:
            p.grad = None
        expected = _loss_per_member(ref(x), ye, loss)
        expected.sum().backward()
        got = hand(x, ye, loss)
        torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-14)
        for k, packed in enumerate(hand.layers):
            torch.testing.assert_close(
                packed.grad[:, :-1], ref.weights[k].grad, rtol=1e-10, atol=1e-13
            )
            torch.testing.assert_close(
                packed.grad[:, -1:], ref.biases[k].grad, rtol=1e-10, atol=1e-13
            )
            # the model's own weights are views of the packed tensors
            assert model.weights[k].data_ptr() == packed.data_ptr()
            torch.testing.assert_close(model.biases[k], ref.biases[k], rtol=0, atol=0)


@pytest.mark.parametrize("batch_size", [None, 10])
def test_members_trained_in_chunks_match_networks_trained_alone(
    monkeypatch: pytest.MonkeyPatch, batch_size: int | None
) -> None:
    """train_ensemble with a cache so small that the step takes its members two at a
    time (with batches of 10, 10 and 4 examples: buffers for each size): every member
    still trains as the same network alone."""
    from actlab import ensemble

    spans = []

    def recording(runs, most):  # noqa: ANN001, ANN202
        spans.append(ensemble_chunks(runs, most))
        return spans[-1]

    ensemble_chunks = ensemble.chunk_members
    monkeypatch.setattr(ensemble, "l2_cache_bytes", lambda: 1)
    monkeypatch.setattr(ensemble, "chunk_members", recording)
    X, y = data()
    res = train_ensemble(
        MEMBERS, X, y, depth=DEPTH, width=WIDTH, num_epochs=EPOCHS, batch_size=batch_size,
        data_seed=3, device="cpu", dtype=torch.float64, progress=False,
    )  # fmt: skip
    assert spans and all(s == [(0, 2), (2, 4), (4, 6)] for s in spans), spans
    assert len(spans) == (1 if batch_size is None else 2)  # one set of buffers per batch size
    for i, member in enumerate(MEMBERS):
        assert_trains_as_alone(res, i, member, X, y, "adam", batch_size=batch_size)


def test_chunk_members_covers_the_ensemble_and_cuts_a_run_only_where_it_must() -> None:
    from actlab.ensemble import chunk_members

    assert chunk_members([(0, 5), (5, 10), (10, 15), (15, 20)], 11) == [(0, 10), (10, 20)]
    assert chunk_members([(0, 50), (50, 100)], 11) == [(s, s + 10) for s in range(0, 100, 10)]
    assert chunk_members([(0, 1)], 1) == [(0, 1)]  # one member: a chunk of one
    with pytest.raises(ValueError, match="at least one member"):
        chunk_members([(0, 4)], 0)
    rng = np.random.default_rng(4)
    for _ in range(500):
        edges = np.concatenate([[0], np.cumsum(rng.integers(1, 9, size=rng.integers(1, 7)))])
        runs = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
        most, E = int(rng.integers(1, 12)), int(edges[-1])
        spans = chunk_members(runs, most)
        where = f"runs {runs}, most {most}: {spans}"
        assert spans[0][0] == 0 and spans[-1][1] == E, where  # every member, in order
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), where  # no gap, no overlap
        # no chunk of one member where there are more (a batch of one rounds differently),
        # and a chunk is over the budget only by the lone members it took in
        assert E == 1 or all(2 <= e - s <= most + 2 for s, e in spans), where
        for s, e in runs:
            cuts = sum(s < c < e for c, _ in spans)
            assert cuts <= -(-(e - s) // most) - 1, where  # none if the run fits in a chunk


def test_members_per_chunk_fits_a_layer_of_work_in_a_cores_level_2_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actlab import ensemble
    from actlab.engine.device import cpu_threads

    cpu = torch.device("cpu")
    model = EnsembleMLP([Member(seed=i) for i in range(30)], 3, 64, 4, 1)
    # The widest layer is 64 -> 64: per member on 100 examples in float32, its input and
    # output with their columns of ones, its gradient, and its weights and their gradient.
    per_member = 4 * (100 * 65 + 100 * 65 + 100 * 64 + 2 * 65 * 64)
    monkeypatch.setattr(ensemble, "l2_cache_bytes", lambda: 10 * per_member + 5)
    hand = ensemble._HandStep(model)
    assert hand.members_per_chunk(100, cpu) == 10
    with cpu_threads(2):  # one core's cache whatever the threads: the same chunks
        assert hand.members_per_chunk(100, cpu) == 10
    assert hand.members_per_chunk(25, cpu) > 10  # smaller batches, more members a chunk
    monkeypatch.setattr(ensemble, "l2_cache_bytes", lambda: per_member // 2)
    assert hand.members_per_chunk(100, cpu) == 1
    monkeypatch.setattr(ensemble, "l2_cache_bytes", lambda: None)  # unknown: 1 MiB
    assert hand.members_per_chunk(100, cpu) == (1 << 20) // per_member
    assert hand.members_per_chunk(100, torch.device("cuda")) == 30  # no chunks off the CPU
    assert ensemble._HandStep(model, chunk=7).members_per_chunk(100, cpu) == 7
    with pytest.raises(ValueError, match="positive number of members"):
        ensemble._HandStep(model, chunk=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_chunked_step_is_the_unchunked_step(dtype: torch.dtype, loss: str) -> None:
    """Members taken through the step in chunks, each chunk's forward and backward pass
    before the next, with inputs and targets shared or one set per member: where no run
    of an activation is cut, every member's losses, gradients and weights over a few
    Adam steps are those of the step that takes all members at once, bit for bit; where
    a run is cut into pieces, equal to rounding."""
    from actlab.engine.activations import names
    from actlab.ensemble import _HandStep, _StackedOptimizer

    acts = [a for name in [*names(), "none"] for a in (name, name)] + ["softplus"] * 5
    members = [Member(seed=i, activation=a) for i, a in enumerate(acts)]
    E, (X, y) = len(members), data(40)
    gen = torch.Generator().manual_seed(8)
    x = torch.tensor(X, dtype=dtype)
    xe = x.expand(E, *X.shape) + 0.1 * torch.randn(E, *X.shape, generator=gen, dtype=dtype)
    if loss == "mse":
        t = torch.tensor(y, dtype=dtype)
        te = t + 0.1 * torch.randn(E, *y.shape, generator=gen, dtype=dtype)
    else:
        t, te = (
            torch.randint(0, 3, (len(X),), generator=gen),
            torch.randint(0, 3, (E, len(X)), generator=gen),
        )

    def train(chunk: int):
        model = EnsembleMLP(members, 2, 16, DEPTH, 2 if loss == "mse" else 3, dtype=dtype)
        hand = _HandStep(model, chunk=chunk)
        opt = _StackedOptimizer(hand.layers, torch.full((E,), 1e-2, dtype=dtype))
        losses, grads = [], []
        for step in range(6):
            losses.append(hand(*((xe, te) if step % 2 else (x, t)), loss))
            grads += [p.grad.clone() for p in hand.layers]
            opt.step()
        spans = [c["span"] for c in hand._buffers[len(X)]["chunks"]]
        return spans, [torch.stack(losses), *grads, *hand.layers]

    spans, ref = train(E)
    assert spans == [(0, E)]
    for chunk, cut in ((2, True), (4, True), (12, False)):
        spans, got = train(chunk)
        assert len(spans) > 1, spans
        assert any(s < c < e for c, _ in spans for s, e in [(E - 5, E)]) == cut, spans
        for i in range(E):
            for a, b in zip(got, ref, strict=True):
                a, b = (a[:, i], b[:, i]) if a.dim() == 2 else (a[i], b[i])  # losses: (steps, E)
                what = f"chunks {spans}, member {i} ({acts[i]})"
                if cut and i >= E - 5:  # the run that was cut
                    torch.testing.assert_close(a, b, msg=what)
                else:
                    assert torch.equal(a, b), f"{what}: largest difference {(a - b).abs().max()}"
