"""`autograder grade`: import a class's submissions, grade them in parallel, write the reports.

Parallelism without write contention: every worker grades in its own throw-away
nbgrader course with its own sqlite file, and only this (parent) process writes the
real gradebook, one result at a time, as results arrive. Each result is then written
to a journal file (atomically, keyed by a hash of everything that decides the grade),
so a batch killed half-way resumes with what is already graded.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.collect import (
    Submission,
    find_submissions,
    release_grade_ids,
    submissions_folder,
)
from autograder.sandbox import Limits, make_spec, write_kernel_spec
from autograder.worker import Job, Result, grade_one

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


def tool_env() -> None:
    """nbgrader shells out to ``alembic``: put this interpreter's bin/ first on PATH.

    It does so only to read the newest migration's id when it creates a gradebook,
    which costs a whole interpreter start (seconds); read it in-process instead.
    """
    bindir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bindir):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head


@functools.lru_cache(maxsize=1)
def _alembic_head() -> str:
    """The id of nbgrader's newest gradebook migration (what ``alembic heads`` prints)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        return ScriptDirectory.from_config(AlembicConfig(ini)).get_current_head()


def course_config(course_root: Path) -> dict[str, dict[str, Any]]:
    """The course's nbgrader_config.py as plain sections (only what matters to grading)."""
    path = course_root / "nbgrader_config.py"
    if not path.exists():
        return {}
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(path.name, path=str(course_root)).load_config()
    keep = ("ClearSolutions", "ClearHiddenTests", "LimitOutput", "IgnorePattern", "CourseDirectory")
    out: dict[str, dict[str, Any]] = {}
    for section in keep:
        if section in cfg:
            values = {
                k: v for k, v in cfg[section].items() if not k.endswith("directory") and k != "root"
            }
            if values:
                out[section] = values
    return out


def _ncores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def make_template(
    course_root: Path, assignment: str, dest: Path, config: dict, db_url: str | None = None
) -> None:
    """Generate the assignment into ``dest`` (source/, release/ and a gradebook) with nbgrader.

    With ``db_url`` the assignment is (also) recorded in that gradebook instead.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    src = course_root / "solutions" / assignment
    if not any(src.glob("*.ipynb")):
        raise FileNotFoundError(f"no assignment {assignment!r}: {src} holds no notebook")
    if (dest / "source" / assignment).exists():
        shutil.rmtree(dest / "source" / assignment)
    shutil.copytree(
        src,
        dest / "source" / assignment,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    cfg = Config()
    for section, values in config.items():
        for key, value in values.items():
            cfg[section][key] = value
    cfg.CourseDirectory.root = str(dest)
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.db_url = db_url or f"sqlite:///{dest / 'gradebook.db'}"
    cfg.CourseDirectory.assignment_id = assignment
    cfg.GenerateAssignment.force = True
    cfg.GenerateAssignment.create_assignment = True
    app = GenerateAssignment(coursedir=CourseDirectory(config=cfg), config=cfg)
    app.start()


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
    workers = max(1, workers or _ncores())
    submissions = Path(submissions).resolve()
    config = course_config(course_root)

    _remove_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix="ag-"))
    (scratch / "owner.pid").write_text(str(os.getpid()))
    run = GradeRun(out=out, db_url=db_url)
    client = dask_cluster = pool = gradebook = None
    if cluster:
        from autograder.cluster import connect, course_version, run_tasks, task_for

        client, dask_cluster = connect(cluster)
        version = course_version(course_root)
    else:
        # Start the workers now: they import nbgrader while this process prepares the batch.
        pool = _new_pool(workers)
        for _ in range(workers):
            pool.submit(_warm)
    try:
        hide = [
            course_root,
            out,
            scratch,
            submissions if submissions.is_dir() else submissions.parent,
        ]
        # One thread per kernel for the maths libraries, whatever --workers is: the workers
        # fill the cores, and a grade never depends on how many ran side by side.
        kernel_env = {
            v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        }
        if client is None:
            spec = make_spec(limits, hide=hide, unsafe=unsafe, env=kernel_env)
            kernel_dirs = write_kernel_spec(spec, scratch / "spec")
        else:
            kernel_dirs = scratch / "spec"  # each worker checks for and builds its own sandbox
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
        if client is None:
            results = _run_jobs(jobs, workers, progress, pool)
        else:
            extra = [str(out), str(submissions if submissions.is_dir() else submissions.parent)]
            tasks = [task_for(job, version, course_root, unsafe, extra) for job in jobs]
            results = run_tasks(client, tasks, out, progress)
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
        if pool is not None:
            # Idle now: let the workers exit while the reports are written.
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            _close_quietly(client, dask_cluster)
        shutil.rmtree(scratch, ignore_errors=True)

    from autograder.report import write_reports

    write_reports(out, db_url)
    run.results.sort(key=lambda r: r["student"])
    return run


def _warm_reports() -> None:
    """Import the plotting library in the background while the batch is graded."""
    import threading

    def work() -> None:
        try:
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # noqa: BLE001  (the report says so itself later)
            pass

    threading.Thread(target=work, name="warm-reports", daemon=True).start()


def _close_quietly(client: Any, dask_cluster: Any) -> None:
    """Close the Dask client (and a LocalCluster this command started), even without a scheduler."""
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    for thing in (client, dask_cluster):
        if thing is None:
            continue
        try:
            thing.close(timeout=10) if thing is client else thing.close()
        except Exception:  # noqa: BLE001  (a lost scheduler makes closing fail too)
            pass


def _init_worker() -> None:
    import warnings

    tool_env()
    # nbgrader's gradebook code trips SQLAlchemy's autoflush warnings; they are noise here.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    # One thread per kernel's maths libraries: the workers already use every core.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _remove_stale_scratch() -> None:
    """Delete the scratch folders of grading runs that were killed (``kill -9``, a crash)."""
    for folder in Path(tempfile.gettempdir()).glob("ag-*"):
        try:
            pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)


def _warm() -> None:
    """Import what grading needs (seconds) before the first submission arrives."""
    import nbgrader.converters  # noqa: F401

    import autograder.executor  # noqa: F401
    import autograder.worker  # noqa: F401


def _run_jobs(jobs: list[Job], workers: int, progress: bool, pool: ProcessPoolExecutor):
    """Yield results as they come; a crashed worker process only costs its own submissions."""
    if not jobs:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="grading", unit="nb", disable=not progress, file=sys.stderr)
    pending = list(jobs)
    attempts: dict[str, int] = {}
    while pending:
        if pool is None:
            pool = _new_pool(workers)
        futures = {pool.submit(grade_one, job): job for job in pending}
        pending = []
        broken = False
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                result = fut.result()
            except BrokenProcessPool:
                broken = True
                attempts[job.student] = attempts.get(job.student, 0) + 1
                if attempts[job.student] < 2:
                    pending.append(job)
                    continue
                result = Result(
                    job.student,
                    job.assignment,
                    "grader_error",
                    "the grading process crashed twice on this submission",
                    0.0,
                    0.0,
                    {},
                    job.digest,
                ).to_json()
            bar.update(1)
            bar.set_postfix_str(f"{job.student}: {result['status']}")
            yield result
        if broken:
            pool.shutdown(cancel_futures=True)
            pool = None
    bar.close()
