"""`autograder gradescope`: the zip Gradescope's autograder takes, and what runs inside it.

Gradescope unpacks the zip to ``/autograder/source``, runs ``setup.sh`` once to build
the image, then for each submission runs ``/autograder/run_autograder`` with the
student's files in ``/autograder/submission``; the grade is read from
``/autograder/results/results.json``. The zip holds:

* ``setup.sh``: the system tools of the sandbox (bubblewrap, setpriv), a venv with the
  course's pinned CPU torch and the course's packages;
* ``run_autograder``: runs ``python -m autograder.gradescope`` on the copy of the course
  in the zip and, whatever happens, leaves a results.json behind;
* ``course/``: what grading needs: the ``autograder`` and ``actlab`` packages,
  ``pyproject.toml`` (with the README it names), ``nbgrader_config.py``, the
  assignment's source in ``solutions/ASSIGNMENT`` (hidden tests included: the zip stays
  on Gradescope's side) and ``gradescope.json`` (the assignment and the limits).

A submission is graded by :func:`autograder.grade.grade`, as ``autograder grade``
grades a class: the same notebook checks, sandbox and limits. results.json holds one
test per graded cell, whose output is the cell's line of the feedback page's summary
(hidden tests scrubbed as on the page); a cell with hidden tests is shown once the
grades are published, the others at once.

Settings (environment variables), for running the zip outside Gradescope:
``AUTOGRADER_ROOT`` (default ``/autograder``), ``AUTOGRADER_PYTHON`` (the interpreter
``run_autograder`` uses; default the venv ``setup.sh`` makes), and
``AUTOGRADER_CELL_TIMEOUT`` / ``AUTOGRADER_NOTEBOOK_TIMEOUT`` (seconds, override the
limits the zip was built with).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from autograder.sandbox import Limits, add_limit_arguments

DEFAULT_ROOT = "/autograder"
CONFIG = "gradescope.json"
STUDENT = "student"
SCHEMA = Path(__file__).with_name("gradescope_results.schema.json")
# Where the venv of setup.sh lives on Gradescope's image.
VENV = "/autograder/venv"
# Environment variables that override a limit: name -> Limits field.
# How the worker's reason lists failing cells (autograder.status._failures).
FAILED = "graded cells failed: "
RAISED = "other cells raised: "
LIMIT_ENV = {
    "AUTOGRADER_CELL_TIMEOUT": "cell_timeout",
    "AUTOGRADER_NOTEBOOK_TIMEOUT": "notebook_timeout",
}

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder's image (Ubuntu 24.04:
# the course needs Python 3.11 or newer). The course is in /autograder/source/course.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap and setpriv (util-linux): the sandbox each student kernel runs in.
apt-get install -y --no-install-recommends \
    python3 python3-venv python3-pip bubblewrap util-linux ca-certificates
python3 -c 'import sys; assert sys.version_info >= (3, 11), "the course needs Python >= 3.11"'
python3 -m venv {venv}
{venv}/bin/python -m pip install --quiet --upgrade pip
# The pinned CPU build of PyTorch first (as the course's Makefile does): a plain torch
# requirement would pull several GB of CUDA packages.
{venv}/bin/pip install --quiet --index-url https://download.pytorch.org/whl/cpu '{torch}'
# Not an editable install: the kernel's sandbox hides the course folder.
{venv}/bin/pip install --quiet '/autograder/source/course[grade]'
# Fail now, not on the first submission, if the sandbox tools are missing.
command -v bwrap && command -v setpriv
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission, write
# /autograder/results/results.json. It always leaves a results.json, even if the
# grader itself cannot start.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-{venv}/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
export AUTOGRADER_ROOT="$ROOT"
export PYTHONPATH="$ROOT/source/course${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$PY"):$PATH"
export MPLBACKEND=Agg
cd "$ROOT/source/course" || true
"$PY" -m autograder.gradescope
code=$?
if [ ! -s "$RESULTS" ]; then
    cat > "$RESULTS" <<EOF
{"score": 0, "output": "Grading failed: the autograder could not run (exit status $code). Please tell your instructor.", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
EOF
fi
exit 0
"""


# --- building the zip -------------------------------------------------------------------


def torch_pin(course_root: Path) -> str:
    """The course's pinned torch (the Makefile's TORCH_PIN), else the installed version."""
    makefile = course_root / "Makefile"
    if makefile.exists():
        m = re.search(r"^TORCH_PIN\s*:?=\s*(\S+)", makefile.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    try:
        import torch

        return f"torch=={torch.__version__.split('+')[0]}"
    except ImportError:  # pragma: no cover
        return "torch"


def _add_tree(zf: zipfile.ZipFile, folder: Path, arcname: str) -> None:
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part in ("__pycache__", ".ipynb_checkpoints") for part in rel.parts):
            continue
        if p.is_file() and not p.is_symlink() and p.suffix != ".pyc":
            zf.write(p, f"{arcname}/{rel.as_posix()}")


def _add_text(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, text)


