"""`autograder export`: an assignment's scores as a CSV that Canvas or Moodle imports.

The scores are the gradebook's (:func:`autograder.report.collect_rows`, the rows of
``grades.csv``). The students are the LMS's own: the roster is the instructor's export
of the LMS gradebook (Canvas) or of its grades or participants (Moodle), and every
roster student gets a row. A submission is matched to a roster row by the ids the
collectors make (:func:`autograder.collect.student_id` of a Canvas or Blackboard
login, a Moodle full name, an nbgrader id), or by a mapping file (``student,roster_id``)
for the rest. Nothing is dropped silently: a roster student with no submission gets a
blank or a zero (``missing``), and a submission that matches no roster row is listed
(:attr:`Export.unmatched`); the command then exits 1 unless told to accept that.

Canvas (the gradebook import, ``GradebookImporter`` of canvas-lms): the header is
``Student, ID, SIS User ID, SIS Login ID, Section`` (the ones the roster has, in that
order: Canvas finds a student by ``ID``, then by SIS id, then by name), then the
assignment's column ``NAME (ID)``; a column whose header names no assignment of the
course creates one. The row whose first cell says ``Points Possible`` gives each
column's points. Computed columns (``Current Score``…) and other assignments are left
out (Canvas changes nothing it is not given).

Moodle (Grades > Import > CSV file): a header, then one row per student with the
identifier the instructor maps to the user (email address, ID number or username), the
grade and the feedback; the columns are mapped to the grade item in Moodle's form.

Both files are UTF-8 with a byte order mark, comma separated, fields quoted by the
:mod:`csv` module where needed: Moodle's CSV reader strips the mark, Canvas finds its
header by ``"Student" in cell`` (so the mark does no harm there), and spreadsheet
programs need the mark to read accents and non-Latin names as UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.collect import student_id

# Canvas' student information columns, in the order its importer expects them.
CANVAS_INFO = ["Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section"]
# Canvas' computed columns: read only, dropped (unposted variants too).
CANVAS_COMPUTED = re.compile(
    r"(Current|Final|Override|Unposted) (Score|Points|Grade|Status)|Read Only", re.I
)
CANVAS_COLUMN = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")
CANVAS_TEST_STUDENTS = {"Student, Test", "Test Student"}
# Moodle's column names (grade export and participants' list) per identifier.
MOODLE_IDENTIFIERS = {
    "email": ["Email address", "Email"],
    "idnumber": ["ID number", "ID Number", "Idnumber"],
    "username": ["Username", "User name"],
}
MOODLE_HEADER = {"email": "Email address", "idnumber": "ID number", "username": "Username"}


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


def _read_csv(path: Path) -> list[list[str]]:
    text = Path(path).read_text(encoding="utf-8-sig")
    sample = text.split("\n", 1)[0]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _write_csv(path: Path, rows: Iterable[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows(rows)


def _check_unique(rows: list[RosterRow], roster: Path) -> None:
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


class _Matcher:
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
    rows = _read_csv(path)
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


def _assignment_rows(grading: Path, db_url: str | None, assignment: str) -> list[dict[str, Any]]:
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


def _feedback(row: dict[str, Any]) -> str:
    """grades.csv's status and reason, on one line (a line break becomes a space)."""
    return " ".join(f"{row['status']}: {row['reason']}".split())


