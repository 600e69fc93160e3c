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
true. The threshold of 0.8 comes from the tests' class (``tests/test_similarity.py``):
three disguised copies scored 0.93 to 0.94, the 561 honest pairs at most 0.74.

A high score is evidence for a person to look at, never a verdict: students are taught
the same idioms, work together where that is allowed, and short exercises leave little
room. The page says so.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import html
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


# --------------------------------------------------------------------------- output


def read_grades(path: Path | None, assignment: str) -> dict[str, str]:
    """Student -> "score / max" from grades.csv, for this assignment; empty when absent."""
    if path is None or not Path(path).is_file():
        return {}
    out: dict[str, str] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("assignment", assignment) == assignment and row.get("student"):
                    score, top = row.get("score", ""), row.get("max_score", "")
                    out[row["student"]] = f"{score} / {top}" if top else score
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return out


def shown(report: Report, top: int = TOP) -> list[Pair]:
    """The pairs the page shows: the ``top`` best and every one at or above the threshold."""
    return [p for i, p in enumerate(report.pairs) if i < top or p.score >= report.threshold]


def write(
    report: Report, out: Path, assignment: str, grades: dict[str, str], top: int = TOP
) -> dict[str, Path]:
    """Write similarity.csv, skipped.csv and similarity.html into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "similarity.csv",
        "skipped": out / "skipped.csv",
        "html": out / "similarity.html",
    }
    with open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "rank",
                "student_a",
                "student_b",
                "score",
                "flagged",
                "shared_fingerprints",
                "shared_weight",
                "cells",
                "score_a",
                "score_b",
            ]
        )
        for i, p in enumerate(report.pairs, 1):
            w.writerow(
                [
                    i,
                    p.a,
                    p.b,
                    f"{p.score:.3f}",
                    "yes" if p.score >= report.threshold else "",
                    p.shared,
                    f"{p.weight:.2f}",
                    "; ".join(p.cells),
                    grades.get(p.a, ""),
                    grades.get(p.b, ""),
                ]
            )
    with open(paths["skipped"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "reason"])
        w.writerows(report.skipped)
    paths["html"].write_text(page(report, assignment, grades, top))
    return paths


def _marks(s: Student, hashes: set[str]) -> dict[str, list[tuple[int, int]]]:
    """Cell -> merged (start, end) character ranges of its tokens in shared k-grams."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for h in hashes:
        for cell, i in s.prints.get(h, []):
            toks = s.tokens[cell][i : i + K]
            src = s.cells[cell]
            starts = [0]
            for line in src.splitlines(keepends=True):
                starts.append(starts[-1] + len(line))
            for t in toks:
                a = starts[min(t.start[0] - 1, len(starts) - 1)] + t.start[1]
                b = starts[min(t.end[0] - 1, len(starts) - 1)] + t.end[1]
                spans.setdefault(cell, []).append((a, b))
    for cell, rs in spans.items():
        rs.sort()
        merged: list[tuple[int, int]] = []
        for a, b in rs:
            # tokens of one shared run are joined across the spaces between them
            gap = s.cells[cell][merged[-1][1] : a] if merged else "\n"
            if merged and (a <= merged[-1][1] or (not gap.strip() and "\n" not in gap)):
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        spans[cell] = merged
    return spans


