"""`autograder grade`: import a class's submissions, grade them in parallel, write the reports.

Parallelism without write contention: every worker grades in its own throw-away
nbgrader course with its own sqlite file, and only this (parent) process writes the
real gradebook, one result at a time, as results arrive. Each result is then written
to a journal file (atomically, keyed by a hash of everything that decides the grade),
so a batch killed half-way resumes with what is already graded. Where the jobs run
(this machine's worker processes, or a Dask cluster) is a runner's business
(:mod:`autograder.runner`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder import runner
from autograder.collect import (
    Submission,
    find_submissions,
    release_grade_ids,
    submissions_folder,
)
from autograder.course import course_config, make_template, new_scratch, tool_env
from autograder.runner import Batch, Runner
from autograder.sandbox import Limits
from autograder.worker import Job, Result

# Part of every journal digest: a change to what grading records (2: the feedback state,
# statement-based hidden-test scrubbing, the chosen notebook) regrades old journals.
VERSION = "2"


@dataclass
class GradeRun:
    """What a call to :func:`grade` did."""

    out: Path
    db_url: str
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _digest(sub: Submission, template: Path, assignment: str, limits: Limits) -> str:
    h = hashlib.sha256(
        f"autograder {VERSION}\n{json.dumps(asdict(limits), sort_keys=True)}\n".encode()
    )
    for p in sorted((template / "source" / assignment).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(template).as_posix().encode() + b"\0" + p.read_bytes())
    for name in sorted(sub.files):
        h.update(f"\0{name}\0".encode() + Path(sub.files[name]).read_bytes())
    for name in sorted(sub.ambiguous):
        for path in sub.ambiguous[name]:
            h.update(f"\0?{name}\0{Path(path).name}\0".encode() + Path(path).read_bytes())
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def journal_path(out: Path, assignment: str, student: str) -> Path:
    return out / "journal" / assignment / f"{student}.json"


def merge_result(db: Any, result: dict[str, Any]) -> None:
    """Write one result into the main gradebook (called by the parent only, serially).

    ``db`` is a gradebook URL or an open :class:`nbgrader.api.Gradebook` (a batch keeps
    one open: opening one costs more than writing a result).
    """
    from nbgrader.api import Gradebook, MissingEntry

    if isinstance(db, str):
        with Gradebook(db) as gb:
            merge_result(gb, result)
        return
    gb = db
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader trips SQLAlchemy's autoflush warnings
        gb.update_or_create_student(result["student"])
        gb.update_or_create_submission(result["assignment"], result["student"])
        for nb_name, grades in result["grades"].items():
            try:
                snb = gb.find_submission_notebook(nb_name, result["assignment"], result["student"])
            except MissingEntry:
                continue
            snb.flagged = result["status"] != "ok"
            for grade in snb.grades:
                g = grades.get(grade.name)
                if g is None:
                    continue
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
        gb.db.commit()


def _ambiguous_result(sub: Submission, assignment: str, gb: Any, digest: str) -> dict[str, Any]:
    """The result of a submission with two equally good files for a notebook: 0, not graded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader trips SQLAlchemy's autoflush warnings
        grades = {
            nb.name: {
                cell.name: {
                    "auto_score": 0.0,
                    "max_score": float(cell.max_score),
                    "needs_manual_grade": False,
                }
                for cell in nb.grade_cells
            }
            for nb in gb.find_assignment(assignment).notebooks
        }
    max_score = sum(g["max_score"] for nb in grades.values() for g in nb.values())
    return Result(
        sub.student, assignment, "ambiguous_submission", sub.problem, 0.0, max_score, grades, digest
    ).to_json()


def _import_submission(sub: Submission, out: Path, assignment: str) -> dict[str, str]:
    """Copy a submission into the course layout ``out/submitted/STUDENT/ASSIGNMENT/``."""
    dest = out / "submitted" / sub.student / assignment
    files: dict[str, str] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for name, path in sub.files.items():
        fname = (
            f"{name}.ipynb"
            if Path(path).suffix == ".ipynb" and not name.endswith(".ipynb")
            else name
        )
        target = dest / fname
        if Path(path).resolve() != target.resolve():
            shutil.copyfile(path, target)
        files[name] = str(target)
    return files


