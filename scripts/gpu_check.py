"""Check the course on a CUDA GPU in one run, and write what it found to benchmarks/GPU_CHECK.md.

Run it on a machine with an NVIDIA GPU and this repository's environment (PyTorch with
CUDA already installed; nothing is downloaded)::

    python scripts/gpu_check.py                      # or: make gpu-check
    python scripts/gpu_check.py --cpu-snapshot cpu.json

Steps, each reported:

1. the library tests marked ``device`` (``pytest -m device``) with ``ACTLAB_DEVICE=cuda``;
2. chapters 3, 4 and 6 executed with ``ACTLAB_DEVICE=cuda`` as the book executes them
   (``scripts/snapshot.py``'s ``glued_values``), their glued values compared with the
   same chapters executed on the CPU in this run (at the same time, in other processes)
   or read from ``--cpu-snapshot`` (a file of ``snapshot.py take``). Numbers match
   within a relative 1e-3, text exactly; timings and device descriptions
   (``snapshot.py``'s ``VOLATILE``) and the values ``BY_DESIGN`` names (they depend on
   the kernel by construction) are listed apart;
3. a short run of ``benchmarks/bench_step.py --device cuda``.

On a machine without a CUDA GPU it says so and exits 0, writing nothing. Otherwise it
exits 1 when a step failed or a glued value differs beyond its tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from snapshot import VOLATILE, glued_values  # noqa: E402

CHAPTERS = ("ch03_backprop", "ch04_dead_relu", "ch06_choosing")
NO_GPU = "no CUDA GPU present: nothing to check"
REL_TOL = 1e-3
# Glued values that depend on the backend by design ("chapter name" patterns, with the
# reason): listed when they differ, never counted as a difference.
BY_DESIGN: dict[str, str] = {
    r"ch04_dead_relu gelu_zero_(z|backend)": "GELU's zero-slope threshold belongs to the kernel "
    "(oneDNN on a CPU, PyTorch's own kernel on CUDA)",
    r"ch04_dead_relu sw_grad_gelu_\d+": "gradient-dead GELU units are counted below that threshold",
    r"ch06_choosing zero_slope_(gelu|silu|backend)": "chapter 6 computes the same thresholds "
    "on its own device",
}
# Budgets in seconds (the whole check is meant to finish within 8 minutes).
TEST_TIMEOUT, CHAPTER_TIMEOUT, BENCH_TIMEOUT = 240, 360, 60
BENCH_ARGS = ["--members", "1,20,100", "--widths", "64", "--blocks", "2", "--block-seconds", "0.2",
              "--rounds", "1"]  # fmt: skip

NUMBER = re.compile(r"[-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+−]?\d+)?|nan|inf")


# --------------------------------------------------------------------------- comparing values


def _numbers(text: str) -> tuple[str, list[float]]:
    """``text`` with every number replaced by ``#``, and the numbers (a ``−`` reads as minus)."""
    found = [float(m.replace("−", "-")) for m in NUMBER.findall(text)]
    return NUMBER.sub("#", text), found


def close(a: str, b: str, rel: float = REL_TOL) -> bool:
    """Whether two glued texts agree: the same words, and numbers within ``rel`` of each other.

    Text that is not the same around its numbers never agrees; NaN agrees with NaN.
    """
    if a == b:
        return True
    (shape_a, xs), (shape_b, ys) = _numbers(a), _numbers(b)
    if shape_a != shape_b or len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys, strict=True):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return False
        elif x != y and not abs(x - y) <= rel * max(abs(x), abs(y)):
            return False
    return True


@dataclass
class Comparison:
    """CPU against CUDA glued values, key by key (keys are ``"chapter name"``)."""

    same: int = 0
    within: list[str] = field(default_factory=list)  # numbers differ, within tolerance
    differ: list[str] = field(default_factory=list)  # beyond tolerance, or text
    expected: list[str] = field(default_factory=list)  # in BY_DESIGN
    volatile: list[str] = field(default_factory=list)  # timings and devices: not compared
    missing: list[str] = field(default_factory=list)  # glued on one side only

    @property
    def ok(self) -> bool:
        return not self.differ and not self.missing