def _code(src: str, ranges: list[tuple[int, int]]) -> str:
    parts, pos = [], 0
    for a, b in ranges:
        parts.append(html.escape(src[pos:a]))
        parts.append(f"<mark>{html.escape(src[a:b])}</mark>")
        pos = b
    parts.append(html.escape(src[pos:]))
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee}
td.n{text-align:right}
table.side{width:100%;table-layout:fixed}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:13px;line-height:1.4}
mark{background:#ffe066;color:#000;font-weight:bold;text-decoration:underline;
text-decoration-thickness:2px}
.note{border-left:4px solid #555;padding:.5em 1em;background:#f6f6f6}
.legend mark{padding:0 .3em}
"""


def page(report: Report, assignment: str, grades: dict[str, str], top: int = TOP) -> str:
    """The HTML page: the note, a table of the pairs shown, each pair side by side."""
    esc = html.escape
    by_id = {s.student: s for s in report.students}
    pairs = shown(report, top)
    flagged = sum(p.score >= report.threshold for p in report.pairs)
    h = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>Similarity: {esc(assignment)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Similarity of answer code: {esc(assignment)}</h1>",
        f"<p class='note'><strong>{esc(NOTE)}</strong></p>",
        f"<p>{len(report.students)} students compared, {len(report.pairs)} pairs share code; "
        f"{flagged} at or above the threshold {report.threshold:g}. Shown: the "
        f"{min(top, len(report.pairs))} highest and every pair at or above the threshold. "
        f"Score: the rarity-weighted share of the smaller answer found in the other "
        f"(0 to 1); only answer cells count, without the starter code.</p>",
        "<p class='legend'>Legend: <mark>bold, underlined and highlighted</mark> code also "
        f"appears, after renaming and reformatting, in the other student's answer (a shared "
        f"run of at least {K} tokens); plain code does not.</p>",
        "<h2>Pairs</h2>",
    ]
    if pairs:
        h.append(
            "<table><caption>Pairs shown, highest score first</caption><thead><tr>"
            + "".join(
                f"<th scope='col'>{c}</th>"
                for c in (
                    "rank",
                    "student A",
                    "student B",
                    "score",
                    "flagged",
                    "shared fingerprints",
                    "cells",
                    "grade A",
                    "grade B",
                )
            )
            + "</tr></thead><tbody>"
        )
        for i, p in enumerate(pairs, 1):
            h.append(
                f"<tr><td class='n'>{i}</td><td>{esc(p.a)}</td><td>{esc(p.b)}</td>"
                f"<td class='n'><a href='#pair-{i}'>{p.score:.2f}</a></td>"
                f"<td>{'yes' if p.score >= report.threshold else 'no'}</td>"
                f"<td class='n'>{p.shared}</td><td>{esc(', '.join(p.cells))}</td>"
                f"<td>{esc(grades.get(p.a, '–'))}</td><td>{esc(grades.get(p.b, '–'))}</td></tr>"
            )
        h.append("</tbody></table>")
    else:
        h.append("<p>No two students share code.</p>")
    for i, p in enumerate(pairs, 1):
        a, b = by_id[p.a], by_id[p.b]
        common = set(a.prints) & set(b.prints)
        ma, mb = _marks(a, common), _marks(b, common)
        h.append(
            f"<h2 id='pair-{i}'>{i}. {esc(p.a)} and {esc(p.b)}: score {p.score:.2f}"
            f"{' (flagged)' if p.score >= report.threshold else ''}</h2>"
        )
        h.append(
            f"<p>{p.shared} shared fingerprints in {esc(', '.join(p.cells))}. "
            f"Grade of {esc(p.a)}: {esc(grades.get(p.a, 'not known'))}; "
            f"grade of {esc(p.b)}: {esc(grades.get(p.b, 'not known'))}.</p>"
        )
        h.append(
            f"<table class='side'><caption>{esc(p.a)} (left) and {esc(p.b)} (right), "
            "answer cell by answer cell</caption><thead><tr><th scope='col' style='width:10em'>"
            f"cell</th><th scope='col'>{esc(p.a)}</th><th scope='col'>{esc(p.b)}</th></tr>"
            "</thead><tbody>"
        )
        for cell in sorted(set(a.cells) | set(b.cells)):
            h.append(
                f"<tr><th scope='row'>{esc(cell)}</th>"
                f"<td><pre><code>{_code(a.cells.get(cell, ''), ma.get(cell, []))}</code></pre></td>"
                f"<td><pre><code>{_code(b.cells.get(cell, ''), mb.get(cell, []))}</code></pre></td>"
                "</tr>"
            )
        h.append("</tbody></table>")
    h.append("<h2>Not compared</h2>")
    if report.skipped:
        h.append(
            "<table><thead><tr><th scope='col'>student</th><th scope='col'>reason</th></tr>"
            "</thead><tbody>"
        )
        h += [f"<tr><td>{esc(s)}</td><td>{esc(why)}</td></tr>" for s, why in report.skipped]
        h.append("</tbody></table>")
    else:
        h.append("<p>Every submission was compared.</p>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def main(
    course: Path,
    assignment: str,
    submissions: Path,
    out: Path | None = None,
    grades: Path | None = None,
    threshold: float = THRESHOLD,
    top: int = TOP,
) -> int:
    """The command: compare, write, print a summary. Returns the exit status."""
    import sys

    course = Path(course).resolve()
    out = Path(out) if out else course / "grading" / "similarity"
    grades_path = Path(grades) if grades else course / "grading" / "grades.csv"
    try:
        report = similarity(course, assignment, submissions, threshold=threshold)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    paths = write(report, out, assignment, read_grades(grades_path, assignment), top)
    flagged = [p for p in report.pairs if p.score >= threshold]
    print(
        f"compared {len(report.students)} students, skipped {len(report.skipped)}; "
        f"{len(report.pairs)} pairs share code, {len(flagged)} at or above {threshold:g}"
    )
    for student, why in report.skipped:
        print(f"skipped {student}: {why}")
    for p in flagged[:top]:
        print(f"  {p.score:.2f}  {p.a}  {p.b}  ({p.shared} shared, {', '.join(p.cells)})")
    print(f"pairs:   {paths['csv']}")
    print(f"skipped: {paths['skipped']}")
    print(f"page:    {paths['html']}")
    print("A high score is evidence for a person to look at, not a verdict.")
    return 0
