"""Which notebook the autograder grades when a student hands in several.

The notebooks are the course's own: ch05_hinges' released notebook (and copies of it),
the other chapters' released notebooks, a blank ``Untitled.ipynb`` and a file that is
not JSON, laid out as each kind of submission folder or LMS zip.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from autograder.collect import (
    extract_zip,
    find_submissions,
    notebook_grade_ids,
    release_grade_ids,
    student_id,
)

COURSE = ROOT
ASSIGNMENT = "ch05_hinges"
RELEASE = COURSE / "exercises" / ASSIGNMENT
OTHERS = sorted(
    p
    for p in (COURSE / "exercises").glob("*/*.ipynb")
    if p.parent.name != ASSIGNMENT and p.stem == p.parent.name
)
IDS = release_grade_ids(RELEASE)
NOTEBOOKS = sorted(IDS)


def _content(kind: str) -> bytes:
    """A notebook file's bytes: the release ("real"), another chapter's, blank, or not JSON."""
    if kind == "real":
        return (RELEASE / f"{ASSIGNMENT}.ipynb").read_bytes()
    if kind == "blank":
        return nbformat.writes(nbformat.v4.new_notebook()).encode()
    if kind == "bad":
        return b'{"cells": [ this is not JSON'
    (other,) = [p for p in OTHERS if p.stem == kind]
    return other.read_bytes()


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in files.items():
        (folder / name).write_bytes(_content(kind))


def _find(root: Path):
    """Student -> {notebook: file name}, student -> {notebook: [file names]}, the warnings."""
    subs, warnings = find_submissions(root, ASSIGNMENT, NOTEBOOKS, IDS)
    found = {s.student: {nb: Path(p).name for nb, p in s.files.items()} for s in subs}
    ambiguous = {
        s.student: {nb: [Path(p).name for p in ps] for nb, ps in s.ambiguous.items()}
        for s in subs
        if s.ambiguous
    }
    problems = {s.student: s.problem for s in subs if s.problem}
    return found, ambiguous, problems, warnings


def test_the_course_has_what_these_tests_use():
    assert NOTEBOOKS == [ASSIGNMENT] and len(IDS[ASSIGNMENT]) > 10
    assert len(OTHERS) >= 3
    # Chapters share a few cells ("intro", "imports"): another chapter is still no copy.
    assert any(notebook_grade_ids(p) & IDS[ASSIGNMENT] for p in OTHERS)


# A student's own folder, in each layout that has one: (folder, student id); warnings
# show paths from the folder handed over (nbgrader's: from submitted/).
LAYOUTS = {
    "nbgrader": ("submitted/ann/ch05_hinges", "ann"),
    "folder": ("ann", "ann"),
    "moodle": ("Ann Smith_123456_assignsubmission_file_", "Ann_Smith"),
}


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request, tmp_path):
    """Write files into one student's folder; return (root, student, where, write)."""
    sub, student = LAYOUTS[request.param]
    where = tmp_path / sub

    def write(files: dict[str, str]) -> None:
        _write(where, files)

    shown = where.relative_to(tmp_path).as_posix().removeprefix("submitted/")
    return tmp_path, student, shown, write


def test_exact_name_beats_a_copy_and_an_untitled(layout):
    root, student, where, write = layout
    write(
        {"Untitled.ipynb": "real", "ch05_hinges-Copy1.ipynb": "real", "ch05_hinges.ipynb": "real"}
    )
    found, ambiguous, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "ch05_hinges.ipynb"}} and not ambiguous
    (warning,) = warnings
    assert warning.startswith(f"{student}: graded {where}/ch05_hinges.ipynb; ignored ")
    assert f"ignored {where}/Untitled.ipynb (a copy of ch05_hinges.ipynb" in warning
    assert f"ignored {where}/ch05_hinges-Copy1.ipynb (a copy of ch05_hinges.ipynb" in warning


def test_exact_name_wins_even_when_it_cannot_be_read(layout):
    root, student, where, write = layout
    write({"Untitled.ipynb": "real", "ch05_hinges.ipynb": "bad"})
    found, _, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "ch05_hinges.ipynb"}}
    assert warnings == [
        f"{student}: graded {where}/ch05_hinges.ipynb; "
        f"ignored {where}/Untitled.ipynb (a copy of ch05_hinges.ipynb; "
        "ch05_hinges.ipynb has the exact name)"
    ]


