"""Thread choice and scoping in actlab.engine.device: from the cores and the load the library can see."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from torch import nn

from actlab.engine import device
from actlab.engine.device import (
    auto_threads,
    choose_threads,
    cpu_threads,
    get_device,
    other_load,
    usable_cores,
)


@pytest.mark.parametrize(
    "cores, busy, expected",
    [
        (2, 0.0, 2),  # idle: a thread per core
        (2, 0.3, 2),  # a little background work
        (2, 0.6, 1),  # most of a core taken
        (2, 1.0, 1),
        (2, 7.5, 1),  # overloaded: never fewer than one
        (16, 3.2, 13),
        (16, 0.0, 16),
        (1, 0.0, 1),
    ],
)
def test_choose_threads_leaves_busy_cores_alone(cores: int, busy: float, expected: int) -> None:
    assert choose_threads(cores, busy) == expected


def test_choose_threads_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="cores"):
        choose_threads(0, 0.0)
    with pytest.raises(ValueError, match="busy"):
        choose_threads(2, -1.0)
    with pytest.raises(ValueError, match="busy"):
        choose_threads(2, float("nan"))


def test_usable_cores_and_load_come_from_the_os() -> None:
    cores = usable_cores()
    assert 1 <= cores <= (os.cpu_count() or cores)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
    load = other_load()
    assert load >= 0.0 and np.isfinite(load)


def test_auto_threads_uses_cores_and_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "usable_cores", lambda: 8)
    monkeypatch.setattr(device, "other_load", lambda: 0.0)
    assert auto_threads() == 8
    monkeypatch.setattr(device, "other_load", lambda: 5.0)
    assert auto_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # an explicit cap is kept
    assert auto_threads() == 2

    def unmeasured() -> float:
        raise AssertionError("the load is measured only when there is a choice to make")

    monkeypatch.setattr(device, "other_load", unmeasured)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert auto_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(device, "usable_cores", lambda: 1)
    assert auto_threads() == 1
    monkeypatch.setenv("ACTLAB_THREADS", "6")  # the course's own override wins
    assert auto_threads() == 6
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("ACTLAB_THREADS", bad)
        with pytest.raises(ValueError, match="ACTLAB_THREADS"):
            auto_threads()


def _fake_proc(monkeypatch: pytest.MonkeyPatch, tmp_path, files: dict[str, str]) -> None:
    """``open`` reads ``files[path]`` for the /proc paths given, and fails for the other
    /proc files the load functions read."""
    real_open = open

    def fake_open(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if path in files:
            f = tmp_path / path.replace("/", "_")
            f.write_text(files[path])
            return real_open(f, *args, **kwargs)
        if path in ("/proc/loadavg", "/proc/stat"):
            raise OSError("no /proc here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)


def test_other_load_takes_the_measured_load_or_the_runnable_tasks(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 2.0, 1.0))  # lagging: not used
    monkeypatch.setattr(device, "busy_cores", lambda: 0.3)
    _fake_proc(monkeypatch, tmp_path, {"/proc/loadavg": "3.50 2.00 1.00 6/400 1234\n"})
    assert other_load() == pytest.approx(5.0)  # 6 runnable now, one of them this process
    _fake_proc(monkeypatch, tmp_path, {"/proc/loadavg": "3.50 2.00 1.00 1/400 1234\n"})
    assert other_load() == pytest.approx(0.3)  # only this process runnable: the measurement
    monkeypatch.setattr(device, "busy_cores", lambda: None)  # not measurable: the average
    assert other_load() == pytest.approx(2.5)
    _fake_proc(monkeypatch, tmp_path, {})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.1, 0.0))
    assert other_load() == 0.0


def test_busy_cores_is_the_machines_busy_share_less_this_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    readings = iter([(1000, 5000), (1000 + 150, 5000 + 200)])  # busy, total ticks
    monkeypatch.setattr(device, "_cpu_jiffies", lambda: next(readings))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    # 75 % of 4 CPUs busy while this process slept: 3 cores' worth of other work
    assert device.busy_cores(window=0.01) == pytest.approx(3.0, abs=0.05)
    readings = iter([(1000, 5000), (1000, 5000)])  # the counters did not advance
    assert device.busy_cores(window=0.0) is None
    monkeypatch.setattr(device, "_cpu_jiffies", lambda: None)
    assert device.busy_cores(window=0.0) is None
    monkeypatch.undo()
    stat = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    _fake_proc(monkeypatch, tmp_path, {"/proc/stat": stat})
    # busy = user + nice + system + irq + softirq + steal; idle and iowait are free
    assert device._cpu_jiffies() == (170, 990)
    _fake_proc(monkeypatch, tmp_path, {"/proc/stat": "intr 1 2 3\n"})
    assert device._cpu_jiffies() is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux's /proc/stat")
def test_busy_cores_sees_a_busy_process() -> None:
    """A child spinning on one core adds about one core to the reading.

    The child is stopped and resumed in turn, so whatever else the machine runs is in
    both readings and cancels out; on a machine with no idle core the child could only
    take time from other work, and the test says so instead of passing.
    """
    import signal
    import statistics
    import subprocess
    import sys
    import time

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    stopped, running = [], []
    try:
        time.sleep(0.2)  # let it start spinning
        for _ in range(3):
            spin.send_signal(signal.SIGSTOP)
            time.sleep(0.05)
            stopped.append(device.busy_cores(window=0.2))
            spin.send_signal(signal.SIGCONT)
            time.sleep(0.05)
            running.append(device.busy_cores(window=0.2))
    finally:
        spin.kill()
        spin.wait()
    base, busy = statistics.median(stopped), statistics.median(running)
    if (os.cpu_count() or 1) - base < 0.75:
        pytest.skip(f"no idle core to see the child on: {base:.2f} cores busy without it")
    assert busy - base >= 0.5, (
        f"a spinning child should add about one busy core: {base:.2f} without it, {busy:.2f} with it"
    )


def test_cpu_threads_auto_is_scoped_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("ACTLAB_THREADS", "3")
    with cpu_threads("auto"):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with cpu_threads("auto", device="cuda"):  # other devices: the CPU setting is left alone
        assert torch.get_num_threads() == before
    for bad in ("many", 0, -2):
        with pytest.raises(ValueError, match="threads"), cpu_threads(bad):
            pass
    assert torch.get_num_threads() == before


def test_train_ensemble_reports_the_threads_it_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    from actlab.ensemble import Member, train_ensemble

    X = np.linspace(-1, 1, 16)[:, None]
    y = np.sin(3 * X)
    monkeypatch.setenv("ACTLAB_THREADS", "2")
    res = train_ensemble(
        [Member(0), Member(1, "tanh")], X, y, depth=2, width=8, num_epochs=2, device="cpu",
        progress=False,
    )  # fmt: skip
    assert res.device == "cpu (2 threads)"
    res = train_ensemble(
        [Member(0)], X, y, depth=2, width=8, num_epochs=2, device="cpu", progress=False,
        cpu_threads=1,
    )  # fmt: skip
    assert res.device == "cpu (1 thread)"


def _fake_cache(root, core: int, entries: dict[str, tuple[str, str, str]]) -> None:
    """A ``cpu{core}/cache/index*/`` tree under ``root``: (level, type, size) per entry."""
    for name, (level, kind, size) in entries.items():
        d = root / f"cpu{core}" / "cache" / name
        d.mkdir(parents=True)
        for field, value in (("level", level), ("type", kind), ("size", size)):
            (d / field).write_text(value + "\n")


def test_l2_cache_bytes_reads_the_level_2_cache_of_a_core_this_process_runs_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    _fake_cache(tmp_path, 0, {"index2": ("2", "Unified", "4096K")})  # not ours
    _fake_cache(
        tmp_path, 3,
        {"index0": ("1", "Data", "48K"), "index1": ("1", "Instruction", "32K"),
         "index2": ("2", "Unified", "1280K"), "index3": ("3", "Unified", "30M")},
    )  # fmt: skip
    assert device.l2_cache_bytes(str(tmp_path)) == 1280 * 1024
    # no level 2 listed, an unreadable size, or no tree at all: unknown
    _fake_cache(tmp_path, 5, {"index0": ("1", "Data", "32K"), "index3": ("3", "Unified", "8M")})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert device.l2_cache_bytes(str(tmp_path)) is None
    _fake_cache(tmp_path, 7, {"index2": ("2", "Unified", "lots")})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {7}, raising=False)
    assert device.l2_cache_bytes(str(tmp_path)) is None
    assert device.l2_cache_bytes(str(tmp_path / "absent")) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2048K", 2 << 20), ("1M", 1 << 20), ("512", 512), (" 64k\n", 65536), ("0K", None),
     ("", None), ("2.5M", None), ("-1K", None)],
)  # fmt: skip
def test_cache_sizes_as_linux_writes_them(text: str, expected: int | None) -> None:
    assert device._size_bytes(text) == expected


def test_device_choice_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTLAB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert isinstance(get_device(), torch.device)
    assert isinstance(nn.Linear(1, 1).to(get_device()), nn.Linear)


def test_cpu_threads_is_scoped() -> None:
    from actlab.engine.device import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cpu_threads(1):
        raise RuntimeError("restored even when the block fails")
    assert torch.get_num_threads() == before


def _record_sync(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace CUDA's and MPS's synchronize with recorders; return what they were called with."""
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("cuda", d)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append(("mps", None)))
    return calls


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_stopwatch_takes_a_device_name_and_synchronises_cuda(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import time

    from actlab.engine.device import Stopwatch

    calls = _record_sync(monkeypatch)
    for where in (name, torch.device(name)):
        calls.clear()
        with Stopwatch(where) as sw:
            assert calls == [("cuda", torch.device(name))]  # before the clock starts
            time.sleep(0.01)
        assert calls == [("cuda", torch.device(name))] * 2  # and before it stops
        assert sw.device == torch.device(name)
        assert sw.seconds >= 0.01


def test_stopwatch_synchronises_mps_and_leaves_the_cpu_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actlab.engine.device import Stopwatch

    calls = _record_sync(monkeypatch)
    with Stopwatch("mps"):
        pass
    assert calls == [("mps", None)] * 2
    calls.clear()
    for where in ("cpu", torch.device("cpu"), None):
        with Stopwatch(where) as sw:
            pass
        assert sw.seconds >= 0.0
    assert calls == []


def _machine(monkeypatch: pytest.MonkeyPatch, cuda: int = 0, mps: bool = False) -> None:
    """Pretend this machine has ``cuda`` CUDA devices and an MPS device or not."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_get_device_refuses_an_unknown_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch)
    for bad in ("gpu", "cuda0", "meta"):
        monkeypatch.setenv("ACTLAB_DEVICE", bad)
        with pytest.raises(ValueError, match=rf"'{bad}'.*ACTLAB_DEVICE.*available here: cpu$"):
            get_device()
    monkeypatch.delenv("ACTLAB_DEVICE")
    with pytest.raises(ValueError, match="'tpu'.*available here: cpu"):
        get_device("tpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_get_device_refuses_a_device_this_machine_lacks(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    _machine(monkeypatch)
    monkeypatch.setenv("ACTLAB_DEVICE", name)
    with pytest.raises(RuntimeError, match=rf"'{name}'.*not available.*available here: cpu$"):
        get_device()
    with pytest.raises(RuntimeError, match=rf"'{name}'.*not available"):
        get_device(name)


def test_get_device_takes_the_devices_the_machine_has(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, cuda=2, mps=True)
    assert device.available_devices() == ["cpu", "cuda:0", "cuda:1", "mps"]
    monkeypatch.setenv("ACTLAB_DEVICE", "cuda:1")
    assert get_device() == torch.device("cuda:1")
    assert get_device("mps") == torch.device("mps")
    monkeypatch.delenv("ACTLAB_DEVICE")
    assert get_device() == torch.device("cuda")  # the default order: CUDA first
    with pytest.raises(RuntimeError, match="'cuda:2'.*2 CUDA devices.*cpu, cuda:0, cuda:1, mps"):
        get_device("cuda:2")
    _machine(monkeypatch, mps=True)
    assert get_device() == torch.device("mps")
    _machine(monkeypatch)
    assert get_device() == torch.device("cpu")


_FLAGS = (
    (torch.backends.cuda.matmul, "allow_tf32"),
    (torch.backends.cudnn, "allow_tf32"),
    (torch.backends.cudnn, "deterministic"),
    (torch.backends.cudnn, "benchmark"),
)


@pytest.fixture
def numerics_flags() -> Iterator[Callable[[bool], None]]:
    """Sets the global numerics flags to a value; they are restored after the test."""
    saved = [getattr(obj, name) for obj, name in _FLAGS]

    def set_all(value: bool) -> None:
        for obj, name in _FLAGS:
            setattr(obj, name, value)

    yield set_all
    for (obj, name), value in zip(_FLAGS, saved, strict=True):
        setattr(obj, name, value)


def test_get_device_turns_tf32_off(numerics_flags: Callable[[bool], None]) -> None:
    numerics_flags(True)
    assert get_device("cpu") == torch.device("cpu")
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    # cuDNN's own choices are CUDA's business: the CPU leaves them as found
    assert torch.backends.cudnn.deterministic is True
    numerics_flags(True)
    device.configure_numerics("cuda")
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False


def test_describe_device_names_the_numerics_on_cuda_only(
    monkeypatch: pytest.MonkeyPatch, numerics_flags: Callable[[bool], None]
) -> None:
    numerics_flags(False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Some GPU")
    n = torch.get_num_threads()
    cpu_text = f"cpu ({n} thread{'' if n == 1 else 's'})"
    assert device.describe_device(torch.device("cpu")) == cpu_text
    assert device.describe_device("cpu") == cpu_text
    with cpu_threads(1):
        assert device.describe_device(torch.device("cpu")) == "cpu (1 thread)"
    device.configure_numerics("cuda")
    assert device.describe_device(torch.device("cuda")) == (
        "cuda (Some GPU; TF32 off, cuDNN deterministic)"
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    assert "TF32 on" in device.describe_device("cuda:0")
    assert device.describe_device(torch.device("mps")) == "mps"


def test_device_for_command_exits_with_one_line_for_a_device_that_is_not_here(capsys) -> None:
    assert device.device_for_command("cpu", "tool.py") == torch.device("cpu")
    with pytest.raises(SystemExit) as exit_:
        device.device_for_command("quantum", "tool.py")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tool.py: --device: ") and err.count("\n") == 1 and "cpu" in err
