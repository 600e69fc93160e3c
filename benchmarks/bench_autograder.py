"""Benchmark: `autograder grade --workers 2` against stock `nbgrader autograde`.

Builds 30 submissions of the chapter 1 notebook (correct, wrong and broken), then
times, on the same submissions and with the same per-cell timeout, in interleaved
rounds (ours, stock, ours, stock, ...: a shared machine's load changes):

1. ``autograder grade --workers 2 --force`` (sandboxed; import, grade, feedback, CSV, plots);
2. stock ``nbgrader autograde`` + ``generate_feedback`` + ``export`` (the same work:
   one submission at a time, no sandbox);

then once ``autograder grade --workers 1`` and bare execution of each correct notebook
with nbclient (no nbgrader, no sandbox). Each round records the load average and the
mean seconds per step of a correct submission from the grading journal.

Run from the repository root, under the shared benchmark lock:
``flock /tmp/bench.lock .venv/bin/python benchmarks/bench_autograder.py --rounds 3``
(``--help`` for the options). Results are printed and written to
``benchmarks/_work/results.json``.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"
ASSIGNMENT = "ch01_linear_collapse"
CELL_TIMEOUT = 10
N = 30


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e["MPLBACKEND"] = "Agg"
    return e


def _solution_code(src: nbformat.NotebookNode) -> dict[str, str]:
    out = {}
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(
                ln
                for ln in cell.source.splitlines()
                if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln
            )
    return out


def submissions(release: nbformat.NotebookNode, src: nbformat.NotebookNode) -> dict[str, bytes]:
    """30 submissions: 14 correct, 8 wrong or unanswered, 8 broken in different ways."""
    sol = _solution_code(src)
    solution_ids = list(sol)

    def filled(
        skip: str | None = None, replace: dict[str, str] | None = None
    ) -> nbformat.NotebookNode:
        nb = copy.deepcopy(release)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in sol and gid != skip:
                cell.source = (replace or {}).get(gid, sol[gid])
        return nb

    subs: dict[str, nbformat.NotebookNode | bytes] = {}
    for i in range(14):
        subs[f"correct{i:02d}"] = filled()
    for i, gid in enumerate(solution_ids * 3):
        if len([k for k in subs if k.startswith("wrong")]) >= 6:
            break
        subs[f"wrong{i:02d}"] = filled(skip=gid)  # one exercise left as the stub
    subs["wrong_blank"] = copy.deepcopy(release)
    subs["wrong_rank"] = filled(
        replace={solution_ids[-1]: "def collapsed_rank(layers):\n    return 1"}
    )
    first = solution_ids[0]
    subs["broken_loop"] = filled(replace={first: "while True:\n    pass"})
    subs["broken_exit"] = filled(replace={first: "import os\nos._exit(1)"})
    subs["broken_sysexit"] = filled(replace={first: sol[first] + "\nimport sys\nsys.exit(2)"})
    text = nbformat.writes(filled())
    subs["broken_json"] = text[: len(text) // 3].encode()
    subs["broken_empty"] = b""
    deleted = filled()
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")][
        :
    ] + []
    subs["broken_deleted"] = deleted
    edited = filled()
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "pass"
    subs["broken_edited"] = edited
    subs["broken_output"] = filled(
        replace={first: sol[first] + "\nfor _ in range(30):\n    print('x' * 1_000_000)"}
    )
    assert len(subs) == N, len(subs)
    return {k: v if isinstance(v, bytes) else nbformat.writes(v).encode() for k, v in subs.items()}


def setup() -> tuple[Path, dict[str, bytes]]:
    if WORK.exists():
        shutil.rmtree(WORK)
    course = WORK / "course"
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.source_directory = 'solutions'\n"
        "c.CourseDirectory.course_id = 'bench'\n"
        'c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}\n'
        f"c.Execute.timeout = {CELL_TIMEOUT}\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            "generate_assignment",
            ASSIGNMENT,
            "--force",
            "--log-level=WARN",
        ],
        cwd=course,
        env=env(),
        check=True,
    )
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    src = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    subs = submissions(release, src)
    flat = WORK / "flat"
    flat.mkdir()
    for student, data in subs.items():
        (flat / f"{student}.ipynb").write_bytes(data)
        d = course / "submitted" / student / ASSIGNMENT
        d.mkdir(parents=True)
        (d / f"{ASSIGNMENT}.ipynb").write_bytes(data)
    return course, subs


CPU: dict[str, float] = {}


def timed(cmd: list[str], cwd: Path, label: str) -> float:
    """Wall seconds of a command; its CPU seconds (with all its children) go to ``CPU``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # nbgrader exits 1 when some submission failed
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    CPU[label] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"  {label}: {elapsed:.1f} s wall, {CPU[label]:.1f} s CPU", flush=True)
    return elapsed