@pytest.mark.parametrize("name", ["ch05_hinges-Copy1.ipynb", "Untitled.ipynb", "mine.ipynb"])
def test_a_copy_alone_is_taken(layout, name):
    root, student, _, write = layout
    write({name: "real"})
    found, ambiguous, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": name}}
    assert not ambiguous and warnings == []


def test_a_blank_untitled_beside_the_notebook_is_ignored(layout):
    root, student, where, write = layout
    write({"Untitled.ipynb": "blank", "ch05_hinges-Copy1.ipynb": "real"})
    found, _, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "ch05_hinges-Copy1.ipynb"}}
    n = len(IDS[ASSIGNMENT])
    assert warnings == [
        f"{student}: graded {where}/ch05_hinges-Copy1.ipynb as ch05_hinges.ipynb; "
        f"ignored {where}/Untitled.ipynb "
        f"(not a notebook of ch05_hinges: it holds none of the {n} graded cells of ch05_hinges.ipynb)"
    ]


def test_other_chapters_notebooks_are_ignored_with_a_note(layout):
    root, student, where, write = layout
    write({p.name: p.stem for p in OTHERS} | {"Untitled.ipynb": "real"})
    found, ambiguous, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "Untitled.ipynb"}} and not ambiguous
    (warning,) = warnings
    assert warning.startswith(f"{student}: graded {where}/Untitled.ipynb as ch05_hinges.ipynb; ")
    for p in OTHERS:
        assert f"ignored {where}/{p.name} (not a notebook of ch05_hinges: it holds " in warning


def test_only_other_notebooks_leave_a_submission_without_the_notebook(layout):
    """The student is known by their folder: graded as missing the notebook, not dropped."""
    root, student, where, write = layout
    write({OTHERS[0].name: OTHERS[0].stem, "Untitled.ipynb": "blank"})
    found, ambiguous, _, warnings = _find(root)
    assert found == {student: {}} and not ambiguous
    (warning,) = warnings
    assert warning.startswith(f"{student}: no notebook of ch05_hinges found; ignored ")
    assert f"ignored {where}/{OTHERS[0].name} (not a notebook" in warning


@pytest.mark.parametrize(
    "names",
    [
        ("ch05_hinges (2).ipynb", "ch05_hinges-Copy1.ipynb"),
        ("Untitled.ipynb", "ch05_hinges-Copy1.ipynb"),
        ("Untitled.ipynb", "Untitled1.ipynb", "ch05_hinges-Copy1.ipynb"),
    ],
)
def test_equally_good_copies_are_ambiguous(layout, names):
    root, student, where, write = layout
    write(dict.fromkeys(names, "real") | {"Untitled2.ipynb": "blank"})
    found, ambiguous, problems, warnings = _find(root)
    assert found == {student: {}}
    assert ambiguous == {student: {"ch05_hinges": sorted(names)}}
    problem = problems[student]
    assert problem.startswith("not graded: ") and "ch05_hinges.ipynb" in problem
    assert all(name in problem for name in names)
    (warning,) = warnings
    assert warning.startswith(f"{student}: ambiguous_submission, not graded: ")
    assert all(name in warning for name in names)
    assert f"ignored {where}/Untitled2.ipynb (not a notebook" in warning


def test_a_file_that_is_not_json_alone_is_still_handed_on(layout):
    root, student, _, write = layout
    write({"homework.ipynb": "bad"})
    found, ambiguous, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "homework.ipynb"}}
    assert not ambiguous and warnings == []


def test_a_readable_copy_beats_one_that_is_not_json(layout):
    root, student, where, write = layout
    write({"ch05_hinges (2).ipynb": "bad", "ch05_hinges-Copy1.ipynb": "real"})
    found, _, _, warnings = _find(root)
    assert found == {student: {"ch05_hinges": "ch05_hinges-Copy1.ipynb"}}
    assert warnings == [
        f"{student}: graded {where}/ch05_hinges-Copy1.ipynb as ch05_hinges.ipynb; "
        f"ignored {where}/ch05_hinges (2).ipynb (it cannot be read as a notebook)"
    ]


def test_nbgrader_tree_keeps_data_files_and_drops_ignored_notebooks(tmp_path):
    folder = tmp_path / "submitted" / "ann" / ASSIGNMENT
    _write(folder, {"Untitled.ipynb": "blank", "ch05_hinges-Copy1.ipynb": "real"})
    (folder / "data.csv").write_text("1")
    subs, _ = find_submissions(tmp_path, ASSIGNMENT, NOTEBOOKS, IDS)
    assert [(s.student, {k: Path(v).name for k, v in s.files.items()}) for s in subs] == [
        ("ann", {"ch05_hinges": "ch05_hinges-Copy1.ipynb", "data.csv": "data.csv"})
    ]


