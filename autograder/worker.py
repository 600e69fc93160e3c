"""Grade one submission in a private, throw-away nbgrader course (runs in a worker process).

Each submission gets its own course folder with a copy of the assignment's source and
a copy of a ready-made sqlite gradebook, so workers never share a database or a file;
the parent process merges the returned scores into the real gradebook, one at a time.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import nbformat
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

from autograder.checks import check_notebook
from autograder.feedback import Secrets, hidden_markers, scrub_notebook, secrets, summary_cell
from autograder.sandbox import Limits
from autograder.status import classify, one_line
from autograder.testcode import uses_test_code

# Feedback states (Result.feedback_status, the `feedback` column of grades.csv).
PUBLISHED = "published"
WITHHELD = "withheld"


@dataclass
class Job:
    """One submission to grade."""

    student: str
    assignment: str
    files: dict[str, str]  # notebook name (no .ipynb) -> submitted file; other files by name
    template: str  # folder with source/ASSIGNMENT, release/ASSIGNMENT and gradebook.db
    kernel_dirs: str
    scratch: str
    out: str  # the main output folder: autograded/ and feedback/ go there
    limits: Limits
    config: dict[str, Any] = field(default_factory=dict)  # extra nbgrader config (sections)
    digest: str = ""
    sandboxed: bool = True  # False with --unsafe


@dataclass
class Result:
    """What grading one submission produced (JSON-serialisable; the journal stores it)."""

    student: str
    assignment: str
    status: str
    reason: str
    score: float
    max_score: float
    grades: dict[str, dict[str, dict[str, Any]]]  # notebook -> grade_id -> score fields
    digest: str = ""
    feedback: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)  # seconds per step of grading
    # "published" (a page per notebook), "withheld: WHY" (a page could not be made safe
    # or was not made), "none: WHY" (nothing was graded); "" from an older journal.
    feedback_status: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _nbgrader_config(job: Job, course: Path, events: Path) -> Config:
    cfg = Config()
    for section, values in job.config.items():
        for key, value in values.items():
            cfg[section][key] = value
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = "feedback"
    cfg.CourseDirectory.assignment_id = job.assignment
    cfg.CourseDirectory.student_id = job.student
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from autograder.executor import SandboxedExecute

    cfg.Autograde.autograde_preprocessors = [
        SandboxedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    lim = job.limits
    cfg.SandboxedExecute.kernel_dirs = job.kernel_dirs
    cfg.SandboxedExecute.socket_root = job.scratch
    cfg.SandboxedExecute.events_path = str(events)
    cfg.SandboxedExecute.notebook_timeout = lim.notebook_timeout
    cfg.SandboxedExecute.output_limit = lim.output_mb
    cfg.SandboxedExecute.timeout = lim.cell_timeout
    cfg.SandboxedExecute.disk_limit = lim.disk_mb
    cfg.SandboxedExecute.max_processes = lim.max_processes
    cfg.SandboxedExecute.sandboxed = job.sandboxed
    cfg.SandboxedExecute.startup_timeout = 60
    # The kernel's state is thrown away: no need to wait for a polite shutdown.
    cfg.SandboxedExecute.shutdown_kernel = "immediate"
    return cfg


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback HTML exporter, compiling its Jinja template once per process.

    nbgrader builds a new exporter for every submission and so recompiles the same
    templates each time (about half a second); the configuration is the same for a
    whole batch, so the compiled template and its environment are kept.
    """

    _shared: ClassVar[dict[tuple, tuple[Any, Any]]] = {}

    def _load_template(self):  # noqa: D102  (nbconvert API)
        key = (
            self.template_name,
            self.template_file,
            tuple(self.extra_template_basedirs),
            tuple(self.extra_template_paths),
        )
        if key not in self._shared:
            self._shared[key] = (super()._load_template(), self.environment)
        template, environment = self._shared[key]
        self._environment_cached = environment
        return template


