"""How fast a live explorer answers in a real JupyterLab: control change -> new frame shown.

For each notebook (the graded notebooks that show an explorer, and every chapter
opened as a notebook through jupytext) the script Runs All in JupyterLab (a
private server on a temporary copy of the course, Chromium through Playwright),
then moves the explorer's controls 20 times, in turn, one step each (arrow key on
a slider, click on the next button, next option of a dropdown), starting as soon
as the run has finished. Each latency is measured in the page, from the
control's input event to the new image decoded and painted (the next animation
frame); after each new frame the script waits ``--think`` seconds, as a reader
looks at it. It prints p50 and p95 (and min and max) per explorer, in ms.

    .venv/bin/python benchmarks/bench_explorer_latency.py [--think 0.5] [--settle 0] [--changes 20] [--only ch02]

``--settle S`` waits S seconds after Run All before the first change: a reader who
reads the explorer's text first, while the live view draws its frames in the
background.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import jupyterlab_driver as jl  # noqa: E402

TARGETS = [
    ("solutions/ch01_linear_collapse/ch01_linear_collapse.ipynb", "Notebook"),
    ("solutions/ch02_derivatives/ch02_derivatives.ipynb", "Notebook"),
    *[
        (p.relative_to(ROOT).as_posix(), "Jupytext Notebook")
        for p in sorted(ROOT.glob("book/ch*.md"))
    ],
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument(
        "--think", type=float, default=0.5, help="seconds between a frame and the next change"
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds between the end of Run All and the first change (a reader reading)",
    )
    ap.add_argument("--only", default="", help="run only targets whose path contains this")
    args = ap.parse_args()
    targets = [t for t in TARGETS if args.only in t[0]]
    tmp = Path(tempfile.mkdtemp(prefix="bench-explorers-"))
    course = jl.course_copy(tmp / "course")
    rows = []
    with jl.LabServer(course, tmp / "state") as server, jl.chromium() as browser:
        lab = jl.Lab(browser, server)
        for path, factory in targets:
            start = time.perf_counter()
            lab.open(path, factory=factory)
            state = lab.run_all(path, timeout=900)
            errors = [c["errors"] for c in state["cells"] if c["errors"]]
            if errors:
                raise SystemExit(f"{path}: errors while running: {errors}")
            ran = time.perf_counter() - start
            lab.page.wait_for_timeout(args.settle * 1000)
            explorers = lab.panel(path).locator(jl.EXPLORER)
            for i in range(explorers.count()):
                explorer = explorers.nth(i)
                explorer.scroll_into_view_if_needed()
                ctrls = jl.controls(explorer)
                ms = []
                for k in range(args.changes):
                    kind, control = ctrls[k % len(ctrls)]
                    ms.append(jl.timed_change(lab.page, explorer, kind, control, timeout=300))
                    lab.page.wait_for_timeout(args.think * 1000)
                a = np.array(ms)
                row = (
                    path,
                    i,
                    len(ctrls),
                    np.percentile(a, 50),
                    np.percentile(a, 95),
                    a.min(),
                    a.max(),
                    ran,
                )
                rows.append(row)
                print(
                    f"{path} #{i}: p50 {row[3]:.0f} ms, p95 {row[4]:.0f} ms  {np.round(a).astype(int).tolist()}",
                    flush=True,
                )
            lab.close_document(path)
        lab.close()
    print()
    print(
        f"{platform.node()} {platform.processor() or platform.machine()}, think {args.think} s, "
        f"settle {args.settle} s, {args.changes} changes"
    )
    print("| notebook | explorer | controls | p50 ms | p95 ms | min ms | max ms | Run All s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path, i, n, p50, p95, lo, hi, ran in rows:
        print(f"| `{path}` | {i} | {n} | {p50:.0f} | {p95:.0f} | {lo:.0f} | {hi:.0f} | {ran:.0f} |")


if __name__ == "__main__":
    main()
