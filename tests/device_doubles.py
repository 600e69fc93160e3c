"""Stand-ins for a device this machine may lack, for the device tests.

PyTorch's ``meta`` device runs every operation on shapes, dtypes and devices without
data, so a training loop run on it checks that every tensor it makes is on the model's
device (an operation mixing devices raises) without a GPU. What a meta tensor cannot do
is give numbers: ``.numpy()``, ``.item()`` and ``.tolist()`` raise on it, as they should
where the code forgot to bring a tensor back to the host. The copies it does make,
``.cpu()`` and ``.to("cpu")``, are what :class:`HostCopies` stands in for.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.overrides import TorchFunctionMode

META = torch.device("meta")


class HostCopies(TorchFunctionMode):
    """Copies from the meta device to the CPU give zeros of the tensor's shape and dtype.

    So a function that brings its results back to the host before NumPy runs to its end
    on meta tensors; one that calls ``.numpy()``, ``.item()`` or ``.tolist()`` on a meta
    tensor still raises. ``copies`` lists the shapes copied, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[int, ...]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        src = args[0] if args else None
        if isinstance(src, torch.Tensor) and src.device.type == "meta":
            if func is torch.Tensor.cpu:
                target, dtype = torch.device("cpu"), None
            elif func is torch.Tensor.to:
                target, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            else:
                target = None
            if target is not None and torch.device(target).type == "cpu":
                self.copies.append(tuple(src.shape))
                return torch.zeros(src.shape, dtype=dtype or src.dtype)
        return func(*args, **kwargs)


class NoFloat64OffCPU(TorchFunctionMode):
    """Raises where a float64 tensor is made on a device other than the CPU, as MPS does."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type != "cpu":
                raise TypeError(f"{func.__name__}: float64 on {t.device.type}, which has none")
        return out


def assert_on(
    device: torch.device | str, tensors: Iterable[torch.Tensor | None], what: str
) -> None:
    """Every tensor of ``tensors`` (``None`` skipped) is on ``device``; ``what`` names them."""
    device = torch.device(device)
    found = [(i, t.device) for i, t in enumerate(tensors) if t is not None]
    assert found, f"{what}: no tensors to check"
    wrong = [(i, d) for i, d in found if d.type != device.type]
    assert not wrong, f"{what} off {device}: {wrong}"
