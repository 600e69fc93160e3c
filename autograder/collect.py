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

Student ids are reduced to letters and digits of any script, ``.``, ``_`` and ``-``.

When a student hands in several notebooks (an ``Untitled.ipynb``, a
``NOTEBOOK-Copy1.ipynb``, another assignment's notebook), each notebook of the
assignment is taken, in this order, from:

1. the file with the notebook's exact name (``NOTEBOOK.ipynb`` in a student's folder;
   in a flat folder, the name the layout gives it, such as ``ann_NOTEBOOK.ipynb`` or
   Canvas' ``…_NOTEBOOK.ipynb``);
2. else the one file that holds the notebook's graded cells: more than half of the
   released notebook's nbgrader grade ids (``metadata.nbgrader.grade_id``), and a
   larger share of this notebook's than of any other of the assignment (a copy or an
   ``Untitled.ipynb`` with the cells counts; a blank one, or another assignment's
   notebook that shares a few cells such as ``imports``, does not);
3. else the one file that cannot be read as a notebook (bad JSON, empty) whose name
   points to the notebook (in a one-notebook assignment, any name but a flat folder's
   ``STUDENT_Untitled.ipynb``), so that grading reports it (``invalid_notebook``).

Two or more equally good files (two copies, neither exactly named) are no guess:
the submission is marked ambiguous (:attr:`Submission.ambiguous`, with a reason in
:attr:`Submission.problem`) and is not graded. Every other notebook is ignored, and a
warning names the file graded and the files ignored, with why. A student known by a
folder or an LMS login who hands in none of the notebooks still gets a submission
(graded as missing them); a flat file's name alone makes no submission.

Without the release's grade ids (``grade_ids=None``) the files are not read: step 2
is skipped and step 3 takes any file whose name points to the notebook.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

JUNK = re.compile(r"(^\.|^__MACOSX$|\.ipynb_checkpoints$)")
MOODLE = re.compile(r"^(?P<name>.+?)_\d+_assignsubmission_(file|onlinetext)_?$")
CANVAS = re.compile(r"^(?P<login>[^_]+)_(LATE_)?\d+_\d+_(?P<rest>.*)$")
BLACKBOARD = re.compile(
    r"^.*?_(?P<login>[^_]+)_attempt_\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(_(?P<rest>.*))?$"
)
# What Jupyter, file managers and LMSs add to a copy's name: "-Copy1", " copy", " (2)".
COPY = re.compile(r"^(?:\s*[-_ ]\s*copy\s*\d*|\s*\(\d+\)|-\d+)+", re.IGNORECASE)
# Jupyter's name for a new notebook, after a student's name in a flat folder.
UNTITLED = re.compile(r"(?:^|[\s_-])untitled\d*(?:\s*[-_ ]\s*copy\s*\d*|\s*\(\d+\))*$", re.I)
MAX_ZIP_BYTES = 2 * 1024**3

# How well a file's name says it is a notebook of the assignment.
NONE, IMPLIED, NAMED, EXACT = range(4)


@dataclass
class Submission:
    """One student's files for one assignment: notebook name (no suffix) or file name -> path.

    ``ambiguous`` maps a notebook to the files that could each be it (none chosen);
    ``problem`` then says so in one line, and the submission is not graded.
    """

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    origin: str = ""
    ambiguous: dict[str, list[Path]] = field(default_factory=dict)
    problem: str = ""


@dataclass
class _Candidate:
    """A notebook file that may be one of the assignment's notebooks."""

    path: Path
    rel: str  # as warnings show it
    named: str | None  # the notebook its name points to
    rank: int  # how well the name says so (NONE .. EXACT)
    ids: set[str] | None = None  # its grade ids; None when unread or unreadable
    readable: bool = True
    content: str | None = None  # the notebook whose graded cells it holds


def student_id(raw: str) -> str:
    """A safe student id from a name found in a path.

    Letters and digits of any script are kept (``José García`` is ``José_García``,
    ``李华`` stays ``李华``): dropping them would turn two students with non-Latin names
    into one. Everything else (spaces, slashes, quotes) becomes ``_``.
    """
    name = unicodedata.normalize("NFC", raw.strip())
    sid = re.sub(r"[^\w.-]+", "_", name).strip("._-")
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


