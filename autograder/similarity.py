"""`autograder similarity`: which students handed in the same code, ranked for a person to check.

Neither nbgrader nor otter compares submissions. This module does, on what the students
wrote themselves:

* **What is compared.** Only answer cells: cells whose nbgrader metadata has
  ``solution: true`` and whose ``grade_id`` is an answer cell of the release
  (``exercises/ASSIGNMENT/``; without it, ``solutions/`` with the solutions cut out).
  The release's starter code (the stub lines of those cells: the ``def`` line, the
  docstring, ``# YOUR CODE HERE``, ``raise NotImplementedError()``) is taken out, line by
  line; test cells, markdown and cells a student added are not read.
* **Tokens.** Python's :mod:`tokenize`, normalised so that renaming and reformatting do not
  matter: every identifier becomes ``V``; every number ``N``; every string ``S``; comments,
  newlines, indentation and blank lines are dropped. Kept as they are: keywords,
  operators, builtins (``len``, ``zip``), the names the release imports (``np``, ``torch``,
  ``nn``) and every attribute after a dot (``.where``, ``.append``, ``.linalg.solve``):
  which library functions are called, and in which order, carries the structure.
  Code that :mod:`tokenize` cannot read (bad indentation after the stub is removed, an
  unfinished string) falls back to a simple regular-expression tokenizer.
* **Fingerprints.** Winnowing (Schleimer, Wilkerson and Aiken, "Winnowing: local
  algorithms for document fingerprinting", SIGMOD 2003): hash every ``K`` consecutive
  tokens of a cell (``K = 8``) and keep, in each window of ``W = 4`` consecutive hashes,
  the smallest (the rightmost one on ties). Any run of ``K + W - 1 = 11`` equal tokens
  shared by two cells is then guaranteed to give a shared fingerprint, while a run shorter
  than ``K`` never does. Hashes are BLAKE2 (stable across runs), and k-grams never cross
  cells. Fingerprints the release's own code has are dropped.
* **Weights.** A fingerprint shared by many students is the one short right answer, not
  evidence: each fingerprint weighs ``log((N + 1) / df)``, ``N`` the number of students
  compared and ``df`` how many of them have it (a smoothed idf: what all ``N`` have weighs
  almost nothing, what two have weighs most).
* **Score.** ``shared / max(min(total_a, total_b), floor)``: the weight of the fingerprints
  the two share over the smaller of their two weighted totals, i.e. how much of the
  smaller answer is in the larger one. The smaller, not the union, because a copy that
  adds code of its own (or a student who copied only some of the exercises) must still
  score high. ``floor`` is half the class's median total: without it a student who wrote
  two common lines would be "contained" in everybody's work. Scores lie in [0, 1].

Why no library: the maintained detectors are JPlag (Java), MOSS (a web service, which
takes the students' code off the premises), Dolos (JavaScript) and copydetect (Python,
with numpy and Pygments; winnowing too, and it can drop boilerplate files). copydetect
compares whole files: it knows neither notebooks nor nbgrader's answer cells (so the
tests, the markdown and the starter code would all count or would need extracting
first), and it does not weigh a fingerprint by how many students in the class have it,
which is what keeps the one short right answer from flagging everybody. The algorithm is
a few hundred lines with the standard library alone; owning it keeps every step above
true. The threshold of 0.8 comes from the tests' class (``tests/autograder/test_similarity.py``):
three disguised copies scored 0.93 to 0.94, the 561 honest pairs at most 0.74.

A high score is evidence for a person to look at, never a verdict: students are taught
the same idioms, work together where that is allowed, and short exercises leave little
room. The page says so.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import keyword
import math
import re
import statistics
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

K = 8  # tokens per k-gram
W = 4  # k-gram hashes per winnowing window
THRESHOLD = 0.8  # pairs at or above it are flagged and always shown
TOP = 20  # pairs shown on the page, besides every flagged one
MAX_FILE_BYTES = 64 * 1024**2  # a notebook file larger than this is not read
MAX_CODE_BYTES = 2 * 1024**2  # answer code larger than this is skipped
MAX_TOKENS = 200_000  # answer tokens more than this are skipped

BUILTINS = frozenset(dir(builtins))
STUB = re.compile(r"###\s*BEGIN SOLUTION.*?###\s*END SOLUTION[^\n]*", re.S)
FALLBACK = re.compile(
    r"#[^\n]*|'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\"|\d[\w.]*|[A-Za-z_]\w*|\S", re.S
)
NOTE = (
    "A high score is evidence for a person to look at, not a verdict: students learn the "
    "same idioms, may have worked together where that is allowed, and short exercises "
    "leave little room. Read the code side by side before drawing any conclusion."
)


class Skip(Exception):
    """A submission that is not compared; the message says why."""


@dataclass
class Token:
    """One normalised token and where it came from (1-based line, 0-based column)."""

    kind: str
    cell: str
    start: tuple[int, int]
    end: tuple[int, int]


@dataclass
class Student:
    """One student's answer cells, tokens and fingerprints."""

    student: str
    cells: dict[str, str] = field(default_factory=dict)  # cell key -> full source
    tokens: dict[str, list[Token]] = field(default_factory=dict)
    prints: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # hash -> [(cell, i)]
    total: float = 0.0


