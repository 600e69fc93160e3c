"""`autograder export`: a graded assignment's scores as Canvas' or Moodle's import CSV.

A small graded class is built with nbgrader's own gradebook API (and the grading
journal beside it, as `autograder grade` leaves them). The files written are read back
the way the LMS reads them: Canvas' gradebook importer (header ``Student, ID, [SIS User
ID, SIS Login ID,] Section``, then assignment columns ``NAME (ID)``, a row whose first
cell says ``Points Possible``; a student is found by ``ID``) and Moodle's CSV grade
import (a byte order mark stripped, one row per student: identifier, grade, feedback).
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.course import tool_env

ASSIGNMENT = "ch05_hinges"
CELLS = {"hinge_positions": 6.0, "count_regions": 4.0}


def build_class(grading: Path, scores: dict[str, dict[str, float] | None]) -> None:
    """A gradebook with ASSIGNMENT graded: student -> cell scores (None: no submission)."""
    from nbgrader.api import Gradebook

    tool_env()
    grading.mkdir(parents=True, exist_ok=True)
    journal = grading / "journal" / ASSIGNMENT
    journal.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{grading / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")  # nbgrader trips SQLAlchemy's autoflush warnings
        gb.add_assignment(ASSIGNMENT)
        gb.add_notebook(ASSIGNMENT, ASSIGNMENT)
        for cell, points in CELLS.items():
            gb.add_grade_cell(cell, ASSIGNMENT, ASSIGNMENT, max_score=points, cell_type="code")
        for student, cells in scores.items():
            gb.add_student(student)
            if cells is None:
                continue
            gb.add_submission(ASSIGNMENT, student)
            for cell, score in cells.items():
                grade = gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student)
                grade.auto_score = score
            gb.db.commit()
            failed = [c for c, s in cells.items() if s < CELLS[c]]
            entry = {
                "status": "ok",
                "reason": "ran to the end without errors"
                if not failed
                else f"ran to the end; graded cells failed: {', '.join(failed)}",
                "feedback": True,
                "feedback_status": "published",
            }
            (journal / f"{student}.json").write_text(json.dumps(entry))


def write_csv(path: Path, rows: list[list[str]], bom: bool = True) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def canvas_import(path: Path) -> dict:
    """Read a CSV as Canvas' gradebook importer does; scores by Canvas user ID."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "written as UTF-8 with a byte order mark"
    rows = list(csv.reader(raw.decode("utf-8").splitlines()))
    header = rows[0]
    assert "Student" in header[0] and "ID" in header[1], header  # Canvas' header test
    n = 3
    if header[2] == "SIS Login ID":
        n += 1
    elif header[2] == "SIS User ID" and header[3] == "SIS Login ID":
        n += 2 + (header[4] == "Integration ID")
    assert "Section" in header[n - 1], header
    columns = header[n:]
    points, students = {}, {}
    for row in rows[1:]:
        assert len(row) == len(header), row
        if "Points Possible" in row[0]:
            points = dict(zip(columns, row[n:]))
            continue
        students[row[1]] = {
            "name": row[0],
            "info": dict(zip(header[:n], row[:n])),
            **dict(zip(columns, row[n:])),
        }
    return {"columns": columns, "points": points, "students": students, "header": header}


def moodle_import(path: Path) -> dict:
    """Read a CSV as Moodle's grade import does (the byte order mark stripped)."""
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(text.removeprefix("\ufeff").splitlines()))
    header = rows[0]
    assert len(header) == 3
    return {"header": header, "rows": {r[0]: (r[1], r[2]) for r in rows[1:]}}


CANVAS_HEADER = [
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Section",
    "ch04_dead (12300)",
    "ch05_hinges (12345)",
    "Current Score",
    "Final Score",
]

CANVAS_CLASS = {
    "obrien": {"hinge_positions": 6.0, "count_regions": 1.5},
    "garciajose": {"hinge_positions": 6.0, "count_regions": 4.0},  # "García, José"
    "li_hua": {"hinge_positions": 2.0, "count_regions": 0.0},  # mapped by --map
    "brownbob": {"hinge_positions": 3.0, "count_regions": 4.0},  # Canvas' download name
    "jdoe": None,  # in the gradebook, nothing handed in
}
EXPECTED_CANVAS = {"101": "7.5", "102": "10", "103": "2", "106": "7"}


