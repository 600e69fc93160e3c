"""The ensemble trainer keeps its tensors on the model's device: run on PyTorch's meta device.

The meta device has no data, so any operation that mixes it with the CPU raises, and so
do ``.numpy()``, ``.item()`` and ``.tolist()`` on its tensors; what comes back to the host
goes through ``.cpu()``, which :class:`device_doubles.HostCopies` answers with zeros.
A function that runs to its end here runs on CUDA and MPS as far as devices go.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from device_doubles import META, HostCopies, assert_on

from actlab.engine.activations import ACTIVATIONS
from actlab.ensemble import (
    EnsembleMLP,
    Member,
    gradient_norms_at_init,
    train_ensemble,
    train_single,
)
from actlab.ensemble.optim import StackedOptimizer
from actlab.ensemble.step import HandStep

NAMES = [*ACTIVATIONS, "none"]
DEPTH, WIDTH, N = 2, 8, 6


def _members(activations: list[str], norm: str = "none") -> list[Member]:
    return [Member(i, a, norm=norm) for i, a in enumerate(activations)]


def _buffers_and_params(model: EnsembleMLP) -> list[torch.Tensor]:
    return [*model.params, *model.buffers()]


BLOCKS = {
    **{f"one run of {a}": _members([a, a]) for a in NAMES},  # the module itself
    "every activation grouped": _members(NAMES),  # GroupedActivation, one run each
    "layer norm, every member": _members(["relu", "gelu"], norm="layer"),
    "layer norm, some members": _members(["relu", "tanh"]) + _members(["relu"], norm="layer"),
}


@pytest.mark.parametrize("members", BLOCKS.values(), ids=BLOCKS.keys())
@pytest.mark.parametrize("per_member_x", [False, True], ids=["shared x", "x per member"])
def test_model_forward_and_backward_stay_on_the_device(
    members: list[Member], per_member_x: bool
) -> None:
    model = EnsembleMLP(members, 3, WIDTH, DEPTH, 2).to(META)
    assert_on(META, _buffers_and_params(model), "parameters and buffers")
    x = (
        torch.randn(len(members), N, 3, device=META)
        if per_member_x
        else torch.randn(N, 3, device=META)
    )
    out, pre, hidden = model.trace(x)
    assert out.shape == (len(members), N, 2)
    assert_on(META, [out, *pre, *hidden], "outputs, pre-activations, hidden activations")
    out.square().sum().backward()
    assert_on(META, [p.grad for p in model.params], "gradients")
    assert all(p.grad is not None for p in model.weights)


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("chunk", [None, 2])
def test_hand_step_keeps_its_buffers_and_gradients_on_the_device(
    loss: str, chunk: int | None
) -> None:
    members = _members(NAMES)
    model = EnsembleMLP(members, 3, WIDTH, DEPTH, 3 if loss == "ce" else 1).to(META)
    step = HandStep(model, chunk=chunk)
    x = torch.randn(N, 3, device=META)
    y = torch.randint(0, 3, (N,), device=META) if loss == "ce" else torch.randn(N, 1, device=META)
    per_member = step(x, y, loss)
    assert per_member.shape == (len(members),)
    assert_on(META, [per_member], "losses")
    assert_on(META, step.layers + [p.grad for p in step.layers], "packed layers and gradients")
    assert_on(META, step.weight_grads, "weight gradients")
    bufs = step._buffers[N]
    assert_on(
        META, [bufs.inputs, *bufs.hidden, *bufs.grads, *bufs.kept, bufs.scratch, bufs.ones, bufs.out],
        "step buffers",
    )  # fmt: skip
    assert_on(META, [*model.weights, *model.biases], "the model's views of the packed layers")


@pytest.mark.parametrize(
    ("kind", "fused", "momentum"),
    [("adam", False, 0.0), ("adam", True, 0.0), ("sgd", False, 0.0), ("sgd", False, 0.9)],
)  # the fused SGD kernel has no meta form; the CUDA check covers the fused path
def test_optimisers_keep_their_state_on_the_device_with_host_learning_rates(
    kind: str, fused: bool, momentum: float
) -> None:
    params = [torch.zeros(4, 3, 2, device=META), torch.zeros(4, 1, 2, device=META)]
    for p in params:
        p.grad = torch.randn_like(p)
    lrs = torch.tensor([1e-3, 1e-3, 1e-2, 1e-3])  # on the CPU, as train_ensemble gives them
    opt = StackedOptimizer(params, lrs, kind=kind, fused=fused, momentum=momentum)
    assert sorted(opt.lr_runs.values()) == [[(0, 2), (3, 4)], [(2, 3)]]  # read on the host
    assert_on(META, opt.lrs, "learning rates")
    opt.step()
    opt.step()
    assert_on(META, params, "parameters")
    assert_on(META, [t for st in opt.state for t in st] or [opt._step_t], "optimiser state")


def _data(loss: str, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 3, n) if loss == "ce" else rng.normal(size=(n, 1)).astype(np.float32)
    return X, y


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("norm", ["none", "layer"], ids=["hand step", "autograd"])
@pytest.mark.parametrize("batch_size", [None, 5])
def test_train_ensemble_runs_on_the_device_and_brings_results_home(
    loss: str, norm: str, batch_size: int | None
) -> None:
    X, y = _data(loss)
    members = [Member(0, "relu", lr=1e-3, norm=norm), Member(1, "gelu", lr=1e-2, norm=norm)]
    seen: dict[str, torch.device] = {}

    def probe(model: EnsembleMLP, X_t: torch.Tensor) -> torch.Tensor:
        seen["X"] = X_t.device
        return model(X_t).mean(dim=(1, 2))

    with HostCopies() as host:
        res = train_ensemble(
            members, X, y, depth=DEPTH, width=WIDTH, num_epochs=3, loss=loss,
            batch_size=batch_size, device="meta", progress=False, probe=probe,
            probe_epochs=[0, 3],
        )  # fmt: skip
    assert res.losses.shape == (3, 2) and isinstance(res.losses, np.ndarray)
    assert res.grad_norms.shape == (3, 2, DEPTH + 1) and isinstance(res.grad_norms, np.ndarray)
    assert (3, 2) in host.copies and (3, 2, DEPTH + 1) in host.copies  # brought home by .cpu()
    assert res.device == "meta" and seen["X"] == META
    assert_on(META, _buffers_and_params(res.model), "trained parameters and buffers")
    assert_on(META, list(res.probes.values()), "probe results")
    if loss == "ce":  # the classes were counted on the host, from the labels given
        assert res.model.shape[3] == int(y.max()) + 1


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_train_single_runs_on_the_device(loss: str) -> None:
    X, y = _data(loss)
    with HostCopies() as host:
        losses = train_single(
            Member(0, "tanh"), X, y, depth=DEPTH, width=WIDTH, num_epochs=2, loss=loss,
            batch_size=5, device="meta",
        )  # fmt: skip
    assert isinstance(losses, np.ndarray) and losses.shape == (2,)
    assert host.copies == [(2,)]


def test_gradient_norms_at_init_computes_on_the_device_and_copies_once() -> None:
    X, y = _data("mse")
    with HostCopies() as host:
        norms = gradient_norms_at_init(
            _members(NAMES), X, y, depth=DEPTH, width=WIDTH, device="meta"
        )
    assert isinstance(norms, np.ndarray) and norms.shape == (len(NAMES), DEPTH + 1)
    assert host.copies == [(len(NAMES), DEPTH + 1)]


def test_host_copies_still_refuse_numpy_on_a_device_tensor() -> None:
    """The stand-in is not too kind: without ``.cpu()`` the conversions fail, as on a GPU."""
    t = torch.zeros(3, device=META)
    with HostCopies():
        for convert in (torch.Tensor.numpy, torch.Tensor.tolist, lambda u: u.sum().item()):
            with pytest.raises((TypeError, RuntimeError, NotImplementedError)):
                convert(t)
        assert t.cpu().numpy().shape == (3,)
