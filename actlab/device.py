"""Device choice, seeding and timing shared by every chapter (introduced in chapter 0)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device the course trains on: cuda, else mps, else cpu.

    Args:
        prefer: force a device name ("cpu", "cuda", "mps"). The environment
            variable ``ACTLAB_DEVICE`` does the same without touching code.
    """
    name = prefer or os.environ.get("ACTLAB_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """A one-line human description of ``device``, e.g. ``cpu (2 threads)``."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return device.type


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextmanager
def cpu_threads(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads (restored afterwards).

    The course's networks are small: a second thread gains little, and when the
    cores are busy with other work, OpenMP threads waiting for each other can make
    a training loop ten times slower. ``n=None`` or a non-CPU device changes nothing.
    """
    saved = torch.get_num_threads()
    if n is not None and torch.device(device).type == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@dataclass
class Stopwatch:
    """Context manager measuring wall time; synchronises CUDA so GPU work is counted."""

    device: torch.device | None = None
    seconds: float = field(default=0.0, init=False)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