def bare_nbclient(subs: dict[str, bytes]) -> list[float]:
    """Seconds to execute each correct submission with nbclient alone (kernel start included)."""
    from nbclient import NotebookClient

    times = []
    # As under nbgrader: the notebook's optional explorer cells skip themselves.
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    run_dir = WORK / "bare"
    run_dir.mkdir()
    for student, data in subs.items():
        if not student.startswith("correct"):
            continue
        try:
            nb = nbformat.reads(data.decode(), as_version=4)
        except Exception:  # noqa: BLE001
            continue
        start = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            allow_errors=True,
            kernel_name="python3",
            resources={"metadata": {"path": str(run_dir)}},
        )
        try:
            client.execute()
        except Exception:  # noqa: BLE001  (a dead kernel ends the bare run too)
            pass
        times.append(time.perf_counter() - start)
    return times


def _grade_cmd(course: Path, out: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autograder",
        "--course",
        str(course),
        "grade",
        ASSIGNMENT,
        str(WORK / "flat"),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--cell-timeout",
        str(CELL_TIMEOUT),
        "--no-progress",
        "--force",
    ]


def _stock(course: Path, label: str) -> float:
    """Stock nbgrader's three commands for the same result: grades, feedback, a CSV."""
    py = sys.executable
    total = 0.0
    for step in (
        ["autograde", ASSIGNMENT, "--force"],
        ["generate_feedback", ASSIGNMENT, "--force"],
        ["export", "--to", str(WORK / "stock_grades.csv")],
    ):
        total += timed(
            [py, "-m", "nbgrader", *step, "--log-level=ERROR"], course, f"{label}_{step[0]}"
        )
    return total


def _breakdown(out: Path) -> dict[str, float]:
    """Mean seconds per step over the correct submissions, from the grading journal."""
    journal = [json.loads(p.read_text()) for p in (out / "journal" / ASSIGNMENT).glob("*.json")]
    rows = [r for r in journal if r["student"].startswith("correct")]
    steps: dict[str, float] = {}
    for r in rows:
        for step, sec in r.get("timing", {}).items():
            steps[step] = steps.get(step, 0.0) + sec / len(rows)
    steps["total_in_worker"] = sum(r["seconds"] for r in rows) / len(rows)
    return {k: round(v, 3) for k, v in steps.items()}


def _args(argv: list[str] | None = None):
    import argparse

    parser = argparse.ArgumentParser(
        description="Time `autograder grade --workers 2` against stock nbgrader's autograde + "
        "generate_feedback + export on the same 30 submissions, in interleaved rounds."
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of ours and stock (default 3)"
    )
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the --workers 1 run and the bare nbclient runs after the rounds",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import statistics

    args = _args(argv)
    repeats = args.rounds
    os.environ.update(env())
    course, subs = setup()
    print(f"{N} submissions of {ASSIGNMENT}; {os.cpu_count()} cores; {repeats} rounds", flush=True)
    results: dict[str, object] = {"rounds": []}
    ours, stock = [], []
    # Interleaved, so that the machine's changing load hits both alike.
    for r in range(repeats):
        load = os.getloadavg()[0]
        out = WORK / f"grading_w2_r{r}"
        w2 = timed(_grade_cmd(course, out, 2), course, f"autograder_w2_r{r}")
        st = _stock(course, f"stock_r{r}")
        ours.append(w2)
        stock.append(st)
        results["rounds"].append(
            {
                "load_before": round(load, 2),
                "autograder_w2_s": round(w2, 2),
                "stock_s": round(st, 2),
                "ratio": round(w2 / st, 3),
                "breakdown_w2": _breakdown(out),
            }
        )
        print(f"  round {r}: load {load:.2f}, ours {w2:.1f} s, stock {st:.1f} s", flush=True)
    results["median_autograder_w2_s"] = statistics.median(ours)
    results["median_stock_s"] = statistics.median(stock)
    results["ratio_of_medians"] = round(statistics.median(ours) / statistics.median(stock), 3)
    if not args.no_extras:
        results["autograder_w1_s"] = timed(
            _grade_cmd(course, WORK / "grading_w1", 1), course, "autograder_w1"
        )
        results["breakdown_w1"] = _breakdown(WORK / "grading_w1")
        bare = bare_nbclient(subs)
        results["bare_nbclient_mean_s"] = sum(bare) / len(bare)
        results["overhead_per_submission_s"] = (
            results["breakdown_w1"]["total_in_worker"] - results["bare_nbclient_mean_s"]
        )
    results["cpu_s"] = CPU
    results["load_after"] = round(os.getloadavg()[0], 2)
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "rounds"}, indent=1))


if __name__ == "__main__":
    main()