def notebook_grade_ids(path: Path) -> set[str] | None:
    """The nbgrader grade ids of a notebook file's cells; ``None`` if it cannot be read.

    Never raises: a file that is not a notebook (bad JSON, not UTF-8, no cells) is ``None``.
    """
    try:
        raw = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(raw, dict):
        return None
    cells = raw.get("cells")
    if cells is None and isinstance(raw.get("worksheets"), list):  # nbformat 3
        cells = [
            c
            for ws in raw["worksheets"]
            if isinstance(ws, dict) and isinstance(ws.get("cells"), list)
            for c in ws["cells"]
        ]
    if not isinstance(cells, list):
        return None
    ids: set[str] = set()
    for cell in cells:
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if isinstance(gid, str) and gid:
            ids.add(gid)
    return ids


def release_grade_ids(folder: Path) -> dict[str, set[str]]:
    """Notebook name -> its grade ids, for the released notebooks in ``folder``."""
    return {p.stem: notebook_grade_ids(p) or set() for p in sorted(Path(folder).glob("*.ipynb"))}


def _name_in(stem: str, notebooks: list[str]) -> tuple[str | None, int, str]:
    """The notebook a stem names, how well (EXACT, NAMED), and the stem without it.

    The name followed by a copy's mark ("-Copy1", " (2)") is NAMED, and the mark goes too.
    """
    for nb in sorted(notebooks, key=len, reverse=True):
        i = stem.find(nb)
        if i < 0:
            continue
        after = stem[i + len(nb) :]
        m = COPY.match(after)
        rank = NAMED if m else EXACT
        rest = stem[:i] + " " + (after[m.end() :] if m else after)
        return nb, rank, rest
    return None, NONE, stem


def _in_folder(stem: str, notebooks: list[str]) -> tuple[str | None, int]:
    """A file in a student's own folder: its exact name, a name that holds it, or any name."""
    if stem in notebooks:
        return stem, EXACT
    nb, _, _ = _name_in(stem, notebooks)
    if nb is not None:
        return nb, NAMED
    if len(notebooks) == 1:
        return notebooks[0], IMPLIED
    return None, NONE


def submissions_folder(submissions: Path, unpack_to: Path) -> Path:
    """The folder to search: SUBMISSIONS itself, or the ``.zip`` it is unpacked into ``unpack_to``."""
    submissions = Path(submissions)
    if submissions.is_file() and submissions.suffix == ".zip":
        return extract_zip(submissions, unpack_to)
    if submissions.is_dir():
        return submissions
    raise FileNotFoundError(f"{submissions} is neither a folder nor a .zip of submissions")


def _original_name(rest: str, notebooks: list[str]) -> tuple[str | None, int]:
    """The file name a student uploaded (Canvas, Blackboard; Canvas adds "-1" to a re-upload)."""
    if not rest:
        return (notebooks[0], IMPLIED) if len(notebooks) == 1 else (None, NONE)
    return _in_folder(rest if rest in notebooks else re.sub(r"-\d+$", "", rest), notebooks)


def _flat_student(stem: str, assignment: str, notebooks: list[str]) -> tuple[str, str | None, int]:
    """A flat file's student, the notebook its name points to, and how well."""
    m = BLACKBOARD.match(stem)
    if m:
        return student_id(m.group("login")), *_original_name(m.group("rest") or "", notebooks)
    m = CANVAS.match(stem)
    if m:
        return student_id(m.group("login")), *_original_name(m.group("rest"), notebooks)
    nb, rank, rest = _name_in(stem, notebooks)
    if nb is None:
        u = UNTITLED.search(stem)
        if u and u.start() > 0:
            rest = stem[: u.start()]
        elif len(notebooks) == 1:
            nb, rank = notebooks[0], IMPLIED
    rest = rest.replace(assignment, " ")
    return student_id(re.sub(r"[\s_-]+", " ", rest).strip().replace(" ", "_")), nb, rank


