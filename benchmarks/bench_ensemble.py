"""Time batched ensemble training against a Python loop over the same members (chapter 3's sweep).

The sweep: 10 hidden layers x 64 units on chapter 3's noisy sine (200 points),
activations sigmoid, ReLU, Leaky ReLU and GELU, 5 seeds each (20 networks),
full-batch Adam (lr 1e-3), MSE, 500 epochs.

* loop: ``actlab.ensemble.train_single`` once per member (``nn.Sequential`` and
  ``torch.optim.Adam``, the ordinary way);
* ensemble: one ``actlab.ensemble.train_ensemble`` call for all 20.

Usage (record the printed table in benchmarks/ENSEMBLE.md)::

    .venv/bin/python benchmarks/bench_ensemble.py --repeats 3              # 1 CPU thread
    .venv/bin/python benchmarks/bench_ensemble.py --repeats 3 --threads 2
    .venv/bin/python benchmarks/bench_ensemble.py --device cuda --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from actlab.data import noisy_sine
from actlab.device import Stopwatch, describe_device, get_device
from actlab.ensemble import members_grid, train_ensemble, train_single

ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "gelu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: get_device())")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="units per hidden layer")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, both paths")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = get_device(args.device)
    X, y = noisy_sine(200, 0.1, seed=0)
    members = members_grid(range(args.seeds), ACTIVATIONS, lrs=(1e-3,))
    common = dict(depth=10, width=args.width, num_epochs=args.epochs)

    def run_loop() -> None:
        for m in members:
            train_single(m, X, y, device=device, **common)

    def run_ensemble() -> None:
        train_ensemble(
            members,
            X,
            y,
            device=device,
            progress=False,
            grad_epochs=[0],
            cpu_threads=None,
            **common,
        )

    # Warm up both paths (allocator, kernels) on a short run.
    for m in members[:: args.seeds]:
        train_single(m, X, y, device=device, depth=10, width=args.width, num_epochs=5)
    train_ensemble(
        members,
        X,
        y,
        device=device,
        progress=False,
        cpu_threads=None,
        depth=10,
        width=args.width,
        num_epochs=5,
    )

    times: dict[str, list[float]] = {"loop": [], "ensemble": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name, fn in (("loop", run_loop), ("ensemble", run_ensemble)):
            with Stopwatch(device) as sw:
                fn()
            times[name].append(sw.seconds)
            print(f"  {name:8s} {sw.seconds:7.2f} s", flush=True)
    load_after = os.getloadavg()

    loop_med = statistics.median(times["loop"])
    ens_med = statistics.median(times["ensemble"])
    print()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"device: {describe_device(device)}; torch {torch.__version__}; "
        f"{os.cpu_count()} CPUs; {platform.processor() or platform.machine()}"
    )
    print(
        f"sweep: {len(members)} networks (10x{args.width}, {args.epochs} epochs, full-batch Adam)"
    )
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print()
    print("| method | median (s) | min (s) | max (s) | repeats |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("loop", "ensemble"):
        t = times[name]
        print(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} | {len(t)} |")
    print()
    print(f"speed-up (median loop / median ensemble): {loop_med / ens_med:.1f}x")


if __name__ == "__main__":
    main()
