"""Benchmark: the cluster path at 120 submissions, its per-task overhead and its single writer.

Builds 120 submissions of the chapter 1 notebook: the 30 of ``bench_autograder.py``
(14 correct, 8 wrong, 8 broken, one of them a 10 s infinite loop) four times over,
under different student names. Then, in this process:

1. ``grade(..., cluster="local:W")`` (a Dask ``LocalCluster`` of W worker processes), as
   ``autograder grade --cluster local:W`` runs it. Each task is timed on the worker (wall
   clock around the task function) and its arrival is timed in this process, so per
   task: ``in_worker`` (the task function), ``grade_one`` (the grading itself, from the
   journal), the worker's idle gap before it (between its previous task's end and this
   task's start: scheduling), the result's way back (worker end to arrival here), and
   what the single writer (this process) spends on it: the files, the gradebook and the
   journal entry.
2. The writer alone: the same 120 results (their journal entries and files, read back)
   written into a fresh gradebook and output folder as fast as it can, then the reports;
   this is the writer's capacity, with no worker competing for the CPU.

Run from the repository root, under the shared benchmark lock:
``flock -x /tmp/bench.lock .venv/bin/python benchmarks/bench_cluster_scale.py``
(``--help`` for the options). Results are printed and written to
``benchmarks/_work/scale/scale.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_autograder as ba  # noqa: E402

SCALE = ba.WORK / "scale"  # beside the speed benchmark's results, which it keeps
TIMES: dict[str, dict[str, float]] = {}  # student -> what this process saw


def _timed_task(task):
    """The worker's task function, with its wall-clock start and end (same machine, same clock)."""
    import os as _os
    import time as _time

    from autograder.runner_dask import grade_task

    start = _time.time()
    reply = grade_task(task)
    timing = reply["result"].setdefault("timing", {})
    timing.update(task_start=start, task_end=_time.time(), task_pid=_os.getpid())
    return reply


def _instrument() -> None:
    """Wrap the cluster's task and the writer's three steps to record when and how long."""
    from autograder import grade, runner_dask

    runner_dask.grade_task = _timed_task  # defined in __main__: Dask ships it by value
    real_write_files, real_merge, real_json = (
        runner_dask._write_files,
        grade.merge_result,
        grade._write_json,
    )

    def write_files(out, files):
        t = time.time()
        real_write_files(out, files)
        write_files.last = (t, time.time() - t)

    write_files.last = (0.0, 0.0)

    def merge(db, result):
        t = time.time()
        real_merge(db, result)
        arrived, files_s = write_files.last
        TIMES.setdefault(result["student"], {}).update(
            arrived=arrived, files_s=files_s, merge_s=time.time() - t
        )

    def write_json(path, data):
        t = time.time()
        real_json(path, data)
        if isinstance(data, dict) and data.get("student") in TIMES:
            TIMES[data["student"]]["journal_s"] = time.time() - t

    runner_dask._write_files = write_files
    grade.merge_result = merge
    grade._write_json = write_json


def make_submissions(copies: int) -> tuple[Path, Path]:
    """The benchmark's course and 30 submissions, ``copies`` times under new names."""
    if SCALE.exists():
        shutil.rmtree(SCALE)
    ba.WORK = SCALE / "base"  # the speed benchmark's setup, built here
    course, subs = ba.setup()
    flat = SCALE / "flat"
    flat.mkdir(parents=True)
    for k in range(copies):
        for student, data in subs.items():
            (flat / f"{student}_{k}.ipynb").write_bytes(data)
    return course, flat


