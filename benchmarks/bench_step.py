"""One training step of the batched ensemble against its matrix-product floor (chapter 3's network).

For each shape the script times, on one CPU thread unless told otherwise:

* floor: the step's matrix products alone (per layer the forward ``baddbmm`` and
  the backward ``bmm`` for the weight gradient and for the input gradient), on
  tensors of the same shapes;
* step: a full step of ``actlab.ensemble`` (forward, MSE, backward, Adam) for
  members split evenly over sigmoid, ReLU, Leaky ReLU and GELU.

Each figure is the minimum over blocks of 20 steps of the process's CPU time per
step (CPU time rather than wall time, so that other work on the machine inflates
it less). The profile breaks the step of the default shape down by operator.

Usage (record the printed tables in benchmarks/ENSEMBLE.md)::

    .venv/bin/python benchmarks/bench_step.py
    .venv/bin/python benchmarks/bench_step.py --threads 2
    .venv/bin/python benchmarks/bench_step.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import torch

from actlab.data import noisy_sine
from actlab.device import Stopwatch, describe_device, get_device
from actlab.ensemble import EnsembleMLP, Member, _loss_per_member, _StackedOptimizer

ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "gelu")
DEPTH, N = 10, 200


def members(e: int) -> list[Member]:
    return [Member(seed=i, activation=ACTIVATIONS[i * len(ACTIVATIONS) // e]) for i in range(e)]


def per_step(fn, device: torch.device, blocks: int = 5, steps: int = 20) -> float:
    """Minimum over blocks of the time per call, in ms (CPU time on the CPU, wall on a GPU)."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(blocks):
        if device.type == "cpu":
            start = time.process_time()
            for _ in range(steps):
                fn()
            best = min(best, (time.process_time() - start) / steps)
        else:
            with Stopwatch(device) as sw:
                for _ in range(steps):
                    fn()
            best = min(best, sw.seconds / steps)
    return best * 1e3


def setup(e: int, width: int, device: torch.device):
    X, y = noisy_sine(N, 0.1, seed=0)
    Xt = torch.tensor(X, dtype=torch.float32, device=device)
    yt = torch.tensor(y, dtype=torch.float32, device=device)
    model = EnsembleMLP(members(e), 1, width, DEPTH, 1).to(device)
    opt = _StackedOptimizer(model.params, torch.full((e,), 1e-3, device=device))

    def step() -> None:
        for p in model.params:
            p.grad = None
        _loss_per_member(model(Xt), yt, "mse").sum().backward()
        opt.step()

    Ws = [w.detach() for w in model.weights]
    bs = [b.detach() for b in model.biases]
    hs = [Xt.expand(e, N, 1).contiguous()]
    hs += [torch.randn(e, N, width, device=device) for _ in range(DEPTH)]
    gs = [torch.randn(e, N, w.shape[2], device=device) for w in Ws]

    def floor() -> None:
        for k, W in enumerate(Ws):
            torch.baddbmm(bs[k], hs[k], W)
            torch.bmm(hs[k].transpose(1, 2), gs[k])
            if k > 0:
                torch.bmm(gs[k], W.transpose(1, 2))

    return step, floor


def row(e: int, width: int, device: torch.device) -> str:
    step, floor = setup(e, width, device)
    f, s = per_step(floor, device), per_step(step, device)
    return f"| {e} | {width} | {f:.2f} | {s:.2f} | {s / f:.2f} | {s / e:.3f} |"


def profile(e: int, width: int, device: torch.device) -> None:
    step, _ = setup(e, width, device)
    for _ in range(3):
        step()
    with torch.profiler.profile() as prof:
        for _ in range(20):
            step()
    groups: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        name = ev.key
        if "bmm" in name:
            kind = "matrix products (bmm, baddbmm)"
        elif any(a in name for a in ("sigmoid", "relu", "gelu", "threshold", "clamp")):
            kind = "activations, forward and backward"
        elif any(a in name for a in ("lerp", "sqrt", "_foreach", "addcmul")):
            kind = "optimiser"
        elif any(a in name for a in ("copy", "cat", "fill", "empty", "slice")):
            kind = "copies and allocation"
        elif name.startswith("aten::"):
            kind = "other aten (loss, sums, views)"
        else:
            continue  # autograd wrappers: their time is in the aten ops they call
        groups[kind] += ev.self_cpu_time_total / 20 / 1e3
    total = sum(groups.values())
    print(f"\nprofile of one step, {e} members x width {width} (ms of CPU time per step):\n")
    print("| part | ms | share |")
    print("| --- | ---: | ---: |")
    for kind, ms in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {ms:.2f} | {ms / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", default="1,5,20,50,100,200")
    parser.add_argument("--widths", default="16,32,64,128,256")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    load = os.getloadavg()[0]
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {describe_device(device)}; "
          f"torch {torch.__version__}; load average {load:.2f}")  # fmt: skip
    print(f"network: {DEPTH} hidden layers, {N} points, full batch, Adam, MSE\n")
    print("| members | width | floor (ms) | step (ms) | step / floor | ms per member |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in [int(v) for v in args.members.split(",")]:
        print(row(e, 64, device), flush=True)
    for w in [int(v) for v in args.widths.split(",")]:
        if w != 64:
            print(row(20, w, device), flush=True)
    if device.type == "cpu":
        profile(20, 64, device)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
