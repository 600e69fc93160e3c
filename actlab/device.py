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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def other_load() -> float:
    """How many cores' worth of other work is running now, as far as the OS tells.

    The larger of the one-minute load average and the number of tasks runnable at this
    moment (``/proc/loadavg``, Linux), less this process itself; 0 where neither is known.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    try:
        with open("/proc/loadavg") as f:
            load = max(load, float(f.read().split()[3].split("/")[0]))
    except (OSError, IndexError, ValueError):
        pass
    return max(0.0, load - 1.0)


def choose_threads(cores: int, busy: float) -> int:
    """Intra-op threads for ``cores`` usable cores of which ``busy`` are taken by other work.

    One thread per core that is free (rounded to the nearest core), at least one. A
    thread on a core that other work also wants waits for it, and OpenMP threads
    waiting for each other made training 5 to 10 times slower in our measurements
    (benchmarks/ENSEMBLE.md), so a busy core gets no thread.
    """
    if cores < 1:
        raise ValueError(f"cores must be at least 1, got {cores}")
    if not busy >= 0:  # also rejects NaN
        raise ValueError(f"busy must be a non-negative number of cores, got {busy}")
    return max(1, min(cores, int(cores - busy + 0.5)))


def auto_threads() -> int:
    """The thread count the course trains with on the CPU, from what this machine reports.

    ``ACTLAB_THREADS`` (a positive integer) overrides it; otherwise
    :func:`choose_threads` of :func:`usable_cores` and :func:`other_load`, at most
    ``OMP_NUM_THREADS`` where that is set (the course's tests set it to 1, one thread
    per test worker).
    """
    env = os.environ.get("ACTLAB_THREADS")
    if env:
        return _positive(env, "ACTLAB_THREADS")
    n = choose_threads(usable_cores(), other_load())
    omp = os.environ.get("OMP_NUM_THREADS")
    return min(n, _positive(omp, "OMP_NUM_THREADS")) if omp else n


def _positive(text: str, name: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return n


@contextmanager
def cpu_threads(n: int | str | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads (restored afterwards).

    ``n="auto"`` takes :func:`auto_threads`: one thread per usable core not already busy
    with other work, at least one. The course's networks are small: when the cores are
    busy with other work, OpenMP threads waiting for each other can make a training
    loop ten times slower, which is why busy cores are left alone. ``n=None`` or a
    non-CPU device changes nothing.
    """
    if isinstance(n, str) and n != "auto":
        raise ValueError(f"threads must be a positive integer, 'auto' or None, got {n!r}")
    if isinstance(n, int) and n < 1:
        raise ValueError(f"threads must be a positive integer, 'auto' or None, got {n}")
    saved = torch.get_num_threads()
    if n is not None and torch.device(device).type == "cpu":
        torch.set_num_threads(auto_threads() if n == "auto" else n)
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