def _content(ids: set[str], release: Mapping[str, Collection[str]]) -> str | None:
    """The notebook whose graded cells ``ids`` hold: more than half of them, the best share."""
    shares = {nb: len(ids & set(rids)) / len(rids) for nb, rids in release.items() if len(rids) > 0}
    best = max(shares.values(), default=0.0)
    top = [nb for nb, s in shares.items() if s == best]
    return top[0] if best > 0.5 and len(top) == 1 else None


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _labels(cands: list[_Candidate]) -> list[str]:
    """The files' names, or their paths where two share a name."""
    names = [c.path.name for c in cands]
    return names if len(set(names)) == len(names) else [c.rel for c in cands]


def _choose(
    cands: list[_Candidate], notebooks: list[str]
) -> tuple[dict[str, _Candidate], dict[str, tuple[list[_Candidate], str]]]:
    """One file per notebook by the rules of the module's docstring.

    Returns the chosen file per notebook, and per ambiguous notebook its equally good
    files and what they have in common.
    """
    chosen: dict[str, _Candidate] = {}
    ambiguous: dict[str, tuple[list[_Candidate], str]] = {}
    exact_for = {id(c): c.named for c in cands if c.rank == EXACT}
    for nb in notebooks:
        tiers = [
            ([c for c in cands if c.named == nb and c.rank == EXACT], "each has its exact name"),
            (
                [c for c in cands if c.content == nb and exact_for.get(id(c), nb) == nb],
                "each holds its graded cells and none has its exact name",
            ),
            (
                [c for c in cands if c.ids is None and c.named == nb and c.rank >= IMPLIED],
                "none has its exact name or readable graded cells",
            ),
        ]
        for tier, common in tiers:
            if len(tier) > 1:
                # Of several exactly named files, the one that holds the cells.
                tier = [c for c in tier if c.content == nb] or tier
            if len(tier) == 1:
                chosen[nb] = tier[0]
                break
            if tier:
                ambiguous[nb] = (sorted(tier, key=lambda c: c.rel), common)
                break
    return chosen, ambiguous


def _why(c: _Candidate, chosen: dict[str, _Candidate], release, assignment: str) -> str:
    """Why a file is not graded, in a few words."""
    if not c.readable:
        return "it cannot be read as a notebook"
    if c.content is not None:
        kept = chosen.get(c.content)
        return f"a copy of {c.content}.ipynb" + (
            f"; {kept.path.name} has the exact name" if kept and kept.rank == EXACT else ""
        )
    sized = {nb: set(ids) for nb, ids in release.items() if ids}
    if c.ids is not None and sized:
        nb = max(sized, key=lambda n: (len(c.ids & sized[n]) / len(sized[n]), n))
        return (
            f"not a notebook of {assignment}: it holds {len(c.ids & sized[nb]) or 'none'} "
            f"of the {len(sized[nb])} graded cells of {nb}.ipynb"
        )
    if c.named in chosen:
        return f"another file is graded as {c.named}.ipynb"
    return f"cannot tell which notebook of {assignment} it is"


def _settle(
    sid: str,
    cands: list[_Candidate],
    notebooks: list[str],
    assignment: str,
    release: Mapping[str, Collection[str]] | None,
    certain: bool,
    warnings: list[str],
) -> Submission | None:
    """Choose one student's notebooks; ``None`` (and warnings) when nothing of theirs is one.

    ``certain``: the student's id does not depend on the file's name (their own folder, an
    LMS export), so they get a submission even with no notebook (graded as missing).
    """
    chosen, ambiguous = _choose(cands, notebooks)
    used = {id(c) for c in chosen.values()} | {id(c) for cs, _ in ambiguous.values() for c in cs}
    ignored = [(c, _why(c, chosen, release or {}, assignment)) for c in cands if id(c) not in used]
    if not chosen and not ambiguous and not certain:
        warnings += [f"skipped {c.rel}: {why}" for c, why in ignored]
        return None
    sub = Submission(sid, origin=str(cands[0].path.parent) if cands else "")
    sub.files = {nb: chosen[nb].path for nb in notebooks if nb in chosen}
    sub.ambiguous = {nb: [c.path for c in cs] for nb, (cs, _) in ambiguous.items()}
    if ambiguous:
        sub.problem = (
            "not graded: "
            + "; ".join(
                f"{_names(_labels(cs))} could each be {nb}.ipynb ({common})"
                for nb, (cs, common) in ambiguous.items()
            )
            + "; keep one and grade again"
        )
    if not ignored and not ambiguous:
        return sub
    parts = []
    if chosen and not ambiguous:
        parts.append(
            "graded "
            + ", ".join(
                c.rel + ("" if c.path.stem == nb else f" as {nb}.ipynb") for nb, c in chosen.items()
            )
        )
    if ambiguous:
        parts.append(f"ambiguous_submission, {sub.problem}")
    if not chosen and not ambiguous:
        parts.append(f"no notebook of {assignment} found")
    parts += [f"ignored {c.rel} ({why})" for c, why in ignored]
    warnings.append(f"{sid}: " + "; ".join(parts))
    return sub