def compare(cpu: dict[str, dict[str, str]], cuda: dict[str, dict[str, str]]) -> Comparison:
    """Compare two ``{chapter: {name: text}}`` maps of glued values."""
    out = Comparison()
    for chapter in sorted(set(cpu) | set(cuda)):
        a_all, b_all = cpu.get(chapter, {}), cuda.get(chapter, {})
        for name in sorted(set(a_all) | set(b_all)):
            key = f"{chapter} {name}"
            a, b = a_all.get(name), b_all.get(name)
            line = f"`{key}`: CPU {a!r} → CUDA {b!r}"
            if a is None or b is None:
                out.missing.append(line)
            elif a == b:
                out.same += 1
            elif VOLATILE.match(name):
                out.volatile.append(line)
            elif why := next((w for k, w in BY_DESIGN.items() if re.fullmatch(k, key)), None):
                out.expected.append(f"{line}: {why}")
            elif close(a, b):
                out.within.append(line)
            else:
                out.differ.append(line)
    return out


# --------------------------------------------------------------------------- running steps


@dataclass
class Step:
    name: str
    ok: bool | None  # None: skipped
    summary: str
    details: list[str] = field(default_factory=list)


def _env(device: str) -> dict[str, str]:
    env = dict(os.environ, ACTLAB_DEVICE=device, ACTLAB_STATIC="1", MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _tail(text: str, lines: int = 15) -> list[str]:
    return text.strip().splitlines()[-lines:]


def run_tests() -> Step:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "device", "tests"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=_env("cuda"), capture_output=True, text=True,
                              timeout=TEST_TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Step("device tests", False, f"did not finish within {TEST_TIMEOUT} s")
    tail = _tail(done.stdout + done.stderr)
    summary = tail[-1] if tail else "no output"
    return Step("device tests", done.returncode == 0, f"`{' '.join(cmd[1:])}`: {summary}", tail)


def glued_in_process(chapter: str, device: str, out: Path) -> tuple[bool, str]:
    """Execute ``chapter`` with ``ACTLAB_DEVICE=device`` in a process of its own; write its values."""
    cmd = [sys.executable, __file__, "--glued", chapter, "--device", device, "--out", str(out)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=_env(device), capture_output=True, text=True,
                              timeout=CHAPTER_TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, f"{chapter} on {device}: did not finish within {CHAPTER_TIMEOUT} s"
    if done.returncode != 0:
        return False, f"{chapter} on {device} failed: " + " / ".join(_tail(done.stderr, 5))
    return True, f"{chapter} on {device}: {len(json.loads(out.read_text()))} glued values"


def run_chapters(cpu_snapshot: Path | None, tmp: Path) -> tuple[Step, Comparison | None]:
    devices = ["cuda"] if cpu_snapshot else ["cuda", "cpu"]
    jobs = [(c, d, tmp / f"{c}.{d}.json") for c in CHAPTERS for d in devices]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda job: glued_in_process(*job), jobs))
    notes = [text for _, text in results]
    if not all(ok for ok, _ in results):
        return Step("chapters 3, 4 and 6", False, "a chapter did not execute", notes), None
    values = {d: {c: json.loads(p.read_text()) for c, dd, p in jobs if dd == d} for d in devices}
    if cpu_snapshot:
        glued = json.loads(cpu_snapshot.read_text())["glued"]
        values["cpu"] = {c: glued[c] for c in CHAPTERS if c in glued}
        notes.append(f"CPU values from {cpu_snapshot}")
    cmp = compare(values["cpu"], values["cuda"])
    summary = (f"{cmp.same} glued values identical, {len(cmp.within)} within a relative "
               f"{REL_TOL:g}, {len(cmp.differ)} different, {len(cmp.missing)} on one side only, "
               f"{len(cmp.volatile)} timings and devices not compared")  # fmt: skip
    return Step("chapters 3, 4 and 6 on CUDA against the CPU", cmp.ok, summary, notes), cmp