def build(
    course_root: Path,
    assignment: str,
    dest: Path,
    limits: Limits | None = None,
    unsafe: bool = False,
) -> Path:
    """Write the Gradescope autograder zip of ``assignment`` to ``dest``; return its path."""
    course_root = Path(course_root).resolve()
    src = course_root / "solutions" / assignment
    if not any(src.glob("*.ipynb")):
        raise FileNotFoundError(f"no assignment {assignment!r}: {src} holds no notebook")
    package = course_root / "autograder"
    if not (package / "gradescope.py").exists():
        package = Path(__file__).resolve().parent
    config = {
        "assignment": assignment,
        "limits": asdict(limits or Limits()),
        "unsafe": bool(unsafe),
    }
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        _add_text(zf, "setup.sh", SETUP_SH.format(venv=VENV, torch=torch_pin(course_root)), True)
        _add_text(zf, "run_autograder", RUN_AUTOGRADER.replace("{venv}", VENV), True)
        _add_tree(zf, package, "course/autograder")
        if (course_root / "actlab").is_dir():
            _add_tree(zf, course_root / "actlab", "course/actlab")
        for name in ("pyproject.toml", "README.md", "nbgrader_config.py"):
            if (course_root / name).exists():
                zf.write(course_root / name, f"course/{name}")
        _add_tree(zf, src, f"course/solutions/{assignment}")
        _add_text(zf, f"course/{CONFIG}", json.dumps(config, indent=1) + "\n")
    os.replace(tmp, dest)
    return dest


# --- grading one submission -------------------------------------------------------------


def _limits(config: dict[str, Any]) -> Limits:
    known = {f.name for f in fields(Limits)}
    values = {k: v for k, v in config.get("limits", {}).items() if k in known}
    for var, name in LIMIT_ENV.items():
        if os.environ.get(var, "").strip():
            values[name] = int(os.environ[var])
    limits = Limits(**values)
    if os.environ.get("AUTOGRADER_NOTEBOOK_TIMEOUT", "").strip():
        limits.cpu_seconds = min(limits.cpu_seconds, limits.notebook_timeout)
    return limits