# Flat folders and LMS zips: file name -> kind, and what is found.
FLAT = {
    # Canvas
    "ann_12345_678901_ch05_hinges.ipynb": "real",
    "ann_12345_678901_ch05_hinges-Copy1.ipynb": "real",
    "ann_12345_678901_Untitled.ipynb": "blank",
    "bob_LATE_12345_678902_ch05_hinges-Copy1.ipynb": "real",
    "bob_LATE_12345_678902_Untitled.ipynb": "blank",
    "cat_12345_678903_ch05_hinges-Copy1.ipynb": "real",
    "cat_12345_678903_ch05_hinges (2).ipynb": "real",
    "dan_12345_678904_ch04_dead_relu.ipynb": "ch04_dead_relu",
    "dan_12345_678904_Untitled.ipynb": "real",
    "eve_12345_678905_ch05_hinges.ipynb": "bad",
    "fay_12345_678906_ch04_dead_relu.ipynb": "ch04_dead_relu",
    # Blackboard
    "Ch 5_gus_attempt_2024-01-31-10-00-00_ch05_hinges.ipynb": "real",
    "Ch 5_gus_attempt_2024-01-31-10-00-00_Untitled.ipynb": "real",
    # named by student
    "hal_ch05_hinges.ipynb": "real",
    "hal_ch05_hinges-Copy1.ipynb": "real",
    "hal_Untitled.ipynb": "blank",
    "ivy_ch05_hinges-Copy1.ipynb": "real",
    "jo_ch05_hinges-Copy1.ipynb": "real",
    "jo_ch05_hinges (2).ipynb": "real",
    "kim.ipynb": "real",
    "kim_Untitled.ipynb": "blank",
    "lou.ipynb": "bad",
    "ch04_dead_relu.ipynb": "ch04_dead_relu",
}
FLAT_FOUND = {
    "ann": {"ch05_hinges": "ann_12345_678901_ch05_hinges.ipynb"},
    "bob": {"ch05_hinges": "bob_LATE_12345_678902_ch05_hinges-Copy1.ipynb"},
    "cat": {},
    "dan": {"ch05_hinges": "dan_12345_678904_Untitled.ipynb"},
    "eve": {"ch05_hinges": "eve_12345_678905_ch05_hinges.ipynb"},
    "fay": {},
    "gus": {"ch05_hinges": "Ch 5_gus_attempt_2024-01-31-10-00-00_ch05_hinges.ipynb"},
    "hal": {"ch05_hinges": "hal_ch05_hinges.ipynb"},
    "ivy": {"ch05_hinges": "ivy_ch05_hinges-Copy1.ipynb"},
    "jo": {},
    "kim": {"ch05_hinges": "kim.ipynb"},
    "lou": {"ch05_hinges": "lou.ipynb"},
}
FLAT_AMBIGUOUS = {
    "cat": {
        "ch05_hinges": [
            "cat_12345_678903_ch05_hinges (2).ipynb",
            "cat_12345_678903_ch05_hinges-Copy1.ipynb",
        ]
    },
    "jo": {"ch05_hinges": ["jo_ch05_hinges (2).ipynb", "jo_ch05_hinges-Copy1.ipynb"]},
}


