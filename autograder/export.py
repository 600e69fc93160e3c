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

import sys
from pathlib import Path

from autograder.export_canvas import export_canvas
from autograder.export_moodle import MOODLE_HEADER, export_moodle
from autograder.export_roster import Export, ExportError, assignment_rows, fmt_score, read_map


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
    grades = assignment_rows(grading, db_url, assignment)
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