def run_bench() -> Step:
    script = ROOT / "benchmarks" / "bench_step.py"
    helped = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, env=_env("cuda"),
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    if "--device" not in helped.stdout:
        return Step("bench_step.py", None, "skipped: bench_step.py has no --device flag")
    cmd = [sys.executable, str(script), "--device", "cuda", *BENCH_ARGS]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=_env("cuda"), capture_output=True, text=True,
                              timeout=BENCH_TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Step("bench_step.py", False, f"did not finish within {BENCH_TIMEOUT} s")
    out = (done.stdout + done.stderr).strip().splitlines()
    return Step("bench_step.py", done.returncode == 0, f"`bench_step.py --device cuda "
                f"{' '.join(BENCH_ARGS)}`: exit status {done.returncode}", out[-40:])  # fmt: skip


# --------------------------------------------------------------------------- the report


def report(card: str, torch_version: str, steps: list[Step], cmp: Comparison | None,
           seconds: float) -> str:  # fmt: skip
    lines = [
        "# GPU check",
        "",
        f"Run by `scripts/gpu_check.py` (`make gpu-check`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {card}, torch {torch_version}, "
        f"{seconds:.0f} s in all.",
        "",
        "| step | result | summary |",
        "| --- | --- | --- |",
    ]
    for s in steps:
        result = "skipped" if s.ok is None else ("passed" if s.ok else "**failed**")
        lines.append(f"| {s.name} | {result} | {s.summary} |")
    for s in steps:
        if s.details:
            lines += ["", f"## {s.name}", "", "```", *s.details, "```"]
    if cmp is not None:
        lines += ["", "## Glued values, CPU against CUDA", "",
                  f"Numbers must agree within a relative {REL_TOL:g}, text exactly."]  # fmt: skip
        groups = [("Different (beyond tolerance, or text)", cmp.differ),
                  ("Glued on one side only", cmp.missing),
                  ("Differ by design (depend on the kernel)", cmp.expected),
                  (f"Within a relative {REL_TOL:g}", cmp.within),
                  ("Timings and device descriptions (not compared)", cmp.volatile)]  # fmt: skip
        for title, items in groups:
            lines += ["", f"### {title}: {len(items)}", ""]
            lines += [f"- {item}" for item in items] or ["none"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-snapshot", type=Path, help="CPU glued values (snapshot.py take)")
    parser.add_argument("--report", type=Path, default=ROOT / "benchmarks" / "GPU_CHECK.md")
    parser.add_argument("--glued", help=argparse.SUPPRESS)  # one chapter, in a child process
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.glued:
        os.environ["ACTLAB_DEVICE"] = args.device
        values = glued_values(ROOT / "book" / f"{args.glued}.md", timeout=CHAPTER_TIMEOUT)
        args.out.write_text(json.dumps(values, indent=1, sort_keys=True))
        return 0

    import torch

    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    start = time.perf_counter()
    card = torch.cuda.get_device_name(0)
    print(f"checking on {card}, torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        chapters = pool.submit(run_chapters, args.cpu_snapshot, Path(tmp))
        tests = pool.submit(run_tests)
        steps = [tests.result()]
        print(f"{steps[-1].name}: {steps[-1].summary}", flush=True)
        chapter_step, cmp = chapters.result()
        steps.append(chapter_step)
        print(f"{chapter_step.name}: {chapter_step.summary}", flush=True)
    steps.append(run_bench())
    print(f"{steps[-1].name}: {steps[-1].summary}", flush=True)
    args.report.write_text(report(card, torch.__version__, steps, cmp, time.perf_counter() - start))
    print(f"report: {args.report}")
    return 0 if all(s.ok is not False for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
