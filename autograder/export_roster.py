"""What both LMS exports share: the roster's rows, matching submissions to them, the CSV.

A submission is matched to a roster row by the ids the collectors make
(:func:`autograder.collect.student_id`), each kind of id in the order the LMS's writer
gives (:class:`Matcher`), or by the mapping file (:func:`read_map`); the writers are
:mod:`autograder.export_canvas` and :mod:`autograder.export_moodle`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.collect import student_id


class ExportError(Exception):
    """A roster, mapping or gradebook problem that stops the export (nothing is written)."""


@dataclass
class RosterRow:
    """One student of the roster: its line in the file, its cells, and its ids."""

    line: int
    cells: dict[str, str]
    name: str
    strong: dict[str, str] = field(default_factory=dict)  # kind -> value (unique in the roster)
    weak: dict[str, str] = field(default_factory=dict)  # kind -> value (used when unique)

    def label(self) -> str:
        return f"line {self.line} ({self.name})"


@dataclass
class Export:
    """What was written, and who had no submission or no roster row."""

    path: Path
    lms: str
    column: str
    column_source: str
    students: int = 0
    graded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: bool = False


def _key(value: str) -> str:
    """An id as the collectors make it, for comparison (case does not matter)."""
    value = (value or "").strip()
    return student_id(value).casefold() if value else ""


def _squashed(name: str) -> str:
    """Canvas' download name of a student: "García, José" -> "garciajose".

    Letters and digits, lower case, accents dropped (on both sides of a comparison).
    """
    plain = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in plain if ch.isalnum() and not unicodedata.combining(ch))


def fmt_score(value: float) -> str:
    """A score as the LMS reads it: ``10``, ``7.5``, ``2.3333``."""
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def read_csv(path: Path) -> list[list[str]]:
    text = Path(path).read_text(encoding="utf-8-sig")
    sample = text.split("\n", 1)[0]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def write_csv(path: Path, rows: Iterable[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows(rows)


def check_unique(rows: list[RosterRow], roster: Path) -> None:
    """A strong id (Canvas ID, SIS id, email…) that two rows share is an error naming both."""
    seen: dict[tuple[str, str], RosterRow] = {}
    for row in rows:
        for kind, value in row.strong.items():
            k = (kind, value.casefold())
            if k in seen:
                raise ExportError(
                    f"{roster.name}: {kind} {value!r} is on two rows: "
                    f"{seen[k].label()} and {row.label()}"
                )
            seen[k] = row


class Matcher:
    """Finds the roster row of a student id: mapping first, then each id kind in turn."""

    def __init__(self, rows: list[RosterRow], order: list[str], mapping: dict[str, str]):
        self.order = order
        self.index: dict[str, dict[str, list[RosterRow]]] = {}
        self.by_value: dict[str, list[RosterRow]] = {}
        for row in rows:
            for kind, value in {**row.weak, **row.strong}.items():
                key = _squashed(value) if kind == "name_squashed" else _key(value)
                if key and key != "unknown":
                    self.index.setdefault(kind, {}).setdefault(key, []).append(row)
            for value in row.strong.values():
                self.by_value.setdefault(value.strip().casefold(), []).append(row)
        self.mapping = {}
        for sid, roster_id in mapping.items():
            found = self.by_value.get(roster_id.strip().casefold(), [])
            if not found:
                raise ExportError(f"--map: {roster_id!r} (for {sid}) is in no row of the roster")
            if len({id(r) for r in found}) > 1:
                raise ExportError(
                    f"--map: {roster_id!r} (for {sid}) is on several rows: "
                    + ", ".join(r.label() for r in found)
                )
            self.mapping[sid] = found[0]

    def find(self, sid: str) -> tuple[RosterRow | None, str]:
        if sid in self.mapping:
            return self.mapping[sid], "mapping file"
        for kind in self.order:
            key = _squashed(sid) if kind == "name_squashed" else _key(sid)
            hits = self.index.get(kind, {}).get(key, [])
            if len(hits) == 1:
                return hits[0], kind
        return None, ""


def read_map(path: Path | None) -> dict[str, str]:
    """The mapping file: a header ``student,roster_id``, then one student a line."""
    if path is None:
        return {}
    rows = read_csv(path)
    if not rows or [c.strip() for c in rows[0][:2]] != ["student", "roster_id"]:
        raise ExportError(f"{path.name}: the first line must be 'student,roster_id'")
    mapping: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ExportError(f"{path.name}: line {n} needs a student and a roster_id")
        sid = row[0].strip()
        if sid in mapping:
            raise ExportError(f"{path.name}: {sid} is mapped twice (line {n})")
        mapping[sid] = row[1].strip()
    return mapping


def assignment_rows(grading: Path, db_url: str | None, assignment: str) -> list[dict[str, Any]]:
    from autograder.course import tool_env
    from autograder.report import collect_rows

    tool_env()
    grading = Path(grading)
    db = db_url or f"sqlite:///{grading / 'gradebook.db'}"
    if not db_url and not (grading / "gradebook.db").exists():
        raise ExportError(f"no gradebook at {grading / 'gradebook.db'}")
    rows, questions = collect_rows(grading, db)
    if assignment not in questions:
        known = ", ".join(sorted(questions)) or "none"
        raise ExportError(f"the gradebook has no assignment {assignment} (it has: {known})")
    return [r for r in rows if r["assignment"] == assignment]


def feedback_text(row: dict[str, Any]) -> str:
    """grades.csv's status and reason, on one line (a line break becomes a space)."""
    return " ".join(f"{row['status']}: {row['reason']}".split())


def match_grades(
    grades: list[dict[str, Any]], matcher: Matcher, result: Export
) -> dict[int, dict[str, Any]]:
    """Roster row (by id()) -> its gradebook row; unmatched submissions go to ``result``."""
    matched: dict[int, dict[str, Any]] = {}
    who: dict[int, str] = {}
    for g in grades:
        row, how = matcher.find(g["student"])
        submitted = g["status"] != "no_submission"
        if row is None:
            if submitted:
                result.unmatched.append(g)
            continue
        if id(row) in matched:
            raise ExportError(
                f"{who[id(row)]} and {g['student']} both match roster {row.label()}; "
                "tell them apart with --map"
            )
        matched[id(row)] = g
        who[id(row)] = g["student"]
        if how == "mapping file":
            result.notes.append(f"{g['student']} -> {row.label()} (mapping file)")
    return matched


def score_cell(g: dict[str, Any] | None, missing: str) -> str:
    if g is None or g["status"] == "no_submission":
        return "0" if missing == "zero" else ""
    return fmt_score(g["score"])
