"""The activations' kernels and the grouped autograd node: bit for bit each module."""

from __future__ import annotations

import pytest
import torch

from actlab.engine.activations import names
from actlab.engine.models import activation_module
from actlab.ensemble.kernels import GroupedActivation, Uses, kernels_of


@pytest.mark.device
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grouped_activation_is_bit_for_bit_each_module(dtype: torch.dtype) -> None:
    """Every registry activation (and the identity) in one grouped node: outputs and input
    gradients equal, exactly, those of the activation's own module on its members."""
    acts = [*names(), "none"]
    runs, start = [], 0
    for i, name in enumerate(acts):
        phi = activation_module(name)
        assert kernels_of(phi) is not None, name  # no activation of the course falls back
        runs.append((start, start + 1 + i % 2, phi, kernels_of(phi)))
        start += 1 + i % 2
    gen = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(start, 7, 5, generator=gen, dtype=dtype)).requires_grad_(True)
    with torch.no_grad():
        z[:, 0, :2] = 0.0  # the kinks, where the derivative is a convention
    g = torch.randn(start, 7, 5, generator=gen, dtype=dtype)
    out = GroupedActivation.apply(z, runs)
    (grad,) = torch.autograd.grad(out, z, g)
    for s, e, phi, _ in runs:
        zs = z.detach()[s:e].clone().requires_grad_(True)
        ref = phi(zs)
        (ref_grad,) = torch.autograd.grad(ref, zs, g[s:e])
        assert torch.equal(out[s:e], ref), type(phi).__name__
        assert torch.equal(grad[s:e], ref_grad), type(phi).__name__
    with torch.no_grad():  # inference takes the same kernels
        assert torch.equal(GroupedActivation.apply(z, runs), out.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_read_only_what_uses_says(dtype: torch.dtype) -> None:
    """What the hand-written step keeps for each activation is enough, bit for bit:
    a ``Uses.OUTPUT`` backward never reads the input; a ``Uses.DERIVATIVE`` backward is the
    gradient times its own derivative taken of ones (which the forward pass
    precomputes), for special values too."""
    gen = torch.Generator().manual_seed(5)
    z = 4 * torch.randn(3, 50, 8, generator=gen, dtype=dtype)
    z[0, 0, :6] = torch.tensor([0.0, -0.0, 1e-30, -1e30, float("inf"), float("-inf")])
    g = torch.randn(3, 50, 8, generator=gen, dtype=dtype)
    g[0, 1, :4] = torch.tensor([0.0, float("inf"), float("nan"), 1e-38])
    seen = set()
    for name in [*names(), "none"]:
        phi = activation_module(name)
        forward, backward, uses = kernels_of(phi)
        seen.add(uses)
        y = torch.empty_like(z)
        forward(z, y)
        ref = torch.empty_like(z)
        backward(g, z, y, ref)
        got = torch.empty_like(z)
        if uses is Uses.OUTPUT:
            backward(g, None, y, got)
        elif uses is Uses.DERIVATIVE:
            d = torch.empty_like(z)
            backward(torch.ones_like(z), z, y, d)
            torch.mul(g, d, out=got)
        else:
            backward(g, z, y, got)
        torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True, msg=name)
    assert seen == set(Uses)  # the course's activations take every path


def test_grouped_activation_falls_back_for_other_modules() -> None:
    """A module without known kernels (here Hardswish) runs through its own autograd graph."""
    other, relu = torch.nn.Hardswish(), torch.nn.ReLU()
    assert kernels_of(other) is None
    runs = [(0, 2, other, None), (2, 3, relu, kernels_of(relu))]
    z = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    out = GroupedActivation.apply(z, runs)
    ref = torch.cat([other(z[:2]), relu(z[2:])])
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out, z, g)
    (ref_grad,) = torch.autograd.grad(ref, z, g)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)
