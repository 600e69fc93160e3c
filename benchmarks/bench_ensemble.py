"""Time batched ensemble training against a Python loop over the same members (chapter 3's sweep).

The sweep: 10 hidden layers x 64 units on chapter 3's noisy sine (200 points),
activations sigmoid, ReLU, Leaky ReLU and GELU, 5 seeds each (20 networks),
full-batch Adam (lr 1e-3), MSE, 500 epochs.

* loop: ``actlab.ensemble.train_single`` once per member (``nn.Sequential`` and
  ``torch.optim.Adam``, the ordinary way);
* ensemble: one ``actlab.ensemble.train_ensemble`` call for all 20.

With several thread counts (``--threads 1,2``) both paths are timed at each, in
interleaved repeats, and the script reports each path at its best thread count and
the thread count ``actlab.engine.device.auto_threads`` picks on this machine now.

Usage (record the printed tables in benchmarks/ENSEMBLE.md)::

    .venv/bin/python benchmarks/bench_ensemble.py --repeats 3 --threads 1,2
    .venv/bin/python benchmarks/bench_ensemble.py --device cuda --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from actlab.engine.data import noisy_sine
from actlab.engine.device import (
    Stopwatch,
    auto_threads,
    describe_device,
    device_for_command,
)
from actlab.ensemble import members_grid, train_ensemble, train_single

ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "gelu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: get_device())")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="units per hidden layer")
    parser.add_argument(
        "--threads", default="1", help="torch CPU thread counts for both paths, e.g. 1,2"
    )
    args = parser.parse_args()
    device = device_for_command(args.device, Path(__file__).name)
    thread_counts = [int(t) for t in args.threads.split(",")]
    picked = auto_threads()  # before this process loads the machine
    torch.set_num_threads(thread_counts[0])

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

    times: dict[tuple[str, int], list[float]] = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, fn in (("loop", run_loop), ("ensemble", run_ensemble)):
                with Stopwatch(device) as sw:
                    fn()
                times.setdefault((name, threads), []).append(sw.seconds)
                print(f"  {threads} thread(s) {name:8s} {sw.seconds:7.2f} s", flush=True)
    load_after = os.getloadavg()

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
    print(f"threads auto_threads() picked at the start: {picked}")
    print()
    print("| threads | method | median (s) | min (s) | max (s) | repeats |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    med = {key: statistics.median(t) for key, t in times.items()}
    for (name, threads), t in times.items():
        print(
            f"| {threads} | {name} | {med[name, threads]:.2f} | {min(t):.2f} | {max(t):.2f} "
            f"| {len(t)} |"
        )
    print()
    for threads in thread_counts:
        ratio = med["loop", threads] / med["ensemble", threads]
        print(f"speed-up at {threads} thread(s) (median loop / median ensemble): {ratio:.2f}x")
    best = {name: min((med[name, th], th) for th in thread_counts) for name in ("loop", "ensemble")}
    print(
        f"each at its best: loop {best['loop'][0]:.2f} s ({best['loop'][1]} thread(s)), "
        f"ensemble {best['ensemble'][0]:.2f} s ({best['ensemble'][1]} thread(s)): "
        f"{best['loop'][0] / best['ensemble'][0]:.2f}x"
    )


if __name__ == "__main__":
    main()
