"""Benchmark: `autograder grade --workers 2` against stock `nbgrader autograde`.

Builds 30 submissions of the chapter 1 notebook (correct, wrong and broken), then
times, on the same submissions and with the same per-cell timeout:

1. stock ``nbgrader autograde`` (one submission at a time, no sandbox);
2. stock ``nbgrader generate_feedback`` after it (our grade command also makes feedback);
3. ``autograder grade --workers 2`` (sandboxed; import, grade, feedback, CSV, plots);
4. ``autograder grade --workers 1``;
5. bare execution of each correct notebook with nbclient (no nbgrader, no sandbox), to
   get the autograder's overhead per submission (its mean time per correct submission
   with one worker, minus the bare mean).

Run from the repository root:  ``.venv/bin/python benchmarks/bench_autograder.py``
Results are printed and written to ``benchmarks/_work/results.json``.
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


def main() -> None:
    os.environ.update(env())
    course, subs = setup()
    py = sys.executable
    print(f"{N} submissions of {ASSIGNMENT}; {os.cpu_count()} cores", flush=True)
    results: dict[str, float | list[float] | str] = {}
    results["stock_autograde_s"] = timed(
        [py, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force", "--log-level=ERROR"],
        course,
        "stock_autograde",
    )
    results["stock_feedback_s"] = timed(
        [py, "-m", "nbgrader", "generate_feedback", ASSIGNMENT, "--force", "--log-level=ERROR"],
        course,
        "stock_feedback",
    )
    for workers in (2, 1):
        out = WORK / f"grading_w{workers}"
        results[f"autograder_w{workers}_s"] = timed(
            [
                py,
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
            ],
            course,
            f"autograder_w{workers}",
        )
        journal = [json.loads(p.read_text()) for p in (out / "journal" / ASSIGNMENT).glob("*.json")]
        # The same set as the bare run: the correct submissions.
        per = [r["seconds"] for r in journal if r["student"].startswith("correct")]
        results[f"autograder_w{workers}_mean_submission_s"] = sum(per) / len(per)
    bare = bare_nbclient(subs)
    results["bare_nbclient_mean_s"] = sum(bare) / len(bare)
    results["bare_nbclient_total_s"] = sum(bare)
    results["ratio_w2_vs_stock_autograde"] = (
        results["autograder_w2_s"] / results["stock_autograde_s"]
    )
    results["ratio_w2_vs_stock_autograde_plus_feedback"] = results["autograder_w2_s"] / (
        results["stock_autograde_s"] + results["stock_feedback_s"]
    )
    results["overhead_per_submission_s"] = (
        results["autograder_w1_mean_submission_s"] - results["bare_nbclient_mean_s"]
    )
    results.update({f"{k}_cpu_s": v for k, v in CPU.items()})
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    for key, value in results.items():
        print(f"{key:45s} {value:8.2f}" if isinstance(value, float) else f"{key} {value}")


if __name__ == "__main__":
    main()