@dataclass
class Pair:
    a: str
    b: str
    score: float
    shared: int
    weight: float
    cells: list[str]


@dataclass
class Report:
    students: list[Student]
    pairs: list[Pair]
    skipped: list[tuple[str, str]]
    warnings: list[str]
    threshold: float


# --------------------------------------------------------------------------- release


@dataclass
class Release:
    """The release's answer cells (cell key -> stub source) and the names it imports."""

    notebooks: dict[str, dict[str, str]]  # notebook -> grade id -> stub source
    names: frozenset[str]
    prints: frozenset[str] = frozenset()

    def grade_ids(self) -> dict[str, set[str]]:
        return {nb: set(cells) for nb, cells in self.notebooks.items()}


def _imported(source: str) -> set[str]:
    names: set[str] = set()
    for m in re.finditer(r"^\s*import\s+([\w.]+)(?:\s+as\s+(\w+))?", source, re.M):
        names.add(m.group(2) or m.group(1).split(".")[0])
    for m in re.finditer(r"^\s*from\s+[\w.]+\s+import\s+\(?([\w\s,]+)", source, re.M):
        for part in m.group(1).split(","):
            bits = part.split()
            if bits:
                names.add(bits[-1])
    return names


def load_release(course: Path, assignment: str) -> Release:
    """The release's answer cells, from ``exercises/`` or else from ``solutions/``."""
    folder = Path(course) / "exercises" / assignment
    from_source = not any(folder.glob("*.ipynb"))
    if from_source:
        folder = Path(course) / "solutions" / assignment
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks of {assignment} in exercises/ or solutions/")
    notebooks: dict[str, dict[str, str]] = {}
    names: set[str] = set()
    for path in paths:
        nb = json.loads(path.read_text())
        cells: dict[str, str] = {}
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            src = _source(cell)
            names |= _imported(src)
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id"):
                if from_source:
                    src = STUB.sub("# YOUR CODE HERE\nraise NotImplementedError()", src)
                cells[meta["grade_id"]] = src
        notebooks[path.stem] = cells
    release = Release(notebooks, frozenset(names))
    stub = Student("(release)")
    for nb, cells in notebooks.items():
        for gid, src in cells.items():
            key = _key(nb, gid, len(notebooks))
            stub.tokens[key] = tokens(src, key, release.names)
    _fingerprint(stub)
    release.prints = frozenset(stub.prints)
    return release


def _key(notebook: str, grade_id: str, n_notebooks: int) -> str:
    return grade_id if n_notebooks == 1 else f"{notebook}/{grade_id}"


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


# --------------------------------------------------------------------------- tokens


def _strip_stub(source: str, stub: str) -> str:
    """``source`` with the lines it shares with the starter code blanked (line numbers kept)."""
    left = Counter(line.strip() for line in stub.splitlines() if line.strip())
    out = []
    for line in source.splitlines():
        s = line.strip()
        if s and left[s] > 0:
            left[s] -= 1
            out.append("")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _kind(tok_type: int, text: str, prev: str, names: frozenset[str]) -> str | None:
    if tok_type == tokenize.NAME:
        if keyword.iskeyword(text) or prev == "." or text in BUILTINS or text in names:
            return text
        return "V"
    if tok_type == tokenize.NUMBER:
        return "N"
    if tok_type == tokenize.STRING:
        return "S"
    if tok_type == tokenize.OP:
        return text
    return None  # comments, newlines, indentation, end markers


