"""Residual and gated members: each stacked member equals its network alone, at init and in training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ensemble_helpers import data

from actlab.engine.blocks import ResidualNet, draw_linears_, linears_numel, residual_net
from actlab.engine.models import INIT_SCHEMES, linear_layers
from actlab.ensemble import (
    EnsembleMLP,
    EnsembleResidual,
    Member,
    block_gradient_norms_at_init,
    build_member,
    members_grid,
    stream_variances,
    train_ensemble,
)

IN, WIDTH, DEPTH, OUT, BRANCH = 2, 6, 3, 2, 5


def mixed(block: str) -> list[Member]:
    """Members that differ in activation, norm, init, bias and branch."""
    return [
        Member(seed=0, activation="relu", block=block),
        Member(seed=1, activation="gelu", norm="layer", init="he", block=block),
        Member(seed=2, activation="silu", branch="scaled", block=block),
        Member(seed=3, activation="sigmoid", norm="layer", bias=0.1, block=block),
        Member(seed=4, activation="tanh", init="xavier", branch="scaled", block=block),
        Member(seed=5, activation="softplus", norm="layer", init="normal:0.4", block=block),
    ]


@pytest.mark.parametrize("init", [*INIT_SCHEMES, "normal:0.3"])
def test_drawn_linears_are_those_of_the_modules(init: str) -> None:
    torch.manual_seed(3)
    net = residual_net(3, 8, 4, 2, "gelu", "gated", "layer", 5, init=init)
    layers = linear_layers(net)
    dims = [(layer.in_features, layer.out_features) for layer in layers]
    torch.manual_seed(3)
    flat = torch.empty(linears_numel(dims))
    draw_linears_(flat, dims, init)
    ref = torch.cat([t.detach().flatten() for layer in layers for t in (layer.weight, layer.bias)])
    assert torch.equal(flat, ref)


@pytest.mark.parametrize("block", ["residual", "gated"])
@pytest.mark.parametrize("norms", ["mixed", "none", "layer"])
def test_stacked_member_equals_its_network(block: str, norms: str) -> None:
    members = mixed(block)
    if norms != "mixed":
        members = [Member(**{**vars(m), "norm": norms}) for m in members]
    X, y = data()
    Xt, yt = torch.tensor(X), torch.tensor(y)
    model = EnsembleResidual(members, IN, WIDTH, DEPTH, OUT, BRANCH, dtype=torch.float64)
    assert len(model.weights) == 2 + DEPTH * (3 if block == "gated" else 2)
    out, stream = model.trace(Xt)
    assert out.shape == (len(members), len(X), OUT) and len(stream) == DEPTH + 1
    F.mse_loss(out, yt.expand_as(out), reduction="none").mean(dim=(1, 2)).sum().backward()
    for i, m in enumerate(members):
        net = build_member(m, IN, WIDTH, DEPTH, OUT, torch.float64, branch_width=BRANCH)
        assert isinstance(net, ResidualNet)
        # The same initial weights, exactly, and the same module back.
        for p, q in zip(model.member_module(i).parameters(), net.parameters(), strict=True):
            assert torch.equal(p, q)
        ref = net(Xt)
        torch.testing.assert_close(out[i], ref, rtol=1e-10, atol=1e-10)
        for h, r in zip(stream, net.streams(Xt), strict=True):
            torch.testing.assert_close(h[i], r, rtol=1e-10, atol=1e-10)
        F.mse_loss(ref, yt).backward()
        for k, layer in enumerate(linear_layers(net)):
            torch.testing.assert_close(
                model.weights[k].grad[i], layer.weight.grad.T, atol=1e-10, rtol=1e-10
            )
            torch.testing.assert_close(
                model.biases[k].grad[i, 0], layer.bias.grad, atol=1e-10, rtol=1e-10
            )
        lns = [mod for mod in net.modules() if isinstance(mod, torch.nn.LayerNorm)]
        assert len(lns) == (DEPTH + 1 if m.norm == "layer" else 0)
        for k, ln in enumerate(lns):
            torch.testing.assert_close(
                model.norm_weights[k].grad[i, 0], ln.weight.grad, atol=1e-10, rtol=1e-10
            )
            torch.testing.assert_close(
                model.norm_biases[k].grad[i, 0], ln.bias.grad, atol=1e-10, rtol=1e-10
            )


def test_gated_block_is_the_product_of_two_maps() -> None:
    torch.manual_seed(0)
    net = residual_net(IN, WIDTH, 1, OUT, "silu", "gated", branch_width=BRANCH)
    blk, h = net.blocks[0], torch.randn(7, WIDTH)
    swiglu = F.silu(h @ blk.fc1.weight.T + blk.fc1.bias) * (h @ blk.gate.weight.T + blk.gate.bias)
    torch.testing.assert_close(blk(h), h + swiglu @ blk.fc2.weight.T + blk.fc2.bias)


@pytest.mark.parametrize("block", ["residual", "gated"])
def test_zero_branches_make_every_block_the_identity(block: str) -> None:
    X, _ = data(64)
    members = members_grid(
        range(2), ("relu", "gelu"), norms=("none", "layer"), blocks=(block,), branches=("zero",)
    )
    var = stream_variances(members, X, depth=12, width=8)
    assert var.shape == (len(members), 13)
    np.testing.assert_array_equal(var, np.repeat(var[:, :1], 13, axis=1))
    default = stream_variances(
        [Member(**{**vars(m), "branch": "default"}) for m in members], X, depth=12, width=8
    )
    assert (default[:, -1] > default[:, 0]).all()  # unscaled branches add variance


def test_scaled_branch_scales_the_last_layer() -> None:
    depth = 9
    nets = {
        br: build_member(
            Member(seed=7, activation="gelu", block="residual", branch=br), IN, WIDTH, depth, OUT
        )
        for br in ("default", "scaled", "zero")
    }
    for k in range(depth):
        a, b, z = (nets[br].blocks[k] for br in ("default", "scaled", "zero"))
        assert torch.equal(b.fc1.weight, a.fc1.weight)
        torch.testing.assert_close(b.fc2.weight, a.fc2.weight / math.sqrt(depth))
        assert torch.equal(b.fc2.bias, a.fc2.bias)
        assert not z.fc2.weight.any() and not z.fc2.bias.any()


def test_one_block_kind_per_ensemble() -> None:
    with pytest.raises(ValueError, match="block kind"):
        EnsembleResidual([Member(0, block="residual"), Member(1, block="gated")], IN, WIDTH, 2, OUT)
    with pytest.raises(ValueError, match="plain"):
        EnsembleMLP([Member(0, block="residual")], IN, WIDTH, 2, OUT)
    with pytest.raises(ValueError, match="unknown branch"):
        EnsembleResidual([Member(0, block="residual", branch="half")], IN, WIDTH, 2, OUT)


def test_members_grid_blocks_and_branches() -> None:
    grid = members_grid(
        range(2), ("relu",), blocks=("plain", "residual"), branches=("default", "zero")
    )
    assert len(grid) == 8 and grid[0].block == "plain" and grid[-1].block == "residual"
    assert [m.seed for m in grid[:2]] == [0, 1] and Member(0).block == "plain"


@pytest.mark.parametrize("block", ["plain", "residual", "gated"])
def test_block_gradient_norms_by_hand(block: str) -> None:
    X, y = data(32)
    members = [
        Member(seed=0, activation="gelu", block=block),
        Member(seed=1, activation="tanh", norm="layer", block=block),
    ]
    depth = 4
    rms = block_gradient_norms_at_init(
        members, X, y, depth=depth, width=WIDTH, branch_width=BRANCH, device="cpu"
    )
    assert rms.shape == (2, depth)
    var = stream_variances(members, X, depth=depth, width=WIDTH, branch_width=BRANCH, out_dim=2)
    assert var.shape == (2, depth if block == "plain" else depth + 1)
    for i, m in enumerate(members):
        net = build_member(m, IN, WIDTH, depth, OUT, branch_width=BRANCH)
        F.mse_loss(
            net(torch.tensor(X, dtype=torch.float32)), torch.tensor(y, dtype=torch.float32)
        ).backward()
        for k in range(depth):
            if block == "plain":
                ws = [linear_layers(net)[k].weight]
            else:
                blk = net.blocks[k]
                ws = [
                    blk.fc1.weight,
                    *([blk.gate.weight] if blk.gate is not None else []),
                    blk.fc2.weight,
                ]
            squares = sum(float((w.grad.double() ** 2).sum()) for w in ws)
            expect = math.sqrt(squares / sum(w.numel() for w in ws))
            np.testing.assert_allclose(rms[i, k], expect, rtol=1e-4)


TRAIN = dict(depth=DEPTH, width=WIDTH, branch_width=BRANCH, progress=False, device="cpu")


@pytest.mark.parametrize("block", ["residual", "gated"])
def test_member_trains_as_alone_with_adam(block: str) -> None:
    X, y = data()
    members = [Member(**{**vars(m), "lr": 1e-2 / (i + 1)}) for i, m in enumerate(mixed(block))]
    epochs = 12
    res = train_ensemble(members, X, y, num_epochs=epochs, dtype=torch.float64, **TRAIN)
    assert isinstance(res.model, EnsembleResidual)
    assert res.losses.shape == (epochs, len(members))
    assert res.grad_norms.shape == (epochs, len(members), len(res.model.weights))
    assert (res.losses[-1] < res.losses[0]).all() and not res.nonfinite_steps.any()
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for i in (0, 1, 3):  # the loop written out: torch.optim.Adam on the network alone
        net = build_member(members[i], IN, WIDTH, DEPTH, OUT, torch.float64, branch_width=BRANCH)
        opt = torch.optim.Adam(net.parameters(), lr=members[i].lr, foreach=False)
        losses, norms = [], []
        for _ in range(epochs):
            opt.zero_grad()
            loss = F.mse_loss(net(Xt), yt)
            loss.backward()
            norms.append([float(layer.weight.grad.norm()) for layer in linear_layers(net)])
            opt.step()
            losses.append(loss.item())
        np.testing.assert_allclose(res.losses[:, i], losses, rtol=1e-9)
        np.testing.assert_allclose(res.grad_norms[:, i], norms, rtol=1e-8)
        trained = res.model.member_module(i)
        for p, q in zip(trained.parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


def test_residual_training_lowers_the_loss_in_float32_with_batches() -> None:
    X, y = data(64)
    members = members_grid(
        range(2), ("relu", "gelu"), lrs=(3e-3,), norms=("none", "layer"), blocks=("residual",)
    )
    res = train_ensemble(members, X, y, num_epochs=20, batch_size=16, **TRAIN)
    assert (res.losses[-1] < 0.7 * res.losses[0]).all()
    assert res.nonfinite_steps.tolist() == [0] * len(members)


@pytest.mark.parametrize("block", ["plain", "residual"])
def test_bfloat16_autocast(block: str) -> None:
    X, y = data(64)
    members = members_grid(range(2), ("relu", "silu"), lrs=(3e-3,), blocks=(block,))
    kw = dict(num_epochs=8, **TRAIN)
    full = train_ensemble(members, X, y, **kw)
    half = train_ensemble(members, X, y, autocast=torch.bfloat16, **kw)
    assert all(p.dtype == torch.float32 for p in half.model.params)
    gap = np.abs(half.losses - full.losses) / full.losses
    # bfloat16 keeps 8 significant bits: the losses differ, by about its precision.
    assert 1e-5 < gap.max() < 0.1
    assert not half.nonfinite_steps.any()
    huge = [Member(**{**vars(m), "lr": 1e30 if i % 2 else 1e-3}) for i, m in enumerate(members)]
    blown = train_ensemble(huge, X, y, autocast=torch.bfloat16, **kw)
    assert (blown.nonfinite_steps[1::2] > 0).all() and not blown.nonfinite_steps[::2].any()
    assert blown.nonfinite_steps.shape == (len(members),)


def test_mixed_blocks_are_refused_by_the_trainer() -> None:
    X, y = data()
    with pytest.raises(ValueError, match="block kind"):
        train_ensemble([Member(0), Member(1, block="gated")], X, y, num_epochs=1, **TRAIN)
