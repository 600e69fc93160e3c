"""The stacked optimisers: the fused kernels and the foreach path take the same steps."""

from __future__ import annotations

import pytest
import torch

from actlab.ensemble.optim import StackedOptimizer


@pytest.mark.parametrize("kind, momentum", [("adam", 0.0), ("sgd", 0.0), ("sgd", 0.9)])
def test_fused_and_foreach_optimisers_agree(kind: str, momentum: float) -> None:
    """The fused kernels (grouped by learning rate) and the foreach path give the same steps."""
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
        opt = StackedOptimizer(params, lrs, kind=kind, momentum=momentum, fused=fused)
        assert opt.fused is fused
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            opt.step()
        runs[fused] = [p.detach().clone() for p in params]
        gen = torch.Generator().manual_seed(1)
    assert set(StackedOptimizer(params, lrs).lr_runs) == {1e-2, 3e-3, 5e-2}
    for a, b in zip(runs[True], runs[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="one learning rate per member"):
        StackedOptimizer(params, lrs[:3])
