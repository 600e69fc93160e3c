"""The Canvas export: the gradebook import's CSV, from the instructor's gradebook export.

The format is described in :mod:`autograder.export`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from autograder.export_roster import (
    Export,
    ExportError,
    Matcher,
    RosterRow,
    check_unique,
    fmt_score,
    match_grades,
    read_csv,
    score_cell,
    write_csv,
)

# Canvas' student information columns, in the order its importer expects them.
CANVAS_INFO = ["Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section"]
# Canvas' computed columns: read only, dropped (unposted variants too).
CANVAS_COMPUTED = re.compile(
    r"(Current|Final|Override|Unposted) (Score|Points|Grade|Status)|Read Only", re.I
)
CANVAS_COLUMN = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")
CANVAS_TEST_STUDENTS = {"Student, Test", "Test Student"}


def _canvas_roster(path: Path) -> tuple[list[str], list[str] | None, list[RosterRow], list[str]]:
    """Header, the Points Possible row, the students, and the rows left out (test student)."""
    table = read_csv(path)
    if not table:
        raise ExportError(f"{path.name} is empty")
    header = [c.strip() for c in table[0]]
    for need in ("Student", "ID", "Section"):
        if need not in header:
            raise ExportError(
                f"{path.name}: no {need!r} column; export the roster from Canvas' "
                "gradebook (Export > Export Entire Gradebook)"
            )
    points: list[str] | None = None
    rows: list[RosterRow] = []
    skipped: list[str] = []
    for n, cells in enumerate(table[1:], start=2):
        cells = cells + [""] * (len(header) - len(cells))
        first = cells[0].strip() if cells else ""
        if "Points Possible" in first:
            points = cells
            continue
        if not any(c.strip() for c in cells) or all(
            re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", c, re.I) for c in cells
        ):
            continue
        values = {h: c.strip() for h, c in zip(header, cells)}
        if values["Student"] in CANVAS_TEST_STUDENTS:
            skipped.append(f"line {n} ({values['Student']}): Canvas' test student")
            continue
        row = RosterRow(n, values, values["Student"])
        for kind in ("ID", "SIS User ID", "SIS Login ID"):
            if values.get(kind):
                row.strong[kind] = values[kind]
        if values["Student"]:
            row.weak["name"] = values["Student"]
            row.weak["name_squashed"] = values["Student"]
        rows.append(row)
    return header, points, rows, skipped


def _canvas_column(
    header: list[str], assignment: str, column: str | None
) -> tuple[int | None, str]:
    """The roster's column for the assignment (its index and header) or a new header."""
    if column is not None:
        if column not in header:
            raise ExportError(f"--column {column!r}: no such column in the roster")
        return header.index(column), column
    hits = [
        i
        for i, h in enumerate(header)
        if h == assignment
        or ((m := CANVAS_COLUMN.match(h)) is not None and m.group("name") == assignment)
    ]
    if len(hits) > 1:
        raise ExportError(
            f"the roster has several columns for {assignment}: "
            + ", ".join(repr(header[i]) for i in hits)
            + "; pick one with --column"
        )
    if hits:
        return hits[0], header[hits[0]]
    return None, assignment


def export_canvas(
    grades: list[dict[str, Any]],
    roster: Path,
    out: Path,
    assignment: str,
    *,
    missing: str = "blank",
    mapping: dict[str, str] | None = None,
    column: str | None = None,
    allow_unmatched: bool = True,
) -> Export:
    """Write Canvas' gradebook import CSV for one assignment; see the module's docstring."""
    header, points, rows, skipped = _canvas_roster(roster)
    check_unique(rows, roster)
    info = [h for h in CANVAS_INFO if h in header]
    if "SIS User ID" in info and "SIS Login ID" not in info:
        info.remove("SIS User ID")  # Canvas reads SIS User ID only beside SIS Login ID
    if "Integration ID" in info and "SIS Login ID" not in info:
        info.remove("Integration ID")
    col_index, col_header = _canvas_column(header, assignment, column)
    result = Export(
        Path(out),
        "canvas",
        col_header,
        "existing column of the roster" if col_index is not None else "new column",
        skipped=skipped,
    )
    max_score = max((float(g["max_score"]) for g in grades), default=0.0)
    pp = fmt_score(max_score)
    if col_index is not None and points is not None and points[col_index].strip():
        roster_pp = points[col_index].strip()
        if "read only" in roster_pp.casefold():
            raise ExportError(f"the roster's column {col_header!r} is read only")
        try:
            if abs(float(roster_pp) - max_score) > 1e-9:
                result.notes.append(
                    f"Canvas gives {col_header!r} {roster_pp} points, the gradebook "
                    f"{pp}: the scores are written as they are (out of {pp})"
                )
        except ValueError:
            pass
        pp = roster_pp
    order = ["SIS Login ID", "SIS User ID", "ID", "name_squashed", "name"]
    matcher = Matcher(rows, order, mapping or {})
    matched = match_grades(grades, matcher, result)
    first_cell = points[0] if points is not None and points[0].strip() else "Points Possible"
    table = [info + [col_header], [first_cell] + [""] * (len(info) - 1) + [pp]]
    for row in rows:
        g = matched.get(id(row))
        if g is None or g["status"] == "no_submission":
            result.missing.append(row.name)
        else:
            result.graded.append(row.name)
        table.append([row.cells.get(h, "") for h in info] + [score_cell(g, missing)])
    result.students = len(rows)
    if allow_unmatched or not result.unmatched:
        write_csv(Path(out), table)
        result.written = True
    return result