def _check_flat(root: Path) -> None:
    found, ambiguous, problems, warnings = _find(root)
    assert found == FLAT_FOUND
    assert ambiguous == FLAT_AMBIGUOUS
    assert sorted(problems) == ["cat", "jo"]
    for student, names in FLAT_AMBIGUOUS.items():
        assert all(name in problems[student] for name in names["ch05_hinges"])
    by_student = {w.split(":")[0]: w for w in warnings}
    ann = by_student["ann"]
    assert ann.startswith(
        "ann: graded ann_12345_678901_ch05_hinges.ipynb as ch05_hinges.ipynb; ignored "
    )
    assert (
        "ignored ann_12345_678901_ch05_hinges-Copy1.ipynb (a copy of ch05_hinges.ipynb; "
        "ann_12345_678901_ch05_hinges.ipynb has the exact name)"
    ) in ann
    assert (
        f"ignored ann_12345_678901_Untitled.ipynb (not a notebook of ch05_hinges: "
        f"it holds none of the {len(IDS[ASSIGNMENT])} graded cells of ch05_hinges.ipynb)"
    ) in ann
    assert by_student["hal"].startswith("hal: graded hal_ch05_hinges.ipynb as ")
    assert "ignored hal_Untitled.ipynb (not a notebook" in by_student["hal"]
    assert "ignored hal_ch05_hinges-Copy1.ipynb (a copy" in by_student["hal"]
    assert "graded bob_LATE_12345_678902_ch05_hinges-Copy1.ipynb" in by_student["bob"]
    assert "ignored bob_LATE_12345_678902_Untitled.ipynb" in by_student["bob"]
    assert "ignored dan_12345_678904_ch04_dead_relu.ipynb (not a notebook" in by_student["dan"]
    assert by_student["fay"].startswith("fay: no notebook of ch05_hinges found; ignored ")
    assert "ignored kim_Untitled.ipynb (not a notebook" in by_student["kim"]
    for student in ("cat", "jo"):
        assert by_student[student].startswith(f"{student}: ambiguous_submission, not graded: ")
    # A flat file named by no student and holding another chapter is skipped, not graded.
    assert by_student["skipped ch04_dead_relu.ipynb"].startswith(
        "skipped ch04_dead_relu.ipynb: not a notebook of ch05_hinges"
    )
    assert by_student["gus"].startswith(
        "gus: graded Ch 5_gus_attempt_2024-01-31-10-00-00_ch05_hinges.ipynb as "
    )
    assert (
        "ignored Ch 5_gus_attempt_2024-01-31-10-00-00_Untitled.ipynb (a copy" in by_student["gus"]
    )
    assert not {"eve", "ivy", "lou"} & set(by_student)


def test_flat_folder(tmp_path):
    _write(tmp_path, FLAT)
    _check_flat(tmp_path)


def test_lms_zip(tmp_path):
    zpath = tmp_path / "class.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, kind in FLAT.items():
            zf.writestr(name, _content(kind))
    _check_flat(extract_zip(zpath, tmp_path / "unpacked"))


def test_lms_zip_with_a_folder_per_student(tmp_path):
    zpath = tmp_path / "class.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ann/Untitled.ipynb", _content("blank"))
        zf.writestr("ann/ch05_hinges-Copy1.ipynb", _content("real"))
        zf.writestr("bob/ch05_hinges-Copy1.ipynb", _content("real"))
        zf.writestr("bob/ch05_hinges (2).ipynb", _content("real"))
    found, ambiguous, _, warnings = _find(extract_zip(zpath, tmp_path / "unpacked"))
    assert found == {"ann": {"ch05_hinges": "ch05_hinges-Copy1.ipynb"}, "bob": {}}
    assert ambiguous == {
        "bob": {"ch05_hinges": ["ch05_hinges (2).ipynb", "ch05_hinges-Copy1.ipynb"]}
    }
    assert warnings[0].startswith("ann: graded ann/ch05_hinges-Copy1.ipynb as ch05_hinges.ipynb; ")