def grade(
    course_root: Path,
    assignment: str,
    submissions: Path,
    out: Path | None = None,
    db_url: str | None = None,
    workers: int | None = None,
    unsafe: bool = False,
    limits: Limits | None = None,
    progress: bool = True,
    force: bool = False,
    cluster: str | None = None,
) -> GradeRun:
    """Grade every submission of ``assignment`` found in ``submissions``.

    Args:
        course_root: folder with ``solutions/`` (and ``nbgrader_config.py``).
        assignment: the assignment (a folder of ``solutions/``).
        submissions: nbgrader ``submitted/`` tree, flat folder or zip.
        out: output folder (default ``course_root/grading``).
        db_url: gradebook URL (default sqlite in ``out``).
        workers: parallel workers (default: the number of cores).
        unsafe: run kernels without the sandbox (limits still apply).
        limits: resource limits per submission.
        progress: show a progress bar.
        force: grade again even what the journal says is graded and unchanged.
        cluster: a Dask scheduler (``tcp://HOST:8786``) or ``local:N`` (N worker
            processes here) to grade on instead of this machine's worker processes.
    """
    tool_env()
    course_root = Path(course_root).resolve()
    out = Path(out or course_root / "grading").resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    limits = limits or Limits()
    submissions = Path(submissions).resolve()
    config = course_config(course_root)

    scratch = new_scratch()
    run = GradeRun(out=out, db_url=db_url)
    where = _runner(cluster, workers)
    gradebook = None
    try:
        batch = Batch(
            course_root,
            assignment,
            out,
            scratch,
            submissions if submissions.is_dir() else submissions.parent,
            limits,
            unsafe,
        )
        kernel_dirs = where.start(batch)
        template = scratch / "template"
        make_template(course_root, assignment, template, config)
        fresh = out / "gradebook.db"
        if db_url == f"sqlite:///{fresh}" and not fresh.exists():
            # A new default gradebook is exactly the template's: copy it, don't regenerate.
            shutil.copyfile(template / "gradebook.db", fresh)
        else:
            make_template(course_root, assignment, scratch / "main", config, db_url=db_url)
        grade_ids = release_grade_ids(template / "release" / assignment)
        notebooks = sorted(grade_ids)

        folder = submissions_folder(submissions, out / "incoming" / submissions.stem)
        subs, run.warnings = find_submissions(folder, assignment, notebooks, grade_ids)

        from nbgrader.api import Gradebook

        gradebook = Gradebook(db_url)  # one connection for the batch: only this process writes
        jobs: list[Job] = []
        settled: list[dict[str, Any]] = []  # results known without running a kernel
        for sub in subs:
            digest = _digest(sub, template, assignment, limits)
            jpath = journal_path(out, assignment, sub.student)
            if not force and jpath.exists():
                try:
                    done = json.loads(jpath.read_text())
                except (OSError, ValueError):
                    done = {}
                if done.get("digest") == digest:
                    # Already graded and unchanged: make sure the gradebook has it, no more.
                    merge_result(gradebook, done)
                    run.skipped.append(sub.student)
                    run.results.append(done)
                    continue
            if sub.ambiguous:
                settled.append(_ambiguous_result(sub, assignment, gradebook, digest))
                continue
            files = _import_submission(sub, out, assignment)
            jobs.append(
                Job(
                    sub.student,
                    assignment,
                    files,
                    str(template),
                    str(kernel_dirs),
                    str(scratch),
                    str(out),
                    limits,
                    config,
                    digest,
                    sandboxed=not unsafe,
                )
            )
        results = runner.results(where, jobs, progress)
        if jobs:
            _warm_reports()
        for result in itertools.chain(settled, results):
            t = time.monotonic()
            merge_result(gradebook, result)
            result.setdefault("timing", {})["merge"] = round(time.monotonic() - t, 3)
            _write_json(journal_path(out, assignment, result["student"]), result)
            run.results.append(result)
    finally:
        if gradebook is not None:
            gradebook.close()
        where.close()
        shutil.rmtree(scratch, ignore_errors=True)

    from autograder.report import write_reports

    write_reports(out, db_url)
    run.results.sort(key=lambda r: r["student"])
    return run


def _runner(cluster: str | None, workers: int | None) -> Runner:
    """Where the batch runs: a Dask cluster, or this machine's worker processes."""
    if cluster:
        from autograder.runner_dask import DaskRunner

        return DaskRunner(cluster)
    from autograder.runner_local import LocalRunner, ncores

    return LocalRunner(max(1, workers or ncores()))


def _warm_reports() -> None:
    """Import the plotting library in the background while the batch is graded."""
    import threading

    def work() -> None:
        try:
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # noqa: BLE001  (the report says so itself later)
            pass

    threading.Thread(target=work, name="warm-reports", daemon=True).start()
