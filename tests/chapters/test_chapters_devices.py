"""The chapters' probes and training entry points run on the model's device and bring their
results to the host before NumPy: checked on PyTorch's meta device (see tests/device_doubles.py)."""

from __future__ import annotations

import numpy as np
import torch
from device_doubles import META, HostCopies, NoFloat64OffCPU, assert_on

from actlab.engine.data import DigitsSplit
from actlab.ensemble import EnsembleMLP, Member

DEPTH, WIDTH = 2, 8


def _split(n: int = 20, classes: int = 4) -> DigitsSplit:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2 * n, 5)).astype(np.float32)
    y = np.arange(2 * n) % classes
    return DigitsSplit(X[:n], y[:n], X[n:], y[n:], np.zeros(5), np.ones(5))


def test_ch06_accuracy_probe_brings_the_counts_home_before_float64() -> None:
    """MPS has no float64: the probe's mean in float64 is taken on the host."""
    from actlab.chapters.ch06_choosing import accuracy_probe

    split = _split()
    model = EnsembleMLP([Member(0), Member(1, "gelu")], 5, WIDTH, DEPTH, 4).to(META)
    probe = accuracy_probe(split.X_val, split.y_val)
    with HostCopies() as host, NoFloat64OffCPU():
        acc = probe(model, torch.zeros(3, 5, device=META))
    assert isinstance(acc, np.ndarray) and acc.shape == (2,) and acc.dtype == np.float64
    assert host.copies == [(2, len(split.y_val))]  # the hits, as booleans


def test_ch06_accuracy_probe_on_the_cpu_is_the_mean_of_the_hits() -> None:
    from actlab.chapters.ch06_choosing import accuracy_probe

    split = _split()
    model = EnsembleMLP([Member(0), Member(1, "gelu"), Member(2, "tanh")], 5, WIDTH, DEPTH, 4)
    with torch.no_grad():
        acc = accuracy_probe(split.X_val, split.y_val)(model, torch.as_tensor(split.X_train))
        pred = model(torch.as_tensor(split.X_val)).argmax(dim=-1).numpy()
    hits = pred == split.y_val
    assert np.array_equal(acc, hits.mean(axis=1))  # bit for bit: float64 means of the hits


def test_ch06_run_swap_and_timing_run_on_the_device() -> None:
    from actlab.chapters.ch06_choosing import run_swap, seconds_per_epoch

    split = _split()
    members = [Member(0, "relu"), Member(1, "silu", lr=1e-2)]
    with HostCopies():
        run = run_swap(
            members, split, depth=DEPTH, width=WIDTH, num_epochs=2, batch_size=8, device="meta"
        )
        seconds = seconds_per_epoch(
            members[0], split, depth=DEPTH, width=WIDTH, batch_size=8, repeats=1, device="meta"
        )
    assert run.accuracy.shape == (3, 2) and run.result.losses.shape == (2, 2)
    assert_on(META, run.result.model.params, "trained parameters")
    assert seconds >= 0.0


def test_ch04_unit_counts_run_on_the_device() -> None:
    """Without histograms: ``torch.bincount`` (their output's size comes from the data)
    has no meta form."""
    from actlab.chapters.ch04_dead_relu import count_units, unit_probe

    members = [Member(0, "relu"), Member(1, "gelu"), Member(2, "elu", norm="layer")]
    model = EnsembleMLP(members, 3, WIDTH, DEPTH, 1).to(META)
    X = torch.zeros(7, 3, device=META)
    with HostCopies() as host:
        counts = count_units(model, X)
        probed = unit_probe()(model, X)
    for c in (counts, probed):
        assert c.positive.shape == (3, DEPTH, WIDTH) and c.passing.shape == (3, DEPTH, WIDTH)
        assert c.n_examples == 7
        assert c.hist is None
    assert host.copies == [(3, DEPTH, WIDTH)] * 4


def test_ch04_plain_network_counts_run_on_the_device() -> None:
    from actlab.chapters.ch04_dead_relu import dead_masks, network_unit_counts
    from actlab.ensemble import build_member

    net = build_member(Member(0, "relu"), 3, WIDTH, DEPTH, 1).to(META)
    X = torch.zeros(7, 3, device=META)
    with HostCopies():
        positive, passing = network_unit_counts(net, X)
        masks = dead_masks(net, X)
    assert [p.shape for p in positive] == [(WIDTH,)] * DEPTH == [p.shape for p in passing]
    assert [m.dtype for m in masks] == [np.bool_] * DEPTH


def test_ch05_region_count_probe_reads_the_members_on_the_host() -> None:
    from actlab.chapters.ch05_hinges import region_count_probe

    model = EnsembleMLP([Member(0, "relu"), Member(1, "relu")], 1, WIDTH, DEPTH, 1).to(META)
    with HostCopies() as host:
        counts = region_count_probe(-1.0, 1.0)(model, torch.zeros(4, 1, device=META))
    assert len(counts) == 2 and all(isinstance(c, int) and c >= 1 for c in counts)
    assert host.copies  # every weight came home through .cpu()
