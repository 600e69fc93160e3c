"""Device choice, seeding and timing shared by every chapter (introduced in chapter 0)."""

from __future__ import annotations

import functools
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch


def available_devices() -> list[str]:
    """The device names this machine can train on: ``cpu``, then ``cuda:0``... and ``mps``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def _checked_device(name: str, source: str) -> torch.device:
    """``name`` as a ``torch.device``, if this machine has it; ``source`` says where it came from."""
    available = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"unknown device {name!r} ({source}); available here: {available}"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise RuntimeError(
                f"device {name!r} ({source}) is not available: this machine has "
                f"{count} CUDA device{'' if count == 1 else 's'}; available here: {available}"
            )
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError(
                f"device {name!r} ({source}) is not available: no MPS device here; "
                f"available here: {available}"
            )
        return device
    raise ValueError(
        f"device {name!r} ({source}) is not one the course trains on; available here: {available}"
    )


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device the course trains on: cuda, else mps, else cpu.

    The numerics are set for it on the way (:func:`configure_numerics`).

    Args:
        prefer: force a device name ("cpu", "cuda", "cuda:1", "mps"). The environment
            variable ``ACTLAB_DEVICE`` does the same without touching code.

    Raises:
        ValueError: the name is not a device (or not one the course trains on).
        RuntimeError: the device is not available on this machine.
    """
    if prefer:
        device = _checked_device(prefer, "asked for")
    elif os.environ.get("ACTLAB_DEVICE"):
        device = _checked_device(os.environ["ACTLAB_DEVICE"], "from ACTLAB_DEVICE")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif "mps" in available_devices():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    configure_numerics(device)
    return device