def canvas_roster(tmp_path: Path, header=CANVAS_HEADER, extra=()) -> Path:
    rows = [
        header,
        ["    Points Possible", "", "", "", "", "10", "10", "(read only)", "(read only)"],
        ['O\'Brien, Seán "Jack"', "101", "S101", "obrien", "Sec, 1", "5", "", "50", "50"],
        ["García, José", "102", "S102", "jgarcia", "Sec, 1", "9", "", "90", "90"],
        ["李, 华", "103", "S103", "", "Sec 2", "", "", "", ""],
        ["Smith, Ann", "104", "S104", "asmith", "Sec 2", "", "", "", ""],
        ["Doe, John", "105", "S105", "jdoe", "Sec 2", "", "", "", ""],
        ["Brown, Bob", "106", "S106", "bb1", "Sec 2", "", "", "", ""],
        ["Student, Test", "999", "", "", "Sec 2", "", "", "", ""],
        *extra,
    ]
    return write_csv(tmp_path / "canvas_roster.csv", [r[: len(header)] for r in rows])


@pytest.fixture
def canvas_class(tmp_path: Path) -> Path:
    build_class(tmp_path / "grading", CANVAS_CLASS)
    write_csv(tmp_path / "map.csv", [["student", "roster_id"], ["li_hua", "103"]], bom=False)
    return tmp_path


def export(course: Path, *args: str) -> int:
    return main(["--course", str(course), "export", ASSIGNMENT, *args])


def test_canvas_reuses_the_column_and_every_score_comes_back(canvas_class, capsys):
    roster = canvas_roster(canvas_class)
    out = canvas_class / "up.csv"
    args = ["--to", "canvas", "--roster", str(roster), "--out", str(out)]
    code = export(canvas_class, *args, "--map", str(canvas_class / "map.csv"))
    text = capsys.readouterr()
    assert code == 0, text.err
    got = canvas_import(out)
    # Canvas' importer keeps the mark in the first cell and tests "Student" in it.
    assert got["header"][0] == "\ufeffStudent"
    assert ["Student", *got["header"][1:]] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "ch05_hinges (12345)",
    ]
    assert got["points"] == {"ch05_hinges (12345)": "10"}
    scores = {cid: s["ch05_hinges (12345)"] for cid, s in got["students"].items()}
    assert scores == {**EXPECTED_CANVAS, "104": "", "105": ""}
    # The identifying cells are the roster's, byte for byte (commas, quotes, accents, CJK).
    assert got["students"]["101"]["name"] == 'O\'Brien, Seán "Jack"'
    assert got["students"]["101"]["info"]["Section"] == "Sec, 1"
    assert got["students"]["102"]["name"] == "García, José"
    assert got["students"]["103"]["name"] == "李, 华"
    assert "999" not in got["students"]  # Canvas' test student is left out
    assert "ch05_hinges (12345) (existing column of the roster)" in text.out
    assert "2 without a submission (left blank: --missing blank)" in text.out
    assert "no submission: Smith, Ann" in text.out and "no submission: Doe, John" in text.out


def test_canvas_missing_zero(canvas_class, capsys):
    roster = canvas_roster(canvas_class)
    out = canvas_class / "up.csv"
    args = ["--to", "canvas", "--roster", str(roster), "--out", str(out), "--missing", "zero"]
    assert export(canvas_class, *args, "--map", str(canvas_class / "map.csv")) == 0
    assert "given 0: --missing zero" in capsys.readouterr().out
    scores = {cid: s["ch05_hinges (12345)"] for cid, s in canvas_import(out)["students"].items()}
    assert scores == {**EXPECTED_CANVAS, "104": "0", "105": "0"}


