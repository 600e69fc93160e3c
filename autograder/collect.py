"""Find the submissions in what an instructor hands over: a tree, a flat folder or a zip.

Understood layouts (SUBMISSIONS is a folder or a ``.zip`` of one):

* nbgrader's ``submitted/STUDENT/ASSIGNMENT/NOTEBOOK.ipynb`` (SUBMISSIONS may be the
  ``submitted`` folder itself or the course root that holds it);
* one folder per student: ``STUDENT/NOTEBOOK.ipynb`` (Moodle's
  ``Full Name_123456_assignsubmission_file_/`` folders included);
* a flat folder of notebooks named by student: ``STUDENT.ipynb``,
  ``STUDENT_NOTEBOOK.ipynb``, ``NOTEBOOK_STUDENT.ipynb`` (``-`` works too), Canvas'
  ``login_12345_678901_NOTEBOOK.ipynb`` (with ``_LATE_``), Blackboard's
  ``ASSIGNMENT_login_attempt_2024-01-31-10-00-00_NOTEBOOK.ipynb``.

Student ids are reduced to letters, digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

JUNK = re.compile(r"(^\.|^__MACOSX$|\.ipynb_checkpoints$)")
MOODLE = re.compile(r"^(?P<name>.+?)_\d+_assignsubmission_(file|onlinetext)_?$")
CANVAS = re.compile(r"^(?P<login>[^_]+)_(LATE_)?\d+_\d+_(?P<rest>.*)$")
BLACKBOARD = re.compile(
    r"^.*?_(?P<login>[^_]+)_attempt_\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(_(?P<rest>.*))?$"
)
MAX_ZIP_BYTES = 2 * 1024**3


@dataclass
class Submission:
    """One student's files for one assignment: notebook name (no suffix) or file name -> path."""

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    origin: str = ""


def student_id(raw: str) -> str:
    """A safe student id from a name found in a path."""
    sid = re.sub(r"[^A-Za-z0-9._-]+", "_", raw.strip()).strip("._-")
    return sid or "unknown"


def extract_zip(path: Path, dest: Path) -> Path:
    """Unpack an LMS zip safely (no absolute paths, no ``..``, no links, bounded size)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = Path(name).parts
            if info.is_dir() or name.startswith("/") or ".." in parts or not parts:
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError(f"{path.name} unpacks to more than {MAX_ZIP_BYTES >> 30} GiB")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def _notebook_for(stem: str, notebooks: list[str]) -> tuple[str | None, str]:
    """Which release notebook a file stem is, and what is left of the stem without it."""
    for nb in sorted(notebooks, key=len, reverse=True):
        if nb in stem:
            rest = stem.replace(nb, " ")
            return nb, rest
    if len(notebooks) == 1:
        return notebooks[0], stem
    return None, stem


def _flat_student(stem: str, assignment: str, notebooks: list[str]) -> tuple[str, str | None]:
    m = BLACKBOARD.match(stem)
    if m:
        nb, _ = _notebook_for(m.group("rest") or "", notebooks)
        return student_id(m.group("login")), nb or (notebooks[0] if len(notebooks) == 1 else None)
    m = CANVAS.match(stem)
    if m:
        nb, _ = _notebook_for(m.group("rest"), notebooks)
        return student_id(m.group("login")), nb
    nb, rest = _notebook_for(stem, notebooks)
    rest = rest.replace(assignment, " ")
    return student_id(re.sub(r"[\s_-]+", " ", rest).strip().replace(" ", "_")), nb


def find_submissions(
    root: Path, assignment: str, notebooks: list[str]
) -> tuple[list[Submission], list[str]]:
    """All submissions for ``assignment`` under ``root``; also warnings about what was skipped.

    Args:
        root: a folder (an unpacked zip is a folder too).
        assignment: the assignment name.
        notebooks: the assignment's notebook names (without ``.ipynb``).
    """
    warnings: list[str] = []
    root = Path(root)
    if (root / "submitted").is_dir():
        root = root / "submitted"
    # nbgrader layout: STUDENT/ASSIGNMENT/*.ipynb
    tree = [d for d in root.iterdir() if d.is_dir() and (d / assignment).is_dir()]
    subs: dict[str, Submission] = {}
    if tree:
        for d in sorted(tree):
            sub = Submission(student_id(d.name), origin=str(d / assignment))
            for p in sorted((d / assignment).iterdir()):
                if JUNK.search(p.name) or not p.is_file():
                    continue
                sub.files[p.stem if p.suffix == ".ipynb" else p.name] = p
            subs[sub.student] = sub
        return [subs[k] for k in sorted(subs)], warnings

    for p in sorted(root.rglob("*.ipynb")):
        rel = p.relative_to(root)
        if any(JUNK.search(part) for part in rel.parts):
            continue
        if len(rel.parts) >= 2:
            folder = rel.parts[-2]
            m = MOODLE.match(folder)
            sid = student_id(m.group("name") if m else folder)
            nb, _ = _notebook_for(p.stem, notebooks)
        else:
            sid, nb = _flat_student(p.stem, assignment, notebooks)
        if nb is None:
            warnings.append(f"skipped {rel}: cannot tell which notebook of {assignment} it is")
            continue
        sub = subs.setdefault(sid, Submission(sid, origin=str(p.parent)))
        if nb in sub.files:
            warnings.append(f"{rel}: {sid} handed in {nb}.ipynb twice; kept {sub.files[nb].name}")
            continue
        sub.files[nb] = p
    return [subs[k] for k in sorted(subs)], warnings