def device_for_command(name: str | None, program: str) -> torch.device:
    """:func:`get_device` for a command-line tool: the device called ``name`` (default: the
    course's choice), or exit with status 2 and one line saying why not (a device this
    machine lacks, a name that is not a device), with ``program`` in front."""
    try:
        return get_device(name)
    except (RuntimeError, ValueError) as err:
        print(f"{program}: --device: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def configure_numerics(device: torch.device | str) -> None:
    """Set PyTorch's global numerics for training on ``device``: full float32, reproducible.

    The book compares float32 numbers across devices and against the CPU's (losses,
    gradient norms, counts of units glued into the text), so they must be float32
    arithmetic everywhere:

    * TF32 is off, for matrix products (``torch.backends.cuda.matmul.allow_tf32``) and
      for cuDNN (``torch.backends.cudnn.allow_tf32``). On Ampere and later GPUs TF32
      rounds a product's inputs to 10 bits of mantissa: about three decimal digits, not
      float32's seven. The flags act on CUDA only, so on the CPU nothing changes.
    * On CUDA, cuDNN picks its algorithms deterministically
      (``torch.backends.cudnn.deterministic``, no ``benchmark`` search), so a run
      repeats. PyTorch's global deterministic mode (``torch.use_deterministic_algorithms``)
      is left off: it needs ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA starts, and it
      makes every operation without a deterministic kernel raise. The course's
      networks run matrix products and elementwise kernels on one stream, which repeat.

    :func:`get_device` calls it; :func:`describe_device` reports it on CUDA.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def describe_device(device: torch.device | str | None = None) -> str:
    """A one-line human description of ``device``, e.g. ``cpu (2 threads)``.

    On CUDA it also names the numerics in force (see :func:`configure_numerics`), e.g.
    ``cuda (NVIDIA H100; TF32 off, cuDNN deterministic)``.
    """
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
        cudnn = "deterministic" if torch.backends.cudnn.deterministic else "nondeterministic"
        return (
            f"cuda ({torch.cuda.get_device_name(device)}; "
            f"TF32 {'on' if tf32 else 'off'}, cuDNN {cudnn})"
        )
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


def _size_bytes(text: str) -> int | None:
    """``"2048K"``, ``"1M"`` or ``"512"`` (as Linux writes cache sizes) in bytes, else ``None``."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    digits = text[:-1] if scale > 1 else text
    return int(digits) * scale if digits.isdigit() and int(digits) > 0 else None


def l2_cache_bytes(sys_root: str = "/sys/devices/system/cpu") -> int | None:
    """The level-2 cache of one core this process runs on, in bytes, or ``None`` where unknown.

    Read from Linux's ``cpu*/cache/index*/`` files (``level``, ``type``, ``size``) for the
    first core of this process's affinity; ``sys_root`` is there for tests.
    """
    try:
        core = min(os.sched_getaffinity(0))
    except (AttributeError, OSError, ValueError):
        core = 0
    base = os.path.join(sys_root, f"cpu{core}", "cache")
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return None
    for entry in entries:
        field = functools.partial(_read_text, base, entry)
        if field("level") == "2" and field("type") in ("Unified", "Data"):
            size = field("size")
            return _size_bytes(size) if size is not None else None
    return None


def _read_text(*parts: str) -> str | None:
    """The stripped text of the file at ``os.path.join(*parts)``, or ``None`` if unreadable."""
    try:
        with open(os.path.join(*parts)) as f:
            return f.read().strip()
    except OSError:
        return None


def _cpu_jiffies() -> tuple[int, int] | None:
    """Busy and total CPU time of the whole machine since boot, in clock ticks
    (the first line of ``/proc/stat``, Linux), or ``None`` where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            head, *fields = f.readline().split()
        ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    if head != "cpu" or len(ticks) < 5:
        return None
    total = sum(ticks)
    return total - ticks[3] - ticks[4], total  # idle and iowait are free time


def busy_cores(window: float = 0.1) -> float | None:
    """Cores' worth of CPU time other processes use now: measured over ``window`` seconds.

    The machine's busy share of its CPU time over the window (``/proc/stat``; time
    stolen by a hypervisor counts as busy) times its CPU count, less what this process
    used meanwhile. ``None`` where ``/proc/stat`` cannot be read or did not advance.
    """
    before, own_start, start = _cpu_jiffies(), time.process_time(), time.monotonic()
    if before is None:
        return None
    time.sleep(window)
    after = _cpu_jiffies()
    if after is None or after[1] <= before[1]:
        return None
    own = (time.process_time() - own_start) / max(time.monotonic() - start, 1e-9)
    share = (after[0] - before[0]) / (after[1] - before[1])
    return max(0.0, share * (os.cpu_count() or 1) - own)


def other_load() -> float:
    """How many cores' worth of other work is running now, as far as the OS tells.

    The larger of two figures, 0 where neither is known:

    * the CPU time other processes use, measured over a tenth of a second
      (:func:`busy_cores`; where it cannot be measured, the one-minute load average
      less this process, which lags: it still counts work that ended a minute ago);
    * the tasks runnable at this moment (``/proc/loadavg``, Linux), less this process.
    """
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0] - 1.0
        except (AttributeError, OSError):
            busy = 0.0
    try:
        with open("/proc/loadavg") as f:
            busy = max(busy, float(f.read().split()[3].split("/")[0]) - 1.0)
    except (OSError, IndexError, ValueError):
        pass
    return max(0.0, busy)


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
    per test worker). With one usable core or a cap of 1 the answer is 1, and the
    load (a tenth of a second to measure) is not measured.
    """
    env = os.environ.get("ACTLAB_THREADS")
    if env:
        return _positive(env, "ACTLAB_THREADS")
    omp = os.environ.get("OMP_NUM_THREADS")
    cap = _positive(omp, "OMP_NUM_THREADS") if omp else None
    cores = usable_cores()
    if cores == 1 or cap == 1:  # nothing to choose: no need to measure the load
        return 1
    n = choose_threads(cores, other_load())
    return min(n, cap) if cap else n


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
    """Context manager measuring wall time of the block.

    On CUDA and MPS the device is synchronised before the clock starts and before it
    stops, so the GPU work queued in the block is counted. ``device`` may be a
    ``torch.device`` or its name (``"cuda"``, ``"mps"``, ``"cpu"``).
    """

    device: torch.device | str | None = None
    seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.device is not None:
            self.device = torch.device(self.device)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start

    def _sync(self) -> None:
        if self.device is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            mps = getattr(torch, "mps", None)
            if mps is not None and hasattr(mps, "synchronize"):
                mps.synchronize()