def tokens(source: str, cell: str, names: frozenset[str] = frozenset()) -> list[Token]:
    """The normalised tokens of one cell's code (see the module's docstring)."""
    out: list[Token] = []
    prev = ""
    try:
        for t in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = _kind(t.type, t.string, prev, names)
            if kind is not None:
                out.append(Token(kind, cell, t.start, t.end))
                prev = t.string
        return out
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    out, prev = [], ""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def pos(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(starts) - 1
        while lo < hi - 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if starts[mid] <= offset else (lo, mid)
        return lo + 1, offset - starts[lo]

    for m in FALLBACK.finditer(source):
        text = m.group()
        if text.startswith("#"):
            continue
        if text[0] in "'\"":
            tok_type = tokenize.STRING
        elif text[0].isdigit():
            tok_type = tokenize.NUMBER
        elif text[0].isalpha() or text[0] == "_":
            tok_type = tokenize.NAME
        else:
            tok_type = tokenize.OP
        kind = _kind(tok_type, text, prev, names)
        if kind is not None:
            out.append(Token(kind, cell, pos(m.start()), pos(m.end())))
            prev = text
    return out


def _hash(kinds: list[str]) -> str:
    return hashlib.blake2b("\x1f".join(kinds).encode(), digest_size=8).hexdigest()


def winnow(kinds: list[str], k: int = K, w: int = W) -> list[tuple[str, int]]:
    """Winnowing: (hash, index of its k-gram's first token) for the minimum of each window."""
    if len(kinds) < k:
        return []
    hashes = [_hash(kinds[i : i + k]) for i in range(len(kinds) - k + 1)]
    if len(hashes) <= w:
        i = min(range(len(hashes)), key=lambda j: (hashes[j], -j))
        return [(hashes[i], i)]
    chosen: list[tuple[str, int]] = []
    last = -1
    for start in range(len(hashes) - w + 1):
        i = min(range(start, start + w), key=lambda j: (hashes[j], -j))
        if i != last:
            chosen.append((hashes[i], i))
            last = i
    return chosen


def _fingerprint(student: Student, drop: frozenset[str] = frozenset()) -> None:
    student.prints = {}
    for cell, toks in student.tokens.items():
        for h, i in winnow([t.kind for t in toks], K, W):
            if h not in drop:
                student.prints.setdefault(h, []).append((cell, i))


# --------------------------------------------------------------------------- submissions


def read_answers(
    path: Path,
    notebook: str,
    release: Release,
    *,
    max_file: int = MAX_FILE_BYTES,
    max_code: int = MAX_CODE_BYTES,
) -> dict[str, str]:
    """Cell key -> the student's source of each answer cell of ``notebook``; raises :class:`Skip`."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise Skip(f"{path.name}: empty file")
    if size > max_file:
        raise Skip(f"{path.name}: too large ({size / 1024**2:.1f} MiB; limit {max_file >> 20} MiB)")
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, RecursionError, MemoryError):
        raise Skip(f"{path.name}: not a notebook (not UTF-8 JSON)") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise Skip(f"{path.name}: not a notebook (no cells)")
    stubs = release.notebooks[notebook]
    answers: dict[str, str] = {}
    for cell in raw["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata")
        meta = meta.get("nbgrader") if isinstance(meta, dict) else None
        if not isinstance(meta, dict) or not meta.get("solution"):
            continue
        gid = meta.get("grade_id")
        if isinstance(gid, str) and gid in stubs and gid not in answers:
            src = cell.get("source", "")
            if isinstance(src, list) and all(isinstance(line, str) for line in src):
                src = "".join(src)
            if not isinstance(src, str):
                raise Skip(f"{path.name}: answer cell {gid}: its source is not text")
            answers[gid] = src
    code = sum(len(s.encode("utf-8", "replace")) for s in answers.values())
    if code > max_code:
        raise Skip(
            f"{path.name}: too much answer code ({code / 1024**2:.1f} MiB; "
            f"limit {max_code / 1024**2:g} MiB)"
        )
    return {_key(notebook, gid, len(release.notebooks)): src for gid, src in answers.items()}


def load_student(
    student: str,
    files: dict[str, Path],
    release: Release,
    *,
    max_file: int = MAX_FILE_BYTES,
    max_code: int = MAX_CODE_BYTES,
    max_tokens: int = MAX_TOKENS,
) -> Student:
    """One student's answers, tokens and fingerprints; raises :class:`Skip` with the reason."""
    s = Student(student)
    missing = [nb for nb in release.notebooks if nb not in files]
    if len(missing) == len(release.notebooks):
        raise Skip("no notebook of the assignment handed in")
    stubs = {
        _key(nb, gid, len(release.notebooks)): src
        for nb, cells in release.notebooks.items()
        for gid, src in cells.items()
    }
    for nb in release.notebooks:
        if nb in files:
            s.cells.update(
                read_answers(files[nb], nb, release, max_file=max_file, max_code=max_code)
            )
    n = 0
    for key, src in s.cells.items():
        s.tokens[key] = tokens(_strip_stub(src, stubs[key]), key, release.names)
        n += len(s.tokens[key])
        if n > max_tokens:
            raise Skip(f"too much answer code (over {max_tokens} tokens)")
    if n == 0:
        raise Skip("no answer code beyond the starter code (empty or untouched notebook)")
    _fingerprint(s, release.prints)
    if not s.prints:
        raise Skip(f"too little answer code to compare (under {K} tokens in every cell)")
    return s


# --------------------------------------------------------------------------- comparison


def _cells(
    shared: set[str],
    weight: dict[str, float],
    where: list[tuple[dict[str, set[str]], Counter[str]]],
) -> list[str]:
    """The cells holding shared code, most shared first: ``cell NN%``.

    NN: of the two students' weighted fingerprints in that cell, the larger share that the
    other student has too. ``where``: per student, hash -> its cells and cell -> its weight.
    """
    share: dict[str, float] = {}
    for cells_of, total in where:
        common: Counter[str] = Counter()
        for h in shared:
            for c in cells_of[h]:
                common[c] += weight[h]
        for c, v in common.items():
            if total[c] > 0:
                share[c] = max(share.get(c, 0.0), v / total[c])
    return [
        f"{c} {100 * v:.0f}%"
        for c, v in sorted(share.items(), key=lambda cv: (-round(100 * cv[1]), cv[0]))
    ]


def compare(students: list[Student]) -> list[Pair]:
    """Every pair that shares a fingerprint, best first (see the module's docstring)."""
    n = len(students)
    df: Counter[str] = Counter()
    for s in students:
        df.update(s.prints.keys())
    weight = {h: math.log((n + 1) / c) for h, c in df.items()}
    for s in students:
        s.total = sum(weight[h] for h in s.prints)
    floor = 0.5 * statistics.median([s.total for s in students]) if students else 0.0
    where = {}
    for s in students:
        cells_of = {h: {c for c, _ in occ} for h, occ in s.prints.items()}
        total: Counter[str] = Counter()
        for h, cs in cells_of.items():
            for c in cs:
                total[c] += weight[h]
        where[s.student] = (cells_of, total)
    pairs: list[Pair] = []
    for i, a in enumerate(students):
        keys_a = a.prints.keys()
        for b in students[i + 1 :]:
            shared = keys_a & b.prints.keys()
            if not shared:
                continue
            wsum = sum(weight[h] for h in shared)
            denom = max(min(a.total, b.total), floor, 1e-12)
            pairs.append(
                Pair(
                    a.student,
                    b.student,
                    min(1.0, wsum / denom),
                    len(shared),
                    wsum,
                    _cells(shared, weight, [where[a.student], where[b.student]]),
                )
            )
    pairs.sort(key=lambda p: (-p.score, -p.weight, p.a, p.b))
    return pairs


def similarity(
    course: Path,
    assignment: str,
    submissions: Path,
    *,
    threshold: float = THRESHOLD,
    scratch: Path | None = None,
    max_file: int = MAX_FILE_BYTES,
    max_code: int = MAX_CODE_BYTES,
    max_tokens: int = MAX_TOKENS,
) -> Report:
    """Find, read and compare every submission in ``submissions`` (a folder or a .zip)."""
    import tempfile

    from autograder.collect import find_submissions, submissions_folder

    release = load_release(course, assignment)
    tmp = tempfile.TemporaryDirectory(dir=scratch)  # where a zip is unpacked
    try:
        folder = submissions_folder(submissions, Path(tmp.name) / "incoming")
        subs, warnings = find_submissions(
            folder, assignment, sorted(release.notebooks), release.grade_ids()
        )
        students: list[Student] = []
        skipped: list[tuple[str, str]] = []
        for sub in subs:
            if sub.ambiguous:
                skipped.append((sub.student, sub.problem or "ambiguous submission"))
                continue
            files = {nb: Path(p) for nb, p in sub.files.items() if nb in release.notebooks}
            try:
                students.append(
                    load_student(
                        sub.student,
                        files,
                        release,
                        max_file=max_file,
                        max_code=max_code,
                        max_tokens=max_tokens,
                    )
                )
            except Skip as exc:
                skipped.append((sub.student, str(exc)))
            except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
                skipped.append((sub.student, f"could not be read: {type(exc).__name__}: {exc}"))
    finally:
        tmp.cleanup()
    pairs = compare(students)
    return Report(students, pairs, skipped, warnings, threshold)