def _run(app_cls: type, cfg: Config, course: Path) -> str:
    """Run an nbgrader converter in-process; return its log text ('' when it succeeded)."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=cfg)
    app = app_cls(coursedir=coursedir, config=cfg)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.WARNING)
    app.log.addHandler(handler)
    try:
        app.start()
    except Exception:  # noqa: BLE001  (nbgrader raises NbGraderException and others)
        return buffer.getvalue() + traceback.format_exc()
    finally:
        app.log.removeHandler(handler)
    return ""


def _read_scores(
    course: Path, job: Job
) -> tuple[float, float, dict[str, dict[str, dict[str, Any]]]]:
    from nbgrader.api import Gradebook, MissingEntry

    grades: dict[str, dict[str, dict[str, Any]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(job.assignment)
        try:
            sub = gb.find_submission(job.assignment, job.student)
        except MissingEntry:
            sub = None
        for notebook in assignment.notebooks:
            per: dict[str, dict[str, Any]] = {}
            for cell in notebook.grade_cells:
                per[cell.name] = {
                    "auto_score": 0.0,
                    "max_score": float(cell.max_score),
                    "needs_manual_grade": False,
                }
            if sub is not None:
                snb = gb.find_submission_notebook(notebook.name, job.assignment, job.student)
                for g in snb.grades:
                    per[g.name] = {
                        "auto_score": float(g.auto_score or 0.0),
                        "max_score": float(g.max_score),
                        "needs_manual_grade": bool(g.needs_manual_grade),
                    }
            grades[notebook.name] = per
    score = sum(g["auto_score"] for nb in grades.values() for g in nb.values())
    max_score = sum(g["max_score"] for nb in grades.values() for g in nb.values())
    return score, max_score, grades


def grade_one(job: Job) -> dict[str, Any]:
    """Grade one submission; never raises: failures become a status and a reason."""
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="g", dir=job.scratch))
    try:
        result = _grade(job, tmp)
    except Exception as exc:  # noqa: BLE001  (one bad submission never stops the batch)
        result = Result(
            job.student,
            job.assignment,
            "grader_error",
            one_line(f"{type(exc).__name__}: {exc}"),
            0.0,
            0.0,
            {},
            job.digest,
            feedback_status="none: the grader failed on this submission",
        )
        (Path(job.out) / "logs").mkdir(parents=True, exist_ok=True)
        (Path(job.out) / "logs" / f"{job.assignment}__{job.student}.log").write_text(
            traceback.format_exc()
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.seconds = round(time.monotonic() - start, 3)
    return result.to_json()


def _grade(job: Job, tmp: Path) -> Result:
    from nbgrader.converters import Autograde

    clock = _Clock()
    template = Path(job.template)
    course = tmp / "c"
    course.mkdir()
    shutil.copytree(template / "source", course / "source")
    shutil.copy2(template / "gradebook.db", course / "gradebook.db")
    release = template / "release" / job.assignment
    source = template / "source" / job.assignment
    sub_dir = course / "submitted" / job.student / job.assignment
    sub_dir.mkdir(parents=True)

    clock.lap("setup")
    issues: list[tuple[str, str]] = []
    usable = 0
    release_nbs = {p.stem: nbformat.read(p, as_version=4) for p in sorted(release.glob("*.ipynb"))}
    source_nbs = {
        name: nbformat.read(source / f"{name}.ipynb", as_version=4) for name in release_nbs
    }
    for name, rnb in release_nbs.items():
        path = job.files.get(name)
        if path is None:
            issues.append(("invalid_notebook", f"no {name}.ipynb in the submission"))
            continue
        checked = check_notebook(Path(path).read_bytes(), rnb)
        tag = f"{name}.ipynb: " if len(release_nbs) > 1 else ""
        issues += [(s, tag + r) for s, r in checked.issues]
        if checked.notebook is not None:
            nbformat.write(checked.notebook, sub_dir / f"{name}.ipynb")
            usable += 1
            used = uses_test_code(checked.notebook, source_nbs[name], rnb)
            if used:
                issues.append(("uses_test_code", tag + "; ".join(used)))
    for name, path in job.files.items():  # data files the student handed in with the notebook
        if name not in release_nbs and not name.endswith(".ipynb"):
            shutil.copy2(path, sub_dir / name)

    clock.lap("checks")
    events_path = tmp / "events.json"
    graded: dict[str, nbformat.NotebookNode] = {}
    log = ""
    if usable:
        cfg = _nbgrader_config(job, course, events_path)
        log = _run(Autograde, cfg, course)
        auto_dir = course / "autograded" / job.student / job.assignment
        _keep_only(auto_dir, {f"{name}.ipynb" for name in release_nbs})
        for p in sorted(auto_dir.glob("*.ipynb")):
            graded[p.stem] = nbformat.read(p, as_version=4)
        if usable and not graded:
            issues.append(
                (
                    "grader_error",
                    "nbgrader autograde produced no notebook: "
                    + one_line(log.strip().splitlines()[-1] if log.strip() else "no log"),
                )
            )
    clock.lap("autograde")
    events = json.loads(events_path.read_text()) if events_path.exists() else {}
    for ev in events.values():
        for step, sec in ev.get("seconds", {}).items():
            clock.laps[step] = round(clock.laps.get(step, 0.0) + sec, 3)
            clock.laps["autograde"] = round(clock.laps["autograde"] - sec, 3)
    status, reason = classify(issues, events, graded, job.limits)
    score, max_score, grades = _read_scores(course, job)
    clock.lap("scores")

    out = Path(job.out)
    feedback: list[str] = []
    feedback_status = "none: no notebook was graded"
    if graded:
        dest = out / "autograded" / job.student / job.assignment
        _replace_dir(course / "autograded" / job.student / job.assignment, dest, only="*.ipynb")
        feedback, feedback_status, feedback_log = _feedback(
            job, course, events_path, graded, grades, source_nbs, release_nbs
        )
    else:
        feedback_log = ""
        # No page now: an older one (from an earlier hand-in) must not stay in its place.
        remove_pages(out / "feedback" / job.student / job.assignment, list(release_nbs))
    if graded and status != "grader_error":
        log = ""  # nbgrader's warnings about a notebook it graded are not kept
    if log or feedback_log:
        (out / "logs").mkdir(parents=True, exist_ok=True)
        (out / "logs" / f"{job.assignment}__{job.student}.log").write_text(
            log + ("\n" if log else "") + feedback_log
        )
    clock.lap("feedback")
    return Result(
        job.student,
        job.assignment,
        status,
        reason,
        score,
        max_score,
        grades,
        job.digest,
        feedback,
        timing=clock.laps,
        feedback_status=feedback_status,
    )


def _feedback(
    job: Job,
    course: Path,
    events_path: Path,
    graded: dict[str, nbformat.NotebookNode],
    grades: dict[str, dict[str, dict[str, Any]]],
    source_nbs: dict[str, nbformat.NotebookNode],
    release_nbs: dict[str, nbformat.NotebookNode],
) -> tuple[list[str], str, str]:
    """Make and publish each notebook's feedback page.

    The hidden tests are scrubbed from a copy of the graded notebook, a summary of the
    graded cells goes on top, and nbgrader renders the page. A page that still shows
    hidden test code is made again without any cell output; if even that one shows it,
    or nbgrader made no page, the page is withheld and the state says why.

    Returns the pages published, the feedback state (``published``, ``withheld: WHY``)
    and nbgrader's log when a page was withheld.
    """
    from nbgrader.converters import GenerateFeedback

    begin, end = hidden_markers(job.config)
    out = Path(job.out)
    auto = course / "autograded" / job.student / job.assignment
    fb_dir = course / "feedback" / job.student / job.assignment
    fb_dest = out / "feedback" / job.student / job.assignment
    secret: dict[str, Secrets] = {}
    pending: dict[str, nbformat.NotebookNode] = {}
    for name, nb in graded.items():
        secret[name] = secrets(source_nbs[name], release_nbs[name], nb, begin, end)
        page_nb = scrub_notebook(copy.deepcopy(nb), secret[name], begin, end)
        page_nb.cells.insert(0, summary_cell(page_nb, grades.get(name, {}), secret[name]))
        pending[name] = page_nb
    published: dict[str, str] = {}
    why: dict[str, str] = {}
    log = ""
    for bare in (False, True):
        for p in auto.glob("*.ipynb"):
            if p.stem not in pending:
                p.unlink()  # already published: not rendered again
        for name, nb in pending.items():
            if bare:
                for cell in nb.cells:
                    if "outputs" in cell:
                        cell.outputs = []
                summary = nb.cells[0]
                summary.source += "\n\nThe cells' output is not shown: it showed hidden test code."
            nbformat.write(nb, auto / f"{name}.ipynb")
        shutil.rmtree(fb_dir, ignore_errors=True)
        cfg = _nbgrader_config(job, course, events_path)
        cfg.GenerateFeedback.exporter_class = FeedbackExporter
        log = _run(GenerateFeedback, cfg, course)
        for name in list(pending):
            page = fb_dir / f"{name}.html"
            if not page.exists():
                last = log.strip().splitlines()[-1] if log.strip() else "no log"
                why[name] = "nbgrader made no page: " + one_line(last, 120)
                continue
            text = page.read_text(encoding="utf-8")
            leaks = secret[name].leaks(text)
            if leaks:
                why[name] = (
                    f"the page showed {len(leaks)} line(s) of hidden test code "
                    "even without the cells' output"
                )
                continue
            fb_dest.mkdir(parents=True, exist_ok=True)
            tmp_page = fb_dest / f".{name}.html.tmp"
            tmp_page.write_text(text, encoding="utf-8")
            os.replace(tmp_page, fb_dest / f"{name}.html")
            published[name] = "outputs removed" if bare else ""
            why.pop(name, None)
            del pending[name]
        if not pending:
            break
    remove_pages(fb_dest, list(pending))  # never leave an older page in place
    several = len(graded) > 1
    if why:
        state = (
            WITHHELD
            + ": "
            + "; ".join(
                (f"{name}.ipynb: " if several else "") + reason for name, reason in why.items()
            )
        )
    else:
        state = PUBLISHED
        bare_pages = [name for name, note in published.items() if note]
        if bare_pages:
            which = ", ".join(f"{n}.ipynb" for n in bare_pages) if several else "the page"
            state += f" (without the cells' output in {which}: it showed hidden test code)"
    pages = [
        str((fb_dest / f"{name}.html").relative_to(out)) for name in graded if name in published
    ]
    return pages, state, log if pending else ""


def remove_pages(folder: Path, names: list[str]) -> None:
    """Delete the named notebooks' pages from a student's feedback folder (and it, if empty)."""
    for name in names:
        (folder / f"{name}.html").unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class _Clock:
    """Seconds spent in each step (``autograde`` is nbgrader's own part, kernel excluded)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._t, 3)
        self._t = now


def _replace_dir(src: Path, dest: Path, only: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.glob(only):
        if p.is_file() and not p.is_symlink():
            tmp = dest / f".{p.name}.tmp"
            shutil.copyfile(p, tmp)
            os.replace(tmp, dest / p.name)


def _keep_only(folder: Path, names: set[str]) -> None:
    """Delete what student code left in its working copy (links, files) but the notebooks."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name in names and p.is_file() and not p.is_symlink():
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