def test_canvas_new_column_when_the_roster_has_none(canvas_class, capsys):
    header = CANVAS_HEADER[:5] + ["ch04_dead (12300)", "Other (1)", "Current Score"]
    roster = canvas_roster(canvas_class, header)
    out = canvas_class / "up.csv"
    args = ["--to", "canvas", "--roster", str(roster), "--out", str(out)]
    assert export(canvas_class, *args, "--map", str(canvas_class / "map.csv")) == 0
    assert "column: ch05_hinges (new column)" in capsys.readouterr().out
    got = canvas_import(out)
    assert got["columns"] == ["ch05_hinges"]
    assert got["points"] == {"ch05_hinges": "10"}  # Canvas creates it out of 10 points
    assert {c: s["ch05_hinges"] for c, s in got["students"].items() if s["ch05_hinges"]} == (
        EXPECTED_CANVAS
    )


def test_canvas_column_option_picks_the_exact_header(canvas_class, capsys):
    header = CANVAS_HEADER[:5] + ["Hinges, graded (777)", "ch05_hinges (12345)"]
    roster = canvas_roster(canvas_class, header)
    out = canvas_class / "up.csv"
    args = ["--to", "canvas", "--roster", str(roster), "--out", str(out), "--map"]
    args += [str(canvas_class / "map.csv"), "--column", "Hinges, graded (777)"]
    assert export(canvas_class, *args) == 0
    assert canvas_import(out)["columns"] == ["Hinges, graded (777)"]
    code = export(canvas_class, *args[:-1], "No such (1)")
    assert code == 2 and "no such column" in capsys.readouterr().err


def test_an_unmatched_submission_is_listed_and_fails_unless_allowed(canvas_class, capsys):
    roster = canvas_roster(canvas_class)
    out = canvas_class / "up.csv"
    args = ["--to", "canvas", "--roster", str(roster), "--out", str(out)]
    # Without the mapping file li_hua (2/10) matches no one.
    assert export(canvas_class, *args) == 1
    err = capsys.readouterr().err
    assert "unmatched: li_hua (2/10, ok) matches no roster row" in err
    assert "nothing written" in err and not out.exists()
    assert export(canvas_class, *args, "--allow-unmatched") == 0
    scores = {cid: s["ch05_hinges (12345)"] for cid, s in canvas_import(out)["students"].items()}
    assert scores["103"] == "" and scores["101"] == "7.5"


def test_a_duplicate_identifier_names_both_rows(canvas_class, capsys):
    extra = [["Smith, Anna", "104", "S999", "asmith2", "Sec 2", "", "", "", ""]]
    roster = canvas_roster(canvas_class, extra=extra)
    code = export(canvas_class, "--to", "canvas", "--roster", str(roster))
    err = capsys.readouterr().err
    assert code == 2
    assert "ID '104' is on two rows: line 6 (Smith, Ann) and line 10 (Smith, Anna)" in err


def test_the_mapping_file_must_name_a_roster_row(canvas_class, capsys):
    roster = canvas_roster(canvas_class)
    bad = write_csv(canvas_class / "bad.csv", [["student", "roster_id"], ["li_hua", "404"]])
    code = export(canvas_class, "--to", "canvas", "--roster", str(roster), "--map", str(bad))
    assert code == 2 and "'404' (for li_hua) is in no row" in capsys.readouterr().err


MOODLE_CLASS = {
    # Moodle's folders "Full Name_123_assignsubmission_file_" give these ids.
    "Seán_Jack_O_Brien": {"hinge_positions": 6.0, "count_regions": 1.5},
    "José_García": {"hinge_positions": 6.0, "count_regions": 4.0},
    "unknown": {"hinge_positions": 2.0, "count_regions": 0.0},  # 李华's folder
    "cdupont": {"hinge_positions": 0.0, "count_regions": 4.0},  # an nbgrader id = username
}


@pytest.fixture
def moodle_class(tmp_path: Path) -> Path:
    build_class(tmp_path / "grading", MOODLE_CLASS)
    header = ["First name", "Last name", "ID number", "Username", "Email address"]
    header += ["Assignment: ch05_hinges (Real)", "Last downloaded from this course"]
    rows = [
        header,
        ['Seán "Jack"', "O'Brien", "2001", "sobrien", "sean@example.edu", "-", "1"],
        ["José", "García", "2002", "jgarcia", "jose@example.edu", "-", "1"],
        ["华", "李", "2003", "lihua", "lihua@example.edu", "-", "1"],
        ["Claire", "Dupont, Jr.", "2004", "cdupont", "claire@example.edu", "-", "1"],
        ["Ann", "Smith", "2005", "asmith", "ann@example.edu", "-", "1"],
    ]
    write_csv(tmp_path / "moodle.csv", rows)
    write_csv(tmp_path / "map.csv", [["student", "roster_id"], ["unknown", "lihua@example.edu"]])
    return tmp_path