def find_submissions(
    root: Path,
    assignment: str,
    notebooks: list[str],
    grade_ids: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[Submission], list[str]]:
    """All submissions for ``assignment`` under ``root``; also warnings about what was skipped.

    Args:
        root: a folder (an unpacked zip is a folder too).
        assignment: the assignment name.
        notebooks: the assignment's notebook names (without ``.ipynb``).
        grade_ids: the released notebooks' grade ids (:func:`release_grade_ids`), to tell
            a copy of a notebook from a blank or another assignment's one; without them a
            file's name alone decides.
    """
    warnings: list[str] = []
    root = Path(root)
    notebooks = list(notebooks)
    release = {nb: set(grade_ids.get(nb, ())) for nb in notebooks} if grade_ids else None
    if release is not None and not any(release.values()):
        release = None

    def candidate(p: Path, named: str | None, rank: int) -> _Candidate:
        c = _Candidate(p, p.relative_to(root).as_posix(), named, rank)
        if release is not None:
            c.ids = notebook_grade_ids(p)
            c.readable = c.ids is not None
            c.content = _content(c.ids, release) if c.ids is not None else None
        return c

    if (root / "submitted").is_dir():
        root = root / "submitted"
    # nbgrader layout: STUDENT/ASSIGNMENT/*.ipynb
    tree = [d for d in root.iterdir() if d.is_dir() and (d / assignment).is_dir()]
    subs: dict[str, Submission] = {}
    if tree:
        for d in sorted(tree):
            sid = student_id(d.name)
            cands: list[_Candidate] = []
            others: dict[str, Path] = {}
            for p in sorted((d / assignment).iterdir()):
                if JUNK.search(p.name) or not p.is_file():
                    continue
                if p.suffix == ".ipynb":
                    cands.append(candidate(p, *_in_folder(p.stem, notebooks)))
                else:
                    others[p.name] = p
            sub = _settle(sid, cands, notebooks, assignment, release, True, warnings)
            sub = sub if sub is not None else Submission(sid)
            sub.origin = str(d / assignment)
            sub.files.update(others)
            subs[sid] = sub
        return [subs[k] for k in sorted(subs)], warnings

    by_student: dict[str, tuple[bool, list[_Candidate]]] = {}
    for p in sorted(root.rglob("*.ipynb")):
        rel = p.relative_to(root)
        if any(JUNK.search(part) for part in rel.parts) or not p.is_file():
            continue
        if len(rel.parts) >= 2:
            folder = rel.parts[-2]
            m = MOODLE.match(folder)
            sid = student_id(m.group("name") if m else folder)
            named, rank = _in_folder(p.stem, notebooks)
            certain = True
        else:
            sid, named, rank = _flat_student(p.stem, assignment, notebooks)
            certain = bool(BLACKBOARD.match(p.stem) or CANVAS.match(p.stem))
        was_certain, cands = by_student.setdefault(sid, (certain, []))
        by_student[sid] = (was_certain or certain, cands)
        cands.append(candidate(p, named, rank))
    for sid in sorted(by_student):
        certain, cands = by_student[sid]
        sub = _settle(sid, cands, notebooks, assignment, release, certain, warnings)
        if sub is not None:
            subs[sid] = sub
    return [subs[k] for k in sorted(subs)], warnings
