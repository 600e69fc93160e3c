"""Thread choice and scoping in actlab.device: from the cores and the load the library can see."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from actlab import device
from actlab.device import auto_threads, choose_threads, cpu_threads, other_load, usable_cores


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
    monkeypatch.setenv("ACTLAB_THREADS", "6")  # the course's own override wins
    assert auto_threads() == 6
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("ACTLAB_THREADS", bad)
        with pytest.raises(ValueError, match="ACTLAB_THREADS"):
            auto_threads()


def test_other_load_discounts_this_process(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 2.0, 1.0))
    real_open = open

    def fake_open(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if path == "/proc/loadavg":
            f = tmp_path / "loadavg"
            f.write_text("3.50 2.00 1.00 6/400 1234\n")
            return real_open(f, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert other_load() == pytest.approx(5.0)  # 6 runnable now, one of them this process
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.1, 0.0))
    (tmp_path / "loadavg").unlink()

    def no_proc(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if path == "/proc/loadavg":
            raise OSError("no /proc here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    assert other_load() == 0.0


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