def _match(
    grades: list[dict[str, Any]], matcher: _Matcher, result: Export
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


def _score_cell(g: dict[str, Any] | None, missing: str) -> str:
    if g is None or g["status"] == "no_submission":
        return "0" if missing == "zero" else ""
    return fmt_score(g["score"])


# --- Canvas -----------------------------------------------------------------------------


def _canvas_roster(path: Path) -> tuple[list[str], list[str] | None, list[RosterRow], list[str]]:
    """Header, the Points Possible row, the students, and the rows left out (test student)."""
    table = _read_csv(path)
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
    _check_unique(rows, roster)
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
    matcher = _Matcher(rows, order, mapping or {})
    matched = _match(grades, matcher, result)
    first_cell = points[0] if points is not None and points[0].strip() else "Points Possible"
    table = [info + [col_header], [first_cell] + [""] * (len(info) - 1) + [pp]]
    for row in rows:
        g = matched.get(id(row))
        if g is None or g["status"] == "no_submission":
            result.missing.append(row.name)
        else:
            result.graded.append(row.name)
        table.append([row.cells.get(h, "") for h in info] + [_score_cell(g, missing)])
    result.students = len(rows)
    if allow_unmatched or not result.unmatched:
        _write_csv(Path(out), table)
        result.written = True
    return result


# --- Moodle -----------------------------------------------------------------------------


def _moodle_roster(path: Path, identifier: str) -> tuple[list[str], list[RosterRow], list[str]]:
    """Header, the students, and the rows left out (a participants' list's teachers)."""
    table = _read_csv(path)
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
    _check_unique(rows, roster)
    grade_header = column or assignment
    result = Export(
        Path(out), "moodle", grade_header, "mapped to the grade item in Moodle", skipped=skipped
    )
    matcher = _Matcher(rows, ["username", "email", "idnumber", "name"], mapping or {})
    matched = _match(grades, matcher, result)
    table = [[MOODLE_HEADER[identifier], grade_header, f"{grade_header} feedback"]]
    for row in rows:
        g = matched.get(id(row))
        if g is None or g["status"] == "no_submission":
            result.missing.append(row.name)
            feedback = "no_submission: nothing was submitted"
        else:
            result.graded.append(row.name)
            feedback = _feedback(g)
        table.append([row.strong[identifier], _score_cell(g, missing), feedback])
    result.students = len(rows)
    if allow_unmatched or not result.unmatched:
        _write_csv(Path(out), table)
        result.written = True
    return result


# --- command line -----------------------------------------------------------------------


def add_parser(sub) -> None:
    """The `export` subcommand (added to autograder.cli's subparsers)."""
    p = sub.add_parser(
        "export",
        help="write an assignment's scores as a CSV that Canvas or Moodle imports",
        description="Scores come from the gradebook that `autograder grade` wrote; the "
        "students from the LMS's roster (Canvas: its gradebook export; Moodle: its grade "
        "export or participants' list). Exits 1 when a submission matches no roster row "
        "(unless --allow-unmatched), 2 on a roster or mapping error; nothing is written then.",
    )
    p.add_argument("assignment", help="assignment name (as graded)")
    p.add_argument("--to", required=True, choices=["canvas", "moodle"], help="the LMS")
    p.add_argument("--roster", required=True, type=Path, help="the LMS's roster CSV")
    p.add_argument(
        "--out", type=Path, default=None, help="CSV to write (default: GRADING/ASSIGNMENT-LMS.csv)"
    )
    p.add_argument(
        "--missing",
        choices=["blank", "zero"],
        default="blank",
        help="score of a roster student with no submission (default: blank)",
    )
    p.add_argument("--map", type=Path, default=None, help="CSV 'student,roster_id' for the rest")
    p.add_argument(
        "--allow-unmatched",
        action="store_true",
        help="write the file even when some submissions match no roster student",
    )
    p.add_argument(
        "--column", default=None, help="the grade column's exact header (default: by name)"
    )
    p.add_argument(
        "--identifier",
        choices=sorted(MOODLE_HEADER),
        default="email",
        help="Moodle: the column that identifies a student (default: email)",
    )
    p.add_argument(
        "--grading", type=Path, default=None, help="grading folder (default: COURSE/grading)"
    )
    p.add_argument("--db", default=None, help="gradebook URL (default: sqlite in --grading)")


def run(
    assignment: str,
    lms: str,
    roster: Path,
    *,
    grading: Path,
    out: Path | None = None,
    db_url: str | None = None,
    missing: str = "blank",
    map_file: Path | None = None,
    column: str | None = None,
    identifier: str = "email",
    allow_unmatched: bool = False,
) -> Export:
    """Export one assignment; raises :class:`ExportError` before writing anything."""
    grades = _assignment_rows(grading, db_url, assignment)
    mapping = read_map(map_file)
    out = Path(out) if out else Path(grading) / f"{assignment}-{lms}.csv"
    if lms == "canvas":
        return export_canvas(
            grades,
            roster,
            out,
            assignment,
            missing=missing,
            mapping=mapping,
            column=column,
            allow_unmatched=allow_unmatched,
        )
    return export_moodle(
        grades,
        roster,
        out,
        assignment,
        identifier=identifier,
        missing=missing,
        mapping=mapping,
        column=column,
        allow_unmatched=allow_unmatched,
    )


def main(args, course: Path) -> int:
    """`autograder export`: print what was written; the exit status of the module docstring."""
    grading = (args.grading or course / "grading").resolve()
    try:
        if not args.roster.is_file():
            raise ExportError(f"no roster at {args.roster}")
        result = run(
            args.assignment,
            args.to,
            args.roster,
            grading=grading,
            out=args.out,
            db_url=args.db,
            missing=args.missing,
            map_file=args.map,
            column=args.column,
            identifier=args.identifier,
            allow_unmatched=args.allow_unmatched,
        )
    except ExportError as exc:
        print(f"autograder: export: {exc}; nothing written", file=sys.stderr)
        return 2
    print(f"column: {result.column} ({result.column_source})")
    print(
        f"students: {result.students} on the roster, {len(result.graded)} with a score, "
        f"{len(result.missing)} without a submission "
        f"({'left blank' if args.missing == 'blank' else 'given 0'}: --missing {args.missing})"
    )
    for name in result.missing:
        print(f"  no submission: {name}")
    for line in result.skipped:
        print(f"left out: {line}")
    for line in result.notes:
        print(f"note: {line}")
    for g in result.unmatched:
        print(
            f"unmatched: {g['student']} ({fmt_score(g['score'])}/{fmt_score(g['max_score'])}, "
            f"{g['status']}) matches no roster row",
            file=sys.stderr,
        )
    if not result.written:
        print(
            f"autograder: export: {len(result.unmatched)} submission(s) match no roster "
            "student; add them to --map or pass --allow-unmatched; nothing written",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {result.lms} CSV: {result.path}")
    return 0