@pytest.mark.parametrize(
    "identifier,keys",
    [
        ("email", ["sean@example.edu", "jose@example.edu", "lihua@example.edu"]),
        ("idnumber", ["2001", "2002", "2003"]),
        ("username", ["sobrien", "jgarcia", "lihua"]),
    ],
)
def test_moodle_grades_and_feedback_come_back(moodle_class, capsys, identifier, keys):
    out = moodle_class / "up.csv"
    args = ["--to", "moodle", "--roster", str(moodle_class / "moodle.csv"), "--out", str(out)]
    args += ["--identifier", identifier, "--map", str(moodle_class / "map.csv")]
    assert export(moodle_class, *args) == 0, capsys.readouterr().err
    got = moodle_import(out)
    assert got["header"][1:] == [ASSIGNMENT, f"{ASSIGNMENT} feedback"]
    grades = {k: g for k, (g, _) in got["rows"].items()}
    assert [grades[k] for k in keys] == ["7.5", "10", "2"]
    assert len(grades) == 5 and sorted(grades.values()) == ["", "10", "2", "4", "7.5"]
    feedback = got["rows"][keys[0]][1]
    assert feedback == "ok: ran to the end; graded cells failed: count_regions"
    assert got["rows"][keys[1]][1] == "ok: ran to the end without errors"
    assert "Ann Smith" in capsys.readouterr().out


def test_moodle_missing_zero_and_unmatched(moodle_class, capsys):
    out = moodle_class / "up.csv"
    args = ["--to", "moodle", "--roster", str(moodle_class / "moodle.csv"), "--out", str(out)]
    assert export(moodle_class, *args) == 1  # 李华's folder gave "unknown": no name match
    assert "unmatched: unknown (2/10, ok)" in capsys.readouterr().err
    assert export(moodle_class, *args, "--allow-unmatched", "--missing", "zero") == 0
    rows = moodle_import(out)["rows"]
    assert rows["ann@example.edu"] == ("0", "no_submission: nothing was submitted")
    assert rows["lihua@example.edu"][0] == "0"


def test_moodle_duplicate_email_names_both_rows(moodle_class, capsys):
    roster = moodle_class / "moodle.csv"
    rows = list(csv.reader(roster.read_text(encoding="utf-8-sig").splitlines()))
    rows.append(["Ann", "Smyth", "2006", "asmyth", "ANN@example.edu", "-", "1"])
    write_csv(roster, rows)
    code = export(moodle_class, "--to", "moodle", "--roster", str(roster))
    err = capsys.readouterr().err
    assert code == 2
    assert "line 6 (Ann Smith) and line 7 (Ann Smyth)" in err and "email" in err


def test_moodle_participants_list_leaves_teachers_out(moodle_class, capsys):
    rows = [
        ["First name", "Last name", "Email address", "Roles", "Groups"],
        ["José", "García", "jose@example.edu", "Student", "A, B"],
        ["Claire", "Dupont, Jr.", "claire@example.edu", "Student", ""],
        ["Tom", "Teacher", "tom@example.edu", "Teacher", ""],
    ]
    roster = write_csv(moodle_class / "participants.csv", rows)
    out = moodle_class / "up.csv"
    args = ["--to", "moodle", "--roster", str(roster), "--out", str(out), "--allow-unmatched"]
    assert export(moodle_class, *args) == 0
    text = capsys.readouterr()
    assert "left out: line 4: not a student (Teacher)" in text.out
    assert "unmatched: Seán_Jack_O_Brien" in text.err  # listed even when allowed
    assert {k: g for k, (g, _) in moodle_import(out)["rows"].items()} == {
        "jose@example.edu": "10",
        "claire@example.edu": "",  # cdupont is an nbgrader id; this list has no username
    }