def _one_line(text: str, limit: int = 1000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failed(message: str, seconds: float) -> dict[str, Any]:
    return {
        "score": 0.0,
        "execution_time": int(round(seconds)),
        "output": f"Grading failed: {message}. Your score is 0; please tell your instructor.",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }


def _copy_submission(submission: Path, dest: Path) -> None:
    """The student's files as nbgrader's ``submitted/STUDENT/ASSIGNMENT/`` (links left out)."""
    dest.mkdir(parents=True, exist_ok=True)
    if not submission.is_dir():
        return
    for p in sorted(submission.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        rel = p.relative_to(submission)
        if len(rel.parts) > 1 and p.suffix != ".ipynb":
            continue  # an uploaded folder's notebooks are looked at; nothing else in it
        target = dest / rel.name
        if target.exists():
            target = dest / "_".join(rel.parts)
        shutil.copyfile(p, target)


def results_for(
    result: dict[str, Any],
    course: Path,
    assignment: str,
    out: Path,
    seconds: float,
) -> dict[str, Any]:
    """results.json for one graded submission (a result of :func:`autograder.grade.grade`)."""
    import nbformat

    from autograder.checks import nbgrader_meta
    from autograder.course import course_config
    from autograder.feedback import hidden_markers, scrub_notebook, secrets, summary_rows

    begin, end = hidden_markers(course_config(course))
    source_dir = course / "solutions" / assignment
    release_dir = out / "release" / assignment
    tests: list[dict[str, Any]] = []
    strict = []  # what is secret even without the student's answers: for the overall reason
    several = len(result.get("grades", {})) > 1
    order: dict[str, int] = {}  # each test's name -> its graded cell's place in the notebooks
    for nb_name, grades in sorted(result.get("grades", {}).items()):
        source = nbformat.read(source_dir / f"{nb_name}.ipynb", as_version=4)
        release = nbformat.read(release_dir / f"{nb_name}.ipynb", as_version=4)
        strict.append(secrets(source, release, None, begin, end))
        hidden = {nbgrader_meta(c).get("grade_id") for c in source.cells if begin in c.source}
        for cell in source.cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid in grades:
                order.setdefault(f"{nb_name}.ipynb: {gid}" if several else gid, len(order))
        graded_path = out / "autograded" / STUDENT / assignment / f"{nb_name}.ipynb"
        rows: dict[str, tuple[float, float, str]] = {}
        if graded_path.exists() and result["status"] not in ("ambiguous_submission",):
            graded = nbformat.read(graded_path, as_version=4)
            secret = secrets(source, release, graded, begin, end)
            page = scrub_notebook(copy.deepcopy(graded), secret, begin, end)
            for gid, got, top, message in summary_rows(page, grades, secret):
                rows[gid] = (got, top, message)
        for gid, g in grades.items():
            got, top = float(g.get("auto_score") or 0.0), float(g.get("max_score") or 0.0)
            if gid in rows:
                got, top, message = rows[gid]
            else:
                message = f"not graded: {result['status']} (see the overall result)"
            test = {
                "name": f"{nb_name}.ipynb: {gid}" if several else gid,
                "score": got,
                "max_score": top,
                "status": "passed" if got >= top else "failed",
                "output": message,
                "visibility": "after_published" if gid in hidden else "visible",
            }
            tests.append(test)
    tests.sort(key=lambda t: order.get(t["name"], len(order)))
    for i, test in enumerate(tests, 1):
        test["number"] = str(i)
    reason = _overall_reason(
        str(result.get("reason", "")),
        [t["name"] for t in tests if t["status"] == "failed" and t["visibility"] == "visible"],
    )
    for secret in strict:
        reason = secret.scrub(reason)
        if secret.shows(reason):
            reason = "(the reason showed hidden test code and is not shown)"
    score = float(result.get("score", 0.0))
    max_score = float(result.get("max_score", 0.0))
    output = (
        f"Status: {result['status']}\n"
        f"Score: {score:g} / {max_score:g}\n"
        f"{_one_line(reason, 2000)}\n"
        "Each graded cell is listed below; a cell with hidden tests shows its result "
        "once the grades are published."
    )
    return {
        "score": score,
        "execution_time": int(round(seconds)),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _overall_reason(reason: str, visible_failed: list[str]) -> str:
    """The worker's reason without the graded cells' messages (each test shows its own).

    A cell with hidden tests shows its result once the grades are published: the
    overall output, shown at once, names only the failed cells without hidden tests.
    """
    at = reason.find(FAILED)
    if at < 0:
        return reason
    head = reason[:at].rstrip().rstrip(";").rstrip()
    other = reason.find(f"; {RAISED}", at)
    tail = reason[other + 2 :] if other >= 0 else ""
    listed = f"{FAILED}{', '.join(visible_failed)}" if visible_failed else ""
    return "; ".join(part for part in (head, listed, tail) if part)


def grade_submission(root: Path) -> dict[str, Any]:
    """Grade ``ROOT/submission`` with the course in ``ROOT/source/course``; results.json's data."""
    start = time.monotonic()
    course = root / "source" / "course"
    config = json.loads((course / CONFIG).read_text())
    assignment = config["assignment"]
    limits = _limits(config)
    from autograder.course import course_config, make_template
    from autograder.grade import grade

    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    try:
        submitted = work / "submitted"
        _copy_submission(root / "submission", submitted / STUDENT / assignment)
        out = work / "out"
        run = grade(
            course,
            assignment,
            submitted,
            out=out,
            workers=1,
            unsafe=bool(config.get("unsafe")),
            limits=limits,
            progress=False,
            force=True,
        )
        # The released notebook: what the student sees, so what is no secret.
        make_template(course, assignment, work / "template", course_config(course))
        shutil.copytree(work / "template" / "release", out / "release")
        if not run.results:
            return _failed("no submission was found in the files you handed in", 0.0) | {
                "output": "Status: invalid_notebook\nScore: 0\nNo notebook was found in "
                f"your submission: hand in {assignment}'s notebook."
            }
        return results_for(run.results[0], course, assignment, out, time.monotonic() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_results(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def run(root: Path | None = None) -> dict[str, Any]:
    """Grade the submission under ``root`` and write ``root/results/results.json``; never raises."""
    start = time.monotonic()
    root = Path(root or os.environ.get("AUTOGRADER_ROOT") or DEFAULT_ROOT)
    results = root / "results" / "results.json"
    try:
        data = grade_submission(root)
    except Exception as exc:  # noqa: BLE001  (a student always gets a results.json)
        traceback.print_exc()
        from autograder.sandbox import SandboxUnavailable

        what = (
            "the sandbox cannot run here"
            if isinstance(exc, SandboxUnavailable)
            else f"the grader raised {type(exc).__name__}"
        )
        data = _failed(what, time.monotonic() - start)
    write_results(results, data)
    return data


# --- command line ------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """The ``gradescope`` subcommand of ``autograder``."""
    p = sub.add_parser(
        "gradescope",
        help="build the zip of a Gradescope programming assignment's autograder",
        description="Write FILE.zip for Gradescope's 'Configure Autograder' page: setup.sh, "
        "run_autograder and the course's grading files. Each submission is graded as "
        "`autograder grade` grades it (same checks, sandbox and limits).",
    )
    p.add_argument("assignment", help="assignment name (a folder of solutions/)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the zip to write")
    add_limit_arguments(p)
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="no sandbox on Gradescope (student code could then read the hidden tests)",
    )


def command(args: argparse.Namespace, course: Path) -> int:
    """``autograder gradescope ASSIGNMENT -o FILE.zip``."""
    limits = Limits(
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.notebook_timeout,
        memory_mb=args.memory,
        cpu_seconds=args.notebook_timeout,
        max_processes=args.max_processes,
    )
    try:
        path = build(course, args.assignment, args.output, limits, unsafe=args.unsafe)
    except FileNotFoundError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: upload it on the assignment's 'Configure Autograder' page")
    return 0


if __name__ == "__main__":
    run()
    sys.exit(0)