def run_cluster(course: Path, flat: Path, workers: int) -> dict:
    from autograder.grade import grade
    from autograder.sandbox import Limits

    out = SCALE / "grading"
    load = os.getloadavg()[0]
    start = time.time()
    run = grade(
        course,
        ba.ASSIGNMENT,
        flat,
        out=out,
        limits=Limits(cell_timeout=ba.CELL_TIMEOUT),
        progress=False,
        force=True,
        cluster=f"local:{workers}",
    )
    wall = time.time() - start
    rows = []
    for r in run.results:
        t = r.get("timing", {})
        seen = TIMES.get(r["student"], {})
        if "task_start" not in t or "arrived" not in seen:
            continue
        rows.append(
            {
                "student": r["student"],
                "status": r["status"],
                "pid": t["task_pid"],
                "start": t["task_start"],
                "end": t["task_end"],
                "in_worker": t["task_end"] - t["task_start"],
                "grade_one": r["seconds"],
                "back": seen["arrived"] - t["task_end"],
                "writer": seen["files_s"] + seen["merge_s"] + seen.get("journal_s", 0.0),
            }
        )
    # Idle gap of each worker process before each of its tasks (after its first): scheduling.
    gaps = []
    rows.sort(key=lambda x: x["start"])
    for pid in {x["pid"] for x in rows}:
        mine = [x for x in rows if x["pid"] == pid]
        gaps += [b["start"] - a["end"] for a, b in zip(mine, mine[1:])]

    def mean(key: str) -> float:
        return statistics.fmean(x[key] for x in rows)

    correct = [x for x in rows if x["student"].startswith("correct")]
    return {
        "workers": workers,
        "submissions": len(run.results),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "wall_s": round(wall, 2),
        "first_task_start_after_s": round(rows[0]["start"] - start, 2),
        "after_last_arrival_s": round(start + wall - max(s["arrived"] for s in TIMES.values()), 2),
        "mean_in_worker_s": round(mean("in_worker"), 3),
        "mean_grade_one_s": round(mean("grade_one"), 3),
        "mean_task_wrapping_s": round(mean("in_worker") - mean("grade_one"), 3),
        "mean_in_worker_correct_s": round(statistics.fmean(x["in_worker"] for x in correct), 3),
        "mean_gap_before_task_s": round(statistics.fmean(gaps), 4) if gaps else None,
        "median_gap_before_task_s": round(statistics.median(gaps), 4) if gaps else None,
        "mean_result_back_s": round(mean("back"), 4),
        "median_result_back_s": round(statistics.median(x["back"] for x in rows), 4),
        "mean_writer_s": round(mean("writer"), 4),
        "sum_in_worker_s": round(sum(x["in_worker"] for x in rows), 1),
        "worker_processes_seen": len({x["pid"] for x in rows}),
    }


def writer_alone(course: Path) -> dict:
    """Replay the batch's results through the writer alone, into a fresh gradebook."""
    from autograder import grade, runner_dask
    from autograder.course import course_config, make_template
    from autograder.report import write_reports

    src = SCALE / "grading"
    out = SCALE / "writer_only"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    # A gradebook with the assignment but no submission: nbgrader's own, emptied.
    template = SCALE / "writer_template"
    if template.exists():
        shutil.rmtree(template)
    make_template(course, ba.ASSIGNMENT, template, course_config(course))
    shutil.copyfile(template / "gradebook.db", out / "gradebook.db")
    journal = sorted((src / "journal" / ba.ASSIGNMENT).glob("*.json"))
    results, files = [], []
    for p in journal:
        r = json.loads(p.read_text())
        results.append(r)
        produced = {}
        for part in ("autograded", "feedback"):
            folder = src / part / r["student"] / ba.ASSIGNMENT
            for f in sorted(folder.glob("*")):
                produced[f.relative_to(src).as_posix()] = f.read_bytes()
        files.append(produced)
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{out / 'gradebook.db'}"
    start = time.perf_counter()
    with Gradebook(db_url) as gb:
        for r, produced in zip(results, files):
            runner_dask._write_files(out, produced)
            grade.merge_result(gb, r)
            grade._write_json(grade.journal_path(out, ba.ASSIGNMENT, r["student"]), r)
    per = (time.perf_counter() - start) / len(results)
    t = time.perf_counter()
    write_reports(out, db_url)
    reports = time.perf_counter() - t
    return {
        "results": len(results),
        "writer_s_per_submission": round(per, 4),
        "reports_s": round(reports, 2),
        "bytes_per_result": int(statistics.fmean(sum(map(len, f.values())) for f in files)),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="times the 30 submissions (4: 120)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    args = parser.parse_args(argv)
    os.environ.update(ba.env())
    course, flat = make_submissions(args.copies)
    print(f"{args.copies * ba.N} submissions; {os.cpu_count()} cores", flush=True)
    _instrument()
    results = {"cluster": run_cluster(course, flat, args.workers)}
    print(json.dumps(results["cluster"], indent=1), flush=True)
    results["writer_alone"] = writer_alone(course)
    print(json.dumps(results["writer_alone"], indent=1), flush=True)
    (SCALE / "scale.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
