"""One training step of the batched ensemble against its matrix-product floor (chapter 3's network).

For each shape the script times:

* floor: the step's matrix products alone (per layer the forward ``baddbmm`` and
  the backward ``bmm`` for the weight gradient and for the input gradient), on
  tensors of the same shapes;
* step: a full step of ``actlab.ensemble`` (forward, MSE, backward, Adam) for
  members split evenly over sigmoid, ReLU, Leaky ReLU and GELU;
* before (with ``--before REV[,REV...]``): the same step with the ensemble trainer
  (``actlab/ensemble/``, or ``actlab/ensemble.py`` before it was a package) as it
  was at each git revision REV, loaded beside the current one.

In the rounds of the headline shape (below) it also times the step's own products
alone, in the step's buffers and chunks (:func:`make_own_products`): a stricter
reference than the floor, since there each product reads what the last one wrote.

The floor, the step and the earlier steps are timed in interleaved blocks (floor,
step, before, floor, step, ...), so that load from other work falls on all of them
alike; each figure is the minimum over the blocks of the time per step. On the CPU
the time is the process's CPU time (other work on the machine inflates it less than
wall time); on a GPU it is wall time with the device synchronised.

Then it measures the 20 x 64 shape (chapter 3's ensemble) again in ``--rounds`` more
rounds and gives the median and range of each trainer's step / floor there: on a
shared host one figure moves by several per cent between runs of the same code.

It also prints the profile of one step of the default shape by operator, where
batching stops paying (the member count from which the time per member stays within
10 % of the lowest), the memory one member's step needs (counted and measured) and
the largest ensemble that would fit in this machine's memory (an estimate), and writes
the scaling plot.

Usage (record the printed tables in benchmarks/ENSEMBLE.md)::

    .venv/bin/python benchmarks/bench_step.py --before 974f0fd,a4f4db0 --plot benchmarks/ENSEMBLE_scaling.png
    .venv/bin/python benchmarks/bench_step.py --threads 1,2 --members 20 --widths 64
    .venv/bin/python benchmarks/bench_step.py --device cuda
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import torch

from actlab import ensemble as current
from actlab.engine.data import noisy_sine
from actlab.engine.device import describe_device, device_for_command

ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "gelu")
DEPTH, N = 10, 200
ROOT = Path(__file__).resolve().parent.parent


# Where the single-file trainer's imports live now (actlab.engine took them in).
_MOVED_IMPORTS = (
    ("from actlab.backprop import init_mlp_", "from actlab.engine.models import init_mlp_"),
    ("from actlab.device import", "from actlab.engine.device import"),
    ("from actlab.models import", "from actlab.engine.models import"),
)


def load_revision(rev: str) -> ModuleType:
    """The ensemble trainer as it was at git revision ``rev``, imported as its own module:
    the package ``actlab/ensemble/`` or, before it was one, ``actlab/ensemble.py``."""
    folder = Path(tempfile.mkdtemp())
    name = f"ensemble_{rev}"
    try:
        src = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:actlab/ensemble.py"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        src = None
    if src is not None:
        for before, now in _MOVED_IMPORTS:
            src = src.replace(before, now)
        path = folder / f"{name}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        try:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", rev, "actlab/ensemble"],
                check=True, capture_output=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as err:
            raise SystemExit(f"cannot read the ensemble trainer at {rev!r}: {err}") from None
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        package = folder / "actlab" / "ensemble"
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _trainer_class(lib: ModuleType):
    """The class of the step ``train_ensemble`` takes in ``lib``, or ``None`` (older revisions)."""
    train = getattr(lib, "train", None)
    if isinstance(train, ModuleType):  # the package
        return train.Trainer
    return getattr(lib, "_Trainer", None)


def make_step(lib: ModuleType, e: int, width: int, device: torch.device):
    """One training step of ``lib``'s ensemble of ``e`` members, and the model."""
    X, y = noisy_sine(N, 0.1, seed=0)
    Xt = torch.tensor(X, dtype=torch.float32, device=device)
    yt = torch.tensor(y, dtype=torch.float32, device=device)
    members = [
        lib.Member(seed=i, activation=ACTIVATIONS[i * len(ACTIVATIONS) // e]) for i in range(e)
    ]
    model = lib.EnsembleMLP(members, 1, width, DEPTH, 1).to(device)
    lrs = torch.full((e,), 1e-3, device=device)
    trainer_class = _trainer_class(lib)
    if trainer_class is not None:  # the step train_ensemble takes
        trainer = trainer_class(model, lrs)

        def step() -> None:
            trainer.gradients(Xt, yt)
            trainer.update()

        step.trainer = trainer
        return step, model
    opt = lib._StackedOptimizer(model.params, lrs)  # revisions before the trainer class

    def step() -> None:
        for p in model.params:
            p.grad = None
        lib._loss_per_member(model(Xt), yt, "mse").sum().backward()
        opt.step()

    return step, model


def make_floor(model, e: int, width: int, device: torch.device):
    """The step's matrix products alone, on tensors of the step's shapes."""
    Ws = [w.detach().clone() for w in model.weights]  # contiguous, as nn.Linear keeps them
    bs = [b.detach().clone() for b in model.biases]
    gen = torch.Generator().manual_seed(0)
    hs = [torch.rand(e, N, 1, generator=gen).to(device)]
    hs += [torch.randn(e, N, width, generator=gen).to(device) for _ in range(DEPTH)]
    gs = [torch.randn(e, N, w.shape[2], generator=gen).to(device) for w in Ws]

    def floor() -> None:
        for k, W in enumerate(Ws):
            torch.baddbmm(bs[k], hs[k], W)
            torch.bmm(hs[k].transpose(1, 2), gs[k])
            if k > 0:
                torch.bmm(gs[k], W.transpose(1, 2))

    return floor


def make_own_products(step):
    """The step's matrix products alone, in its own buffers and chunks and in its order:
    each layer's product, the output layer's, and the two backward products per layer.

    Unlike the floor, each product here reads what the one before it wrote, still in
    cache, as in the step itself; nothing else runs between them (no activation, loss or
    optimiser), so the cache holds only what the products touch.
    """
    hand = step.trainer.hand
    step()  # builds the buffers
    chunks = hand._buffers[N].chunks

    def own() -> None:
        with torch.no_grad():
            for c in chunks:
                for layer in c.layers:
                    torch.bmm(layer.inputs, layer.weights, out=layer.out)
                g = c.layers[-1].out
                for layer, below in zip(c.layers[:0:-1], c.layers[-2::-1], strict=True):
                    torch.bmm(layer.inputs_t, g, out=layer.grad)
                    torch.bmm(g, layer.weights_t, out=below.out_grad)
                    g = below.out_grad
                torch.bmm(c.layers[0].inputs_t, g, out=c.layers[0].grad)

    return own


def interleaved(fns: dict, device: torch.device, blocks: int, budget_s: float) -> dict[str, float]:
    """Minimum over ``blocks`` interleaved blocks of each function's time per call, in ms."""
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    calls = {}
    for name, fn in fns.items():  # warm up; size the blocks to about budget_s each
        for _ in range(2):
            fn()
        sync()
        start = clock()
        fn()
        sync()
        calls[name] = max(3, min(50, int(budget_s / max(clock() - start, 1e-6))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(blocks):
        for name, fn in fns.items():
            sync()
            start = clock()
            for _ in range(calls[name]):
                fn()
            sync()
            best[name] = min(best[name], (clock() - start) / calls[name] * 1e3)
    return best


def measure(
    e: int,
    width: int,
    device,
    before: dict[str, ModuleType],
    blocks: int,
    budget_s: float,
    own: bool = False,
) -> dict[str, float]:
    """Floor, step and each earlier revision's step (keyed by the revision), in ms; with
    ``own``, also the step's own products alone (see :func:`make_own_products`)."""
    step, model = make_step(current, e, width, device)
    fns = {"floor": make_floor(model, e, width, device), "step": step}
    if own:
        fns["own"] = make_own_products(step)
    for rev, lib in before.items():
        fns[rev] = make_step(lib, e, width, device)[0]
    return interleaved(fns, device, blocks, budget_s)


def profile(e: int, width: int, device: torch.device) -> list[tuple[str, float]]:
    step, _ = make_step(current, e, width, device)
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
        elif any(a in name for a in ("sigmoid", "relu", "gelu", "threshold", "clamp")) or (
            name == "aten::mul"  # a derivative taken in the forward pass, applied (the loss: mul_)
        ):
            kind = "activations, forward and backward"
        elif any(a in name for a in ("lerp", "sqrt", "_foreach", "addcmul", "_fused")):
            kind = "optimiser"
        elif any(a in name for a in ("copy", "cat", "fill", "empty", "slice")):
            kind = "copies and allocation"
        elif name.startswith("aten::"):
            kind = "other aten (loss, bias sums, views)"
        elif name.startswith("GroupedActivation"):
            kind = "grouped activation node (Python)"
        else:
            continue  # autograd wrappers: their time is in the aten ops they call
        groups[kind] += ev.self_cpu_time_total / 20 / 1e3
    return sorted(groups.items(), key=lambda kv: -kv[1])


def _rss_bytes() -> int:
    """The process's resident memory now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info["MemAvailable"]


def held_bytes(obj) -> int:
    """Bytes of every tensor storage reachable from ``obj``'s attributes, each counted once."""
    seen: dict[int, int] = {}

    def visit(x, depth: int = 0) -> None:
        if torch.is_tensor(x):
            for t in (x, x.grad):
                if t is not None:
                    s = t.untyped_storage()
                    seen[s.data_ptr()] = s.nbytes()
        elif depth < 6 and isinstance(x, dict):
            for v in x.values():
                visit(v, depth + 1)
        elif depth < 6 and isinstance(x, (list, tuple)):
            for v in x:
                visit(v, depth + 1)
        elif depth < 6 and hasattr(x, "__dict__") and not isinstance(x, type):
            for v in vars(x).values():
                visit(v, depth + 1)
            if isinstance(x, torch.nn.Module):
                for t in x.state_dict(keep_vars=True).values():
                    visit(t, depth + 1)

    visit(obj)
    return sum(seen.values())


def memory_of_step(e: int, width: int, device: torch.device) -> tuple[int, int]:
    """Bytes the trainer holds after two steps of ``e`` members (counted), and the growth
    of this process's resident memory from before building them (measured; CPU only)."""
    rss0 = _rss_bytes()
    step, model = make_step(current, e, width, device)
    for _ in range(2):
        step()
    held = held_bytes(step.trainer) if hasattr(step, "trainer") else held_bytes(model)
    return held, _rss_bytes() - rss0


def memory_per_member(width: int, device: torch.device) -> tuple[float, float, tuple[int, int]]:
    """Bytes per member of a training step: the growth between two ensemble sizes, of the
    tensors the trainer holds and of the resident memory, each size in a fresh process."""
    lo = max(4, int(2**30 / 3 / (16 * (DEPTH * width * width + 3 * DEPTH * N * width))))
    sizes = (lo, 3 * lo)
    held, rss = [], []
    for e in sizes:
        cmd = [sys.executable, __file__, "--device", device.type, "--memory-of", f"{e},{width}"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
        held.append(int(out[-2]))
        rss.append(int(out[-1]))
    span = sizes[1] - sizes[0]
    return (held[1] - held[0]) / span, (rss[1] - rss[0]) / span, sizes


def stops_paying(rows: list[tuple[int, float]]) -> int:
    """The smallest member count beyond which no larger count in the table takes 10 % less
    time per member (rows sorted by members): a larger ensemble saves less than that."""
    for i, (e, t) in enumerate(rows):
        if all(later >= 0.9 * t for _, later in rows[i + 1 :]):
            return e
    return rows[-1][0]


def plot(path: str, by_members, by_width, label: str, revisions: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    es = [r[0] for r in by_members]
    ax = axes[0]
    ax.loglog(es, [r[2]["step"] for r in by_members], "o-", label="step")
    ax.loglog(es, [r[2]["floor"] for r in by_members], "s--", label="matrix-product floor")
    for rev, mark in zip(revisions, "^vD<>", strict=False):
        ax.loglog(es, [r[2][rev] for r in by_members], mark + ":", label=f"step at {rev}")
    ax.set(xlabel="members (width 64)", ylabel="ms per step", title="time per step")
    ax.legend()
    ax = axes[1]
    ax.semilogx(es, [r[2]["step"] / r[0] for r in by_members], "o-", label="step")
    ax.semilogx(es, [r[2]["floor"] / r[0] for r in by_members], "s--", label="floor")
    ax.set(xlabel="members (width 64)", ylabel="ms per member and step", title="per member")
    ax.set_ylim(bottom=0)
    ax = axes[2]
    ws = [r[1] for r in by_width]
    ax.loglog(ws, [r[2]["step"] for r in by_width], "o-", label="step")
    ax.loglog(ws, [r[2]["floor"] for r in by_width], "s--", label="floor")
    for rev, mark in zip(revisions, "^vD<>", strict=False):
        ax.loglog(ws, [r[2][rev] for r in by_width], mark + ":", label=f"step at {rev}")
    ax.set(xlabel="width (20 members)", ylabel="ms per step", title="against width")
    ax.legend()
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

    # Ticks at the measured sizes, and 1-2-5 steps on the log time axes: few enough to read.
    for ax, xs in zip(axes, (es, es, ws), strict=True):
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    for ax in (axes[0], axes[2]):
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(f"one training step of 10 hidden layers, 200 points, Adam: {label}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: get_device())")
    parser.add_argument("--threads", type=_ints, default=[1], help="CPU thread counts, e.g. 1,2")
    parser.add_argument("--members", type=_ints, default=[1, 2, 5, 10, 20, 50, 100, 200])
    parser.add_argument("--widths", type=_ints, default=[16, 32, 64, 128, 256])
    parser.add_argument(
        "--before", default="", help="git revisions of the trainer to compare, comma-separated"
    )
    parser.add_argument("--blocks", type=int, default=5, help="interleaved blocks per figure")
    parser.add_argument("--block-seconds", type=float, default=0.3, help="length of a block")
    parser.add_argument(
        "--rounds", type=int, default=7,
        help="repeat the 20 x 64 figure this many times (0: not at all) and give its median",
    )  # fmt: skip
    parser.add_argument("--plot", default=None, help="write the scaling plot to this PNG")
    parser.add_argument("--memory-of", type=_ints, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = device_for_command(args.device, Path(__file__).name)
    if args.memory_of:  # one measurement of memory_per_member, in its own process
        torch.set_num_threads(1)
        print(*memory_of_step(*args.memory_of, device))
        return
    revisions = [r for r in args.before.split(",") if r]
    before = {rev: load_revision(rev) for rev in revisions}
    cols = ["floor (ms)", "step (ms)", "step / floor", "ms per member"]
    for rev in revisions:
        cols += [f"step at {rev} (ms)", "its step / floor"]

    def line(e: int, w: int, t: dict[str, float]) -> str:
        cells = [f"{t['floor']:.2f}", f"{t['step']:.2f}", f"{t['step'] / t['floor']:.2f}",
                 f"{t['step'] / e:.3f}"]  # fmt: skip
        for rev in revisions:
            cells += [f"{t[rev]:.2f}", f"{t[rev] / t['floor']:.2f}"]
        return f"| {threads} | {e} | {w} | " + " | ".join(cells) + " |"

    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"network: {DEPTH} hidden layers, {N} points, full batch, Adam, MSE; members split over "
          f"{', '.join(ACTIVATIONS)}; min of {args.blocks} interleaved blocks\n")  # fmt: skip
    print("| threads | members | width | " + " | ".join(cols) + " |")
    print("| ---: " * (3 + len(cols)) + "|")
    by_members, by_width = [], []
    for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        for e in args.members:
            t = measure(e, 64, device, before, args.blocks, args.block_seconds)
            by_members.append((e, 64, t))
            print(line(e, 64, t), flush=True)
        for w in args.widths:
            if w != 64 or 20 not in args.members:
                t = measure(20, w, device, before, args.blocks, args.block_seconds)
            else:
                t = next(r[2] for r in by_members if r[0] == 20)
            by_width.append((20, w, t))
            if w != 64 or 20 not in args.members:
                print(line(20, w, t), flush=True)
    torch.set_num_threads(args.threads[0])
    where = describe_device(device)
    print(f"\ndevice: {where}; load average at the end of the table: {os.getloadavg()[0]:.2f}")

    if args.rounds > 0:  # one figure is noisy on a shared host: the headline shape again
        ratios: dict[str, list[float]] = defaultdict(list)
        own: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            t = measure(20, 64, device, before, args.blocks, args.block_seconds, own=True)
            for name in ["step", *revisions]:
                ratios[name].append(t[name] / t["floor"])
            for name in ("floor", "own", "step"):
                own[name].append(t[name])
            own["step / own"].append(t["step"] / t["own"])
        print(f"\n20 members x width 64, step / floor in {args.rounds} more rounds (each the "
              f"minimum over {args.blocks} interleaved blocks, as in the table):\n")  # fmt: skip
        print("| trainer | median | lowest | highest | rounds at or below 1.5 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, rs in ratios.items():
            label = "this one" if name == "step" else f"at {name}"
            print(f"| {label} | {statistics.median(rs):.2f} | {min(rs):.2f} | {max(rs):.2f} | "
                  f"{sum(r <= 1.5 for r in rs)} of {len(rs)} |")  # fmt: skip
        med = {name: statistics.median(v) for name, v in own.items()}
        print(f"\nin the same rounds (medians): the floor {med['floor']:.2f} ms; the step's own "
              f"products alone, in its buffers and chunks, {med['own']:.2f} ms; the step "
              f"{med['step']:.2f} ms, {med['step / own']:.2f} times its own products (range "
              f"{min(own['step / own']):.2f} to {max(own['step / own']):.2f})")  # fmt: skip

    one = [(e, t["step"] / e) for e, _, t in by_members[: len(args.members)]]
    if len(one) > 1:
        print(f"\nbatching stops paying at {stops_paying(one)} members (no larger ensemble in "
              "the table takes 10 % less time per member)")  # fmt: skip
    print("\nmemory of a training step, per member (growth between two ensemble sizes, each "
          "in a fresh process): the tensors the trainer holds (parameters, gradients, optimiser "
          "state, buffers; counted) and the process's resident memory (measured):\n")  # fmt: skip
    print("| width | sizes | tensors held (MiB per member) | resident (MiB per member) | "
          "available now (GiB) | largest ensemble that fits (estimate) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in sorted({64, max(args.widths)}):
        held, rss, sizes = memory_per_member(w, device)
        avail = _available_bytes(device)
        per = max(held, rss)
        fits = int(avail // per) if per > 0 else 0
        print(f"| {w} | {sizes[0]}, {sizes[1]} | {held / 2**20:.3f} | {rss / 2**20:.3f} | "
              f"{avail / 2**30:.1f} | {fits} |", flush=True)  # fmt: skip
    print(
        "(the largest ensemble is the available memory over the larger of the two figures "
        "per member, an estimate: it was not run)"
    )

    if device.type == "cpu":
        e0 = 20 if 20 in args.members else args.members[0]
        parts = profile(e0, 64, device)
        total = sum(ms for _, ms in parts)
        print(f"\nprofile of one step, {e0} members x width 64 (ms of CPU time per step, "
              "torch.profiler, which adds its own overhead):\n")  # fmt: skip
        print("| part | ms | share |")
        print("| --- | ---: | ---: |")
        for kind, ms in parts:
            print(f"| {kind} | {ms:.2f} | {ms / total:.0%} |")
    if args.plot and len(by_members) > 1 and len(by_width) > 1:
        n = len(args.members)
        plot(args.plot, by_members[:n], by_width[: len(args.widths)], where, revisions)
        print(f"\nplot: {args.plot}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
