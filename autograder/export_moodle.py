"""The Moodle export: the CSV of Grades > Import, from its grade export or participants' list.

The format is described in :mod:`autograder.export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autograder.export_roster import (
    Export,
    ExportError,
    Matcher,
    RosterRow,
    check_unique,
    feedback_text,
    match_grades,
    read_csv,
    score_cell,
    write_csv,
)

# Moodle's column names (grade export and participants' list) per identifier.
MOODLE_IDENTIFIERS = {
    "email": ["Email address", "Email"],
    "idnumber": ["ID number", "ID Number", "Idnumber"],
    "username": ["Username", "User name"],
}
MOODLE_HEADER = {"email": "Email address", "idnumber": "ID number", "username": "Username"}


def _moodle_roster(path: Path, identifier: str) -> tuple[list[str], list[RosterRow], list[str]]:
    """Header, the students, and the rows left out (a participants' list's teachers)."""
    table = read_csv(path)
    if not table:
        raise ExportError(f"{path.name} is empty")
    header = [c.strip() for c in table[0]]
    lower = {h.casefold(): h for h in header}

    def column(names: list[str]) -> str | None:
        return next((lower[n.casefold()] for n in names if n.casefold() in lower), None)

    cols = {kind: column(names) for kind, names in MOODLE_IDENTIFIERS.items()}
    if cols[identifier] is None:
        raise ExportError(
            f"{path.name}: no {MOODLE_HEADER[identifier]!r} column for --identifier "
            f"{identifier} (columns: {', '.join(header)})"
        )
    full = column(["Full name", "Fullname", "Name"])
    first = column(["First name", "Firstname"])
    last = column(["Last name", "Surname", "Lastname"])
    roles = column(["Roles", "Role"])
    rows: list[RosterRow] = []
    skipped: list[str] = []
    for n, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        values = {h: c.strip() for h, c in zip(header, cells)}
        if roles and "student" not in values.get(roles, "").casefold():
            skipped.append(f"line {n}: not a student ({values.get(roles) or 'no role'})")
            continue
        if full and values.get(full):
            name = values[full]
        else:
            name = " ".join(v for v in (values.get(first or ""), values.get(last or "")) if v)
        row = RosterRow(n, values, name or f"no name, line {n}")
        for kind, col in cols.items():
            if col and values.get(col):
                row.strong[kind] = values[col]
        if name:
            row.weak["name"] = name
        if not row.strong.get(identifier):
            raise ExportError(
                f"{path.name}: {row.label()} has no {MOODLE_HEADER[identifier]}; "
                "choose another --identifier"
            )
        rows.append(row)
    return header, rows, skipped


def export_moodle(
    grades: list[dict[str, Any]],
    roster: Path,
    out: Path,
    assignment: str,
    *,
    identifier: str = "email",
    missing: str = "blank",
    mapping: dict[str, str] | None = None,
    column: str | None = None,
    allow_unmatched: bool = True,
) -> Export:
    """Write Moodle's grade import CSV (identifier, grade, feedback) for one assignment."""
    if identifier not in MOODLE_HEADER:
        raise ExportError(f"--identifier must be one of {', '.join(MOODLE_HEADER)}")
    _, rows, skipped = _moodle_roster(roster, identifier)
    check_unique(rows, roster)
    grade_header = column or assignment
    result = Export(
        Path(out), "moodle", grade_header, "mapped to the grade item in Moodle", skipped=skipped
    )
    matcher = Matcher(rows, ["username", "email", "idnumber", "name"], mapping or {})
    matched = match_grades(grades, matcher, result)
    table = [[MOODLE_HEADER[identifier], grade_header, f"{grade_header} feedback"]]
    for row in rows:
        g = matched.get(id(row))
        if g is None or g["status"] == "no_submission":
            result.missing.append(row.name)
            feedback = "no_submission: nothing was submitted"
        else:
            result.graded.append(row.name)
            feedback = feedback_text(g)
        table.append([row.strong[identifier], score_cell(g, missing), feedback])
    result.students = len(rows)
    if allow_unmatched or not result.unmatched:
        write_csv(Path(out), table)
        result.written = True
    return result
