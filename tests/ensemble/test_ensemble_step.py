"""The hand-written step: autograd's gradients, in buffers and chunks, bit for bit where promised."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ensemble_helpers import DEPTH, EPOCHS, MEMBERS, WIDTH, assert_trains_as_alone, data

from actlab.engine.activations import names
from actlab.engine.device import cpu_threads
from actlab.ensemble import EnsembleMLP, Member, chunk_members, train_ensemble
from actlab.ensemble import step as step_module
from actlab.ensemble.kernels import Uses
from actlab.ensemble.loss import loss_and_grad, loss_per_member
from actlab.ensemble.optim import StackedOptimizer
from actlab.ensemble.step import HandStep


def test_mse_gradient_written_out_is_autograd_s() -> None:
    """The hand-written step's MSE gradient equals autograd's bit for bit."""
    gen = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float64):
        for shape, y_shape in (((20, 200, 1), (200, 1)), ((3, 37, 3), (3, 37, 3))):
            out = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
            y = torch.randn(y_shape, generator=gen, dtype=dtype)
            ref = loss_per_member(out, y, "mse")
            (ref_grad,) = torch.autograd.grad(ref.sum(), out)
            per_member, grad = loss_and_grad(out.detach(), y, "mse")
            assert torch.equal(per_member, ref.detach()), (dtype, shape)
            assert torch.equal(grad, ref_grad), (dtype, shape)


@pytest.mark.parametrize("width", [5, 64])
def test_hand_written_step_applies_each_module_as_it_would(width: int) -> None:
    """In float32 and in the step's own buffers (pre-activations written in place or
    into a scratch tensor, outputs in rows beside a column of ones), every hidden
    activation is what the member's module gives on the same pre-activations, and each
    derivative that reads the output gives from that strided buffer what it gives from
    a contiguous copy: bit for bit at width 64. At width 5 a row is shorter than the
    CPU's vector loop, so the kernels take their scalar path (as they do on the last
    elements of a tensor whose size is not a multiple of it): equal to rounding."""

    def same(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
        if width == 64:
            assert torch.equal(got, ref), f"{what}: largest difference {(got - ref).abs().max()}"
        else:
            torch.testing.assert_close(got, ref, msg=what)

    members = [Member(seed=i, activation=a) for i, a in enumerate([*names(), "none", "gelu"])]
    X, y = data(40)
    model = EnsembleMLP(members, X.shape[1], width, DEPTH, y.shape[1], dtype=torch.float32)
    hand = HandStep(model, chunk=len(members))  # one chunk: the buffers hold every member
    x = 3 * torch.tensor(X, dtype=torch.float32)  # pre-activations well beyond [-1, 1]
    hand(x, torch.tensor(y, dtype=torch.float32), "mse")
    bufs = hand._buffers[len(X)]
    gen = torch.Generator().manual_seed(11)
    h = bufs.inputs
    for k in range(DEPTH):
        z = torch.bmm(h, hand.layers[k])  # contiguous, as nn.Linear's output is
        y_k = bufs.hidden[k][..., :-1]
        assert not y_k.is_contiguous()
        for s, e, phi, (_, backward, uses) in model.runs:
            name = f"layer {k}, {type(phi).__name__}"
            same(y_k[s:e], phi(z[s:e]), name)
            if uses is Uses.OUTPUT:
                g = torch.randn(e - s, len(X), width, generator=gen)
                got, ref = torch.empty_like(g), torch.empty_like(g)
                backward(g, None, y_k[s:e], got)
                backward(g, None, y_k[s:e].contiguous(), ref)
                same(got, ref, f"{name}, derivative")
        h = bufs.hidden[k]


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_hand_written_step_gives_autograds_gradients(loss: str) -> None:
    """The step train_ensemble takes for members without norms: every activation of the
    course in runs, per-member inputs, the same weight and bias gradients as autograd."""
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
    hand = HandStep(model)

    for x in (Xe, torch.tensor(X)):
        for p in ref.params:
            p.grad = None
        expected = loss_per_member(ref(x), ye, loss)
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
    spans = []

    def recording(runs, most):  # noqa: ANN001, ANN202
        spans.append(ensemble_chunks(runs, most))
        return spans[-1]

    ensemble_chunks = step_module.chunk_members
    monkeypatch.setattr(step_module, "l2_cache_bytes", lambda: 1)
    monkeypatch.setattr(step_module, "chunk_members", recording)
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


@pytest.mark.device
def test_members_per_chunk_fits_a_layer_of_work_in_a_cores_level_2_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    cpu = torch.device("cpu")
    model = EnsembleMLP([Member(seed=i) for i in range(30)], 3, 64, 4, 1)
    # The widest layer is 64 -> 64: per member on 100 examples in float32, its input and
    # output with their columns of ones, its gradient, and its weights and their gradient.
    per_member = 4 * (100 * 65 + 100 * 65 + 100 * 64 + 2 * 65 * 64)
    monkeypatch.setattr(step_module, "l2_cache_bytes", lambda: 10 * per_member + 5)
    hand = HandStep(model)
    assert hand.members_per_chunk(100, cpu) == 10
    with cpu_threads(2):  # one core's cache whatever the threads: the same chunks
        assert hand.members_per_chunk(100, cpu) == 10
    assert hand.members_per_chunk(25, cpu) > 10  # smaller batches, more members a chunk
    monkeypatch.setattr(step_module, "l2_cache_bytes", lambda: per_member // 2)
    assert hand.members_per_chunk(100, cpu) == 1
    monkeypatch.setattr(step_module, "l2_cache_bytes", lambda: None)  # unknown: 1 MiB
    assert hand.members_per_chunk(100, cpu) == (1 << 20) // per_member
    assert hand.members_per_chunk(100, torch.device("cuda")) == 30  # no chunks off the CPU
    assert HandStep(model, chunk=7).members_per_chunk(100, cpu) == 7
    with pytest.raises(ValueError, match="positive number of members"):
        HandStep(model, chunk=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_chunked_step_is_the_unchunked_step(dtype: torch.dtype, loss: str) -> None:
    """Members taken through the step in chunks, each chunk's forward and backward pass
    before the next, with inputs and targets shared or one set per member: where no run
    of an activation is cut, every member's losses, gradients and weights over a few
    Adam steps are those of the step that takes all members at once, bit for bit; where
    a run is cut into pieces, equal to rounding."""
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
        hand = HandStep(model, chunk=chunk)
        opt = StackedOptimizer(hand.layers, torch.full((E,), 1e-2, dtype=dtype))
        losses, grads = [], []
        for step in range(6):
            losses.append(hand(*((xe, te) if step % 2 else (x, t)), loss))
            grads += [p.grad.clone() for p in hand.layers]
            opt.step()
        spans = [(c.start, c.stop) for c in hand._buffers[len(X)].chunks]
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