def test_grade_ids_never_raise(tmp_path):
    cases = {
        "bad.ipynb": b"{not json",
        "binary.ipynb": bytes(range(256)),
        "deep.ipynb": b"[" * 100_000 + b"]" * 100_000,
        "list.ipynb": b"[1, 2]",
        "cells.ipynb": b'{"cells": [1, {"metadata": []}, {"metadata": {"nbgrader": 3}}]}',
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert notebook_grade_ids(tmp_path / "bad.ipynb") is None
    assert notebook_grade_ids(tmp_path / "binary.ipynb") is None
    assert notebook_grade_ids(tmp_path / "deep.ipynb") is None
    assert notebook_grade_ids(tmp_path / "list.ipynb") is None
    assert notebook_grade_ids(tmp_path / "cells.ipynb") == set()
    assert notebook_grade_ids(tmp_path / "missing.ipynb") is None
    assert notebook_grade_ids(tmp_path) is None
    v3 = nbformat.writes(
        nbformat.convert(nbformat.read(RELEASE / f"{ASSIGNMENT}.ipynb", as_version=4), 3),
        version=3,
    )
    (tmp_path / "v3.ipynb").write_text(v3)
    assert notebook_grade_ids(tmp_path / "v3.ipynb") == IDS[ASSIGNMENT]


def test_without_grade_ids_the_exact_name_still_wins(tmp_path):
    """The older call (names only) never reads the files: the exact name, else ambiguous."""
    _write(tmp_path / "ann", {"Untitled.ipynb": "blank", "ch05_hinges.ipynb": "real"})
    _write(tmp_path / "bob", {"Untitled.ipynb": "real"})
    _write(tmp_path / "cat", {"Untitled.ipynb": "real", "ch05_hinges-Copy1.ipynb": "real"})
    subs, warnings = find_submissions(tmp_path, ASSIGNMENT, NOTEBOOKS)
    assert {s.student: {k: Path(v).name for k, v in s.files.items()} for s in subs} == {
        "ann": {"ch05_hinges": "ch05_hinges.ipynb"},
        "bob": {"ch05_hinges": "Untitled.ipynb"},
        "cat": {},
    }
    assert warnings[0] == (
        "ann: graded ann/ch05_hinges.ipynb; "
        "ignored ann/Untitled.ipynb (another file is graded as ch05_hinges.ipynb)"
    )
    assert "cat: ambiguous_submission" in warnings[1]


def _solved_release(course: Path) -> bytes:
    """The course's released notebook with the solution's answers typed in (full marks)."""
    from autograder.release import release

    (released,) = release(course, [ASSIGNMENT], dest="release")
    src = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: "\n".join(
            line
            for line in c.source.splitlines()
            if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
        )
        for c in src.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = nbformat.read(released / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nbformat.writes(nb).encode()


@pytest.mark.slow
def test_grade_takes_the_right_notebook_and_reports_ambiguity(tmp_path):
    """A real batch: the notebook beside an Untitled gets full marks; two copies are not graded."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_autograder import read_csv, require_sandbox

    from autograder.grade import grade

    require_sandbox()
    course = tmp_path / "course"
    shutil.copytree(COURSE / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    solved = _solved_release(course)
    incoming = tmp_path / "incoming"
    _write(incoming / "ann", {"Untitled.ipynb": "blank"})
    (incoming / "ann" / "ch05_hinges.ipynb").write_bytes(solved)
    (incoming / "bob").mkdir()
    (incoming / "bob" / "ch05_hinges-Copy1.ipynb").write_bytes(solved)
    (incoming / "bob" / "ch05_hinges (2).ipynb").write_bytes(solved)
    run = grade(course, ASSIGNMENT, incoming, workers=1, progress=False)
    results = {r["student"]: r for r in run.results}
    ann, bob = results["ann"], results["bob"]
    assert ann["status"] == "ok" and ann["reason"] == "ran to the end without errors", ann
    assert ann["score"] == ann["max_score"] > 0
    assert bob["status"] == "ambiguous_submission" and bob["score"] == 0.0
    assert bob["max_score"] == ann["max_score"]
    rows = read_csv(run.out / "grades.csv")
    assert rows["ann"]["status"] == "ok" and float(rows["ann"]["score"]) == ann["max_score"]
    assert rows["bob"]["status"] == "ambiguous_submission" and float(rows["bob"]["score"]) == 0
    assert "ch05_hinges-Copy1.ipynb" in rows["bob"]["reason"]
    assert "ch05_hinges (2).ipynb" in rows["bob"]["reason"]
    assert any(
        w.startswith("ann: graded ann/ch05_hinges.ipynb; ignored ann/Untitled.ipynb")
        for w in run.warnings
    )
    assert any(
        "ch05_hinges-Copy1.ipynb" in w and "ch05_hinges (2).ipynb" in w for w in run.warnings
    )
    # Graded again unchanged: both come from the journal, the ambiguous one too.
    again = grade(course, ASSIGNMENT, incoming, workers=1, progress=False)
    assert sorted(again.skipped) == ["ann", "bob"]
    assert read_csv(again.out / "grades.csv") == rows
    assert sorted(rows) == ["ann", "bob"]


def test_names_in_any_script_stay_apart(tmp_path):
    """Two Moodle folders named in Chinese are two students; accents are kept."""
    for name in ("李华", "王芳", "José García", "Jose Garcia"):
        _write(tmp_path / f"{name}_1234_assignsubmission_file_", {f"{ASSIGNMENT}.ipynb": "real"})
    found, _, _, warnings = _find(tmp_path)
    assert sorted(found) == sorted(["李华", "王芳", "José_García", "Jose_Garcia"]), warnings
    assert student_id(" 李 华/../") == "李_华"
    assert student_id("../..") == "unknown"
