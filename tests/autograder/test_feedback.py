"""Feedback pages: hidden tests judged per statement, scrubbed line by line, always accounted for.

The fast tests read the course's own graded notebooks (solutions/ and their release in
exercises/) only for their structure: the hidden blocks and the grade ids, never a
particular test's text. The slow ones grade a small class of two chapters in the
sandbox and read what the students receive.
"""

from __future__ import annotations

import copy
import csv
import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, assignments
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_autograder import require_sandbox

from autograder.checks import read_notebook
from autograder.feedback import (
    NOTE,
    hidden_blocks,
    scrub_notebook,
    secrets,
    statements,
    summary_cell,
)
from autograder.status import STATUS_ORDER, classify
from autograder.testcode import uses_test_code

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def _nbg(gid: str, *, grade=False, solution=False, points=None) -> dict:
    """nbgrader metadata as a course notebook has it: every cell but the answers locked."""
    import builders  # tests/autograder/fixtures, put on the path by test_autograder

    return builders._nbg(gid, grade=grade, solution=solution, locked=not solution, points=points)


def _pair(name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    (src,) = sorted((ROOT / "solutions" / name).glob("*.ipynb"))
    return (
        nbformat.read(src, as_version=4),
        nbformat.read(ROOT / "exercises" / name / src.name, as_version=4),
    )


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


# -- a small notebook shaped like the course's: a visible helper, hidden calls of it -------

HELPER = """def _check_masks(model, X, label):
    got = dead_mask(model, X)
    assert got == model(X), f"{label}: expected {model(X)}, got {got}"
"""
HIDDEN_CALL = """_check_masks(
    _planted(int(_rng.integers(1e6)), _in, [5, 7], n_dead=4),
    _X,
    f"random network {_widths}",
)"""


def _source() -> nbformat.NotebookNode:
    test = (
        f"{HELPER}\n\n_check_masks(_tiny, _X1, 'the tiny network')\n{BEGIN}\n"
        "_rng = np.random.default_rng(4_040_417)\n"
        "# planted units, random widths\n"
        f"for _t in range(6):\n    _X = _rng.normal(size=(5, 2))\n"
        + "\n".join("    " + ln for ln in HIDDEN_CALL.splitlines())
        + f"\n{END}\nprint('done')"
    )
    return new_notebook(
        cells=[
            new_markdown_cell("# Dead units", metadata=_nbg("intro")),
            new_code_cell("import numpy as np\n_tiny = lambda X: X", metadata=_nbg("imports")),
            new_code_cell(
                "def dead_mask(model, X):\n    ### BEGIN SOLUTION\n    return model(X)\n"
                "    ### END SOLUTION",
                metadata=_nbg("dead_mask", solution=True),
            ),
            new_code_cell(test, metadata=_nbg("dead_mask_works", grade=True, points=2)),
        ]
    )


def _release(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    rel = copy.deepcopy(source)
    for cell in rel.cells:
        if BEGIN in cell.source:
            lines = cell.source.splitlines()
            cell.source = "\n".join(lines[: lines.index(BEGIN)] + lines[lines.index(END) + 1 :])
        if "### BEGIN SOLUTION" in cell.source:
            cell.source = "def dead_mask(model, X):\n    raise NotImplementedError()"
    return rel


def test_a_hidden_statement_is_a_logical_line_without_comments():
    code = (
        "x = 1  # one\n"
        + HIDDEN_CALL
        + "\nfor _t in range(6):\n    # body\n    y = f(\n        _t)\n"
    )
    got = statements(code)
    assert got[0] == "x = 1"
    assert got[1] == HIDDEN_CALL  # one statement over five lines
    assert got[2:] == ["for _t in range(6):", "y = f(\n        _t)"]
    # A block that is not complete code falls back to its lines.
    assert statements("f(\n  1,") == ["f(", "1,"]


def test_a_visible_helper_does_not_make_its_hidden_calls_look_leaked():
    source = _source()
    secret = secrets(source, _release(source))
    keys = set(secret.statements.values())
    assert any(s.startswith("_check_masks(\n") for s in keys)
    assert "_rng = np.random.default_rng(4_040_417)" in keys
    # The visible definition and the visible call are not secrets, even though the hidden
    # call starts with the same characters as the `def` line does after its keyword.
    page = _pre(HELPER + "\n_check_masks(_tiny, _X1, 'the tiny network')")
    assert secret.leaks(page) == []
    # Each hidden statement, shown on its own, is caught.
    for stmt in secret.statements.values():
        assert secret.leaks(_pre(stmt)), stmt
    # The reverse: a hidden definition is not made visible by visible calls of it.
    hidden_def = copy.deepcopy(source)
    cell = hidden_def.cells[3]
    cell.source = cell.source.replace(HELPER, "").replace(BEGIN, BEGIN + "\n" + HELPER, 1)
    secret = secrets(hidden_def, _release(hidden_def))
    assert "def _check_masks(model, X, label):" in secret.statements.values()
    assert secret.leaks(_pre("_check_masks(_tiny, _X1, 'the tiny network')")) == []
    assert secret.leaks(_pre(HELPER))


def test_what_the_student_wrote_is_not_a_secret():
    source = _source()
    release = _release(source)
    assert "for _t in range(6):" in secrets(source, release).statements.values()
    answered = copy.deepcopy(release)
    answered.cells[2].source = "def dead_mask(model, X):\n    for _t in range(6):\n        pass"
    assert "for _t in range(6):" not in secrets(source, release, answered).statements.values()


def _traceback(frames: list[tuple[int, int, list[tuple[int, str]]]]) -> list[str]:
    """IPython-style traceback entries: (execution count, failing line, [(line, code)])."""
    out = [
        "\x1b[31m" + "-" * 75 + "\x1b[39m",
        "AssertionError    Traceback (most recent call last)",
    ]
    for count, at, lines in frames:
        text = f"\x1b[36mCell\x1b[39m\x1b[32m In[{count}]\x1b[39m\x1b[32m, line {at}\x1b[39m\n"
        for n, code in lines:
            gutter = f"\x1b[32m----> \x1b[39m\x1b[32m{n}\x1b[39m" if n == at else f"{n:>7}"
            text += f"{gutter} {code}\n"
        out.append(text)
    out.append("\x1b[31mAssertionError\x1b[39m: random network [5, 7]: expected 3, got 4")
    return out


def _graded_with_error(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    graded = copy.deepcopy(source)
    cell = graded.cells[3]
    cell.execution_count = 4
    rows = cell.source.splitlines()
    at = next(i for i, ln in enumerate(rows) if ln.strip() == "_check_masks(") + 1
    # IPython cuts the context: the call's last lines are not shown.
    shown = [(n, rows[n - 1]) for n in range(at - 6, at + 3)]
    helper = [(n, HELPER.splitlines()[n - 1]) for n in (1, 2, 3)]
    cell.outputs = [
        new_output(
            "error",
            ename="AssertionError",
            evalue="random network [5, 7]: expected 3, got 4",
            traceback=_traceback([(4, at, shown), (4, 3, helper)]),
        ),
        new_output("stream", name="stdout", text="checking\n" + HIDDEN_CALL + "\nchecked\n"),
    ]
    return graded


def test_scrubbing_keeps_the_visible_lines_of_a_traceback():
    source = _source()
    release = _release(source)
    graded = _graded_with_error(source)
    secret = secrets(source, release, graded)
    scrub_notebook(graded, secret)
    cell = graded.cells[3]
    assert BEGIN not in cell.source and "4_040_417" not in cell.source
    assert f"# {NOTE}" in cell.source and "print('done')" in cell.source
    frames = [re.sub(r"\x1b\[[0-9;]*m", "", t) for t in cell.outputs[0].traceback]
    hidden_frame, helper_frame = frames[2], frames[3]
    # Every line of the hidden block is gone, the cut-off call included; one note stands for them.
    assert "_planted" not in hidden_frame and "_rng" not in hidden_frame
    assert not [ln for ln in hidden_frame.splitlines() if ln.endswith("_check_masks(")]
    assert hidden_frame.count(NOTE) == 1
    assert "_check_masks(_tiny, _X1, 'the tiny network')" in hidden_frame
    # The visible helper's frame and the message stay as they were.
    assert "def _check_masks(model, X, label):" in helper_frame
    assert 'assert got == model(X), f"{label}: expected {model(X)}, got {got}"' in helper_frame
    assert frames[-1] == "AssertionError: random network [5, 7]: expected 3, got 4"
    assert cell.outputs[0].evalue == "random network [5, 7]: expected 3, got 4"
    # Printed hidden code goes (all its lines), the student's other prints stay.
    assert cell.outputs[1].text == f"checking\n{NOTE}\nchecked\n"
    assert secret.leaks(_pre("\n".join(frames) + cell.outputs[1].text + cell.source)) == []


def test_a_page_is_checked_on_its_text_and_on_its_markup():
    source = _source()
    secret = secrets(source, _release(source))
    stmt = "_rng = np.random.default_rng(4_040_417)"
    spans = "".join(f'<span class="n">{html.escape(t)}</span>' for t in stmt.split(" "))
    assert secret.leaks(f"<pre>{spans}</pre>")
    assert secret.leaks(f'<img alt="{html.escape(stmt)}">')
    # A traceback's gutter numbers between the lines of a hidden statement do not hide it.
    framed = "\n".join(f"{n:>7} {ln}" for n, ln in enumerate(HIDDEN_CALL.splitlines(), 10))
    assert secret.leaks(_pre(framed))
    # The markers count too.
    assert secret.leaks(_pre("     12 " + BEGIN))


@pytest.mark.parametrize("name", assignments())
def test_a_chapter_release_shows_no_secret_and_each_secret_is_caught(name):
    from nbconvert import HTMLExporter

    source, release = _pair(name)
    assert hidden_blocks(source), f"{name} has no hidden tests"
    secret = secrets(source, release)
    assert secret.statements, f"{name}: no hidden statement is a secret"
    as_text = "\n".join(c.source for c in release.cells)
    assert secret.leaks(_pre(as_text)) == []
    page, _ = HTMLExporter(template_name="classic").from_notebook_node(release)
    assert secret.leaks(page) == []
    for stmt in list(secret.statements.values()) + list(secret.lines.values()):
        assert secret.leaks(_pre(as_text + "\n" + stmt)), stmt


def test_a_message_that_shows_hidden_code_is_replaced_in_the_summary():
    source = _source()
    graded = _graded_with_error(source)
    secret = secrets(source, _release(source), graded)
    grades = {"dead_mask_works": {"auto_score": 0.0, "max_score": 2.0}}
    cell = summary_cell(graded, grades, secret)
    assert "dead_mask_works" in cell.source and "0 / 2" in cell.source
    assert "AssertionError: random network [5, 7]: expected 3, got 4" in cell.source
    graded.cells[3].outputs[0].evalue = "failed at _rng = np.random.default_rng(4_040_417)"
    cell = summary_cell(graded, grades, secret)
    assert "4_040_417" not in cell.source
    assert "AssertionError (its message showed hidden test code)" in cell.source
    graded.cells[3].outputs = []
    grades["dead_mask_works"]["auto_score"] = 2.0
    assert "passed" in summary_cell(graded, grades, secret).source


# -- uses_test_code -------------------------------------------------------------------------


def _answered(answer: str, extra: str | None = None) -> nbformat.NotebookNode:
    nb = _release(_source())
    nb.cells[2].source = answer
    if extra is not None:
        nb.cells.insert(3, new_code_cell(extra))
    return nb


@pytest.mark.parametrize(
    ("answer", "extra", "found"),
    [
        (
            "def dead_mask(model, X):\n    return _check_masks(model, X, 'x')",
            None,
            ["dead_mask calls _check_masks, defined by a test cell"],
        ),
        # Hidden definitions count as much as visible ones; values too.
        (
            "def dead_mask(model, X):\n    return _X if _rng else _check_masks",
            None,
            ["dead_mask uses _X, _check_masks, _rng, defined by test cells"],
        ),
        ("def dead_mask(model, X):\n    return _check_masks.__name__", None, "flagged"),
        # Imported by the tests (and everyone), defined by the release, or builtins: fine.
        ("def dead_mask(model, X):\n    return np.asarray(_tiny(X)) + len(X)", None, []),
        # Parameters and locals of the student's own function are not module names.
        ("def dead_mask(model, _X):\n    _rng = 3\n    return _X + _rng", None, []),
        # A name the student defines themselves (anywhere outside the tests) is theirs.
        (
            "def _check_masks(m, X, label):\n    return m(X)\n\n"
            "def dead_mask(model, X):\n    return _check_masks(model, X, '')",
            None,
            [],
        ),
        # ... unless it is a test's helper under another name, in a cell the student added.
        (
            "def dead_mask(model, X):\n    return _helper(model, X)",
            "_helper = _check_masks",
            ["cell 3 calls _check_masks, defined by a test cell"],
        ),
        # Code that does not parse is another problem, not this one.
        ("def dead_mask(model, X)\n    return _check_masks(model, X, '')", None, []),
        # IPython syntax is read as IPython reads it.
        (
            "%matplotlib inline\ndef dead_mask(model, X):\n    return _check_masks(model, X, '')",
            None,
            "flagged",
        ),
    ],
)
def test_uses_test_code_on_small_notebooks(answer, extra, found):
    source = _source()
    got = uses_test_code(_answered(answer, extra), source, _release(source))
    if found == "flagged":
        assert got and got[0].startswith("dead_mask calls _check_masks"), got
    else:
        assert got == found


@pytest.mark.parametrize("name", assignments())
def test_uses_test_code_never_flags_the_course_solution_or_its_release(name):
    source, release = _pair(name)
    assert uses_test_code(source, source, release) == []
    assert uses_test_code(release, source, release) == []


def test_uses_test_code_flags_a_course_answer_that_calls_a_test_helper():
    """In every chapter, an answer that calls a function a test cell defines is reported."""
    found = 0
    for name in assignments():
        source, release = _pair(name)
        helpers = []
        for cell in source.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                helpers += re.findall(r"^def (\w+)\(", cell.source, re.MULTILINE)
        shown = "\n".join(
            c.source for c in release.cells if not c.metadata.get("nbgrader", {}).get("grade")
        )
        helpers = [h for h in helpers if not re.search(rf"\b{h}\b", shown)]
        if not helpers:
            continue
        nb = copy.deepcopy(release)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        answer.source += f"\n\n_cheat = lambda *a: {helpers[0]}(*a)\n"
        got = uses_test_code(nb, source, release)
        gid = answer.metadata["nbgrader"]["grade_id"]
        assert got == [f"{gid} calls {helpers[0]}, defined by a test cell"], (name, got)
        found += 1
    assert found


def test_statuses_are_ordered():
    assert STATUS_ORDER[:2] == ["invalid_notebook", "ambiguous_submission"]
    assert STATUS_ORDER[-2:] == ["uses_test_code", "ok"]


def test_reason_names_every_failing_graded_cell_before_other_cells():
    def cell(gid, graded, ename=None, evalue=""):
        c = new_code_cell("x", metadata=_nbg(gid, grade=graded, points=1 if graded else None))
        if ename:
            c.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=[])]
        return c

    nb = new_notebook(
        cells=[
            cell("mask_try", False, "NotImplementedError"),
            cell("a_" + "very_long_grade_id_" * 4, True, "AssertionError", "expected 1, got 2"),
            cell("passes", True),
            cell("second", True, "ValueError", "bad"),
            cell("third", True, "GradingStopped", "this cell did not run"),
        ]
    )
    status, reason = classify([], {}, {"nb": nb})
    assert status == "ok"
    assert "more)" not in reason
    first = reason.index("a_very_long_grade_id_very_long_grade_id")
    assert "AssertionError: expected 1, got 2" in reason
    assert first < reason.index("second (ValueError: bad)") < reason.index("mask_try")
    assert "passes" not in reason and "third" not in reason
    status, reason = classify(
        [("uses_test_code", "dead_mask calls _f, defined by a test cell")], {}, {"nb": nb}
    )
    assert status == "uses_test_code"
    assert reason.startswith("dead_mask calls _f") and "second (ValueError: bad)" in reason


def test_a_truncated_notebook_names_where_its_json_stops():
    _, why = read_notebook(b'{"cells": [{"source": "abc')
    assert why.startswith("not valid JSON: Unterminated string starting at: line 1 column ")
    assert "at at" not in why


# -- the report and the command ---------------------------------------------------------------


def test_report_lists_withheld_feedback():
    from autograder.report import _html, _markdown, feedback_state

    assert feedback_state({"feedback": ["feedback/a/x/x.html"]}) == "published"
    assert feedback_state({"feedback": [], "status": "invalid_notebook"}).startswith("none")
    assert feedback_state({"feedback_status": "withheld: nbgrader made no page"}).startswith(
        "withheld"
    )
    # A journal from before the state was recorded: graded, yet no page, was a withheld page.
    assert feedback_state({"feedback": [], "status": "ok"}).startswith("withheld: no page")
    # Results made without grading (a crashed worker, an ambiguous hand-in) have none.
    assert feedback_state({"feedback": [], "status": "grader_error"}).startswith("none")
    assert feedback_state({"feedback": [], "status": "ambiguous_submission"}).startswith("none")
    stats = {
        "ps1": {
            "n": 2,
            "max": 4.0,
            "mean": 2.0,
            "scores": [4.0, 0.0],
            "questions": [],
            "statuses": {"ok": 2},
            "feedback": {"published": 1, "withheld": 1},
            "withheld": [("bob", "nbgrader made no page: boom")],
        }
    }
    md = _markdown(stats)
    assert "| withheld | 1 |" in md and "- bob: nbgrader made no page: boom" in md
    assert "bob: nbgrader made no page: boom" in _html(stats)


def test_a_cluster_result_removes_the_pages_it_did_not_publish(tmp_path):
    from autograder.runner_dask import _remove_unpublished

    folder = tmp_path / "feedback" / "ann" / "ps1"
    folder.mkdir(parents=True)
    for name in ("one", "two"):
        (folder / f"{name}.html").write_text("an older page")
    _remove_unpublished(
        tmp_path, {"student": "ann", "assignment": "ps1", "feedback": ["feedback/ann/ps1/one.html"]}
    )
    assert sorted(p.name for p in folder.iterdir()) == ["one.html"]
    _remove_unpublished(tmp_path, {"student": "ann", "assignment": "ps1", "feedback": []})
    assert not folder.exists()


def test_grade_exits_non_zero_when_feedback_was_withheld(monkeypatch, tmp_path, capsys):
    import autograder.grade
    from autograder import cli

    results = [
        {
            "student": "ann",
            "status": "ok",
            "feedback": ["f/ann/ps1/x.html"],
            "feedback_status": "published",
        },
        {
            "student": "bob",
            "status": "ok",
            "feedback": [],
            "feedback_status": "withheld: nbgrader made no page",
        },
    ]
    run = autograder.grade.GradeRun(out=tmp_path, db_url="sqlite://", results=results)
    monkeypatch.setattr(autograder.grade, "grade", lambda *a, **k: run)
    assert cli.main(["--course", str(tmp_path), "grade", "ps1", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "feedback withheld for bob: nbgrader made no page" in err
    assert "(1 student; withheld for 1: see the feedback column of grades.csv)" in out
    args = ["--course", str(tmp_path), "grade", "ps1", str(tmp_path), "--allow-missing-feedback"]
    assert cli.main(args) == 0
    capsys.readouterr()
    run.results = results[:1]
    assert cli.main(["--course", str(tmp_path), "grade", "ps1", str(tmp_path)]) == 0
    assert "withheld" not in capsys.readouterr().out


# -- end to end: a small class of two chapters, graded in the sandbox -------------------------

WRONG = {  # one answer cell of the solution made wrong, and the graded cell that must fail
    "ch04_dead_relu": ("revive", "fill_(0.1)", "fill_(-5.0)"),
    "ch01_linear_collapse": ("collapsed_rank_solution", "matrix_rank(W))", "matrix_rank(W)) + 1"),
}


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _class(name: str, folder: Path) -> dict[str, nbformat.NotebookNode]:
    source, release = _pair(name)
    answers = {
        _meta(c)["grade_id"]: "\n".join(
            ln
            for ln in c.source.splitlines()
            if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln
        )
        for c in source.cells
        if _meta(c).get("solution")
    }
    solved = copy.deepcopy(release)
    for cell in solved.cells:
        if _meta(cell).get("grade_id") in answers:
            cell.source = answers[_meta(cell)["grade_id"]]
    wrong = copy.deepcopy(solved)
    gid, old, new = WRONG[name]
    cell = next(c for c in wrong.cells if _meta(c).get("grade_id") == gid)
    assert old in cell.source, f"update WRONG[{name!r}]: the solution of {gid} changed"
    cell.source = cell.source.replace(old, new)
    students = {"solved": solved, "blank": copy.deepcopy(release), "wrong": wrong}
    folder.mkdir(parents=True)
    for student, nb in students.items():
        nbformat.write(nb, folder / f"{student}.ipynb")
    return students


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRONG))
def test_every_student_of_a_chapter_gets_a_safe_page_listing_every_graded_cell(name, tmp_path):
    from autograder.grade import grade

    require_sandbox()
    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / name, course / "solutions" / name)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    students = _class(name, tmp_path / "incoming")
    source, release = _pair(name)
    graded_ids = [
        _meta(c)["grade_id"]
        for c in source.cells
        if _meta(c).get("grade") and not _meta(c).get("solution")
    ]
    run = grade(course, name, tmp_path / "incoming", workers=2, progress=False)
    results = {r["student"]: r for r in run.results}
    with open(run.out / "grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(results) == sorted(students)
    assert rows["solved"]["score"] == rows["solved"]["max_score"]
    for student, submitted in students.items():
        r = results[student]
        assert r["feedback_status"] == "published" and rows[student]["feedback"] == "published", r
        (page_path,) = r["feedback"]
        page = (run.out / page_path).read_text(encoding="utf-8")
        leaks = secrets(source, release, submitted).leaks(page)
        assert leaks == [], f"{student}'s page shows hidden code: {leaks[:3]}"
        graded = nbformat.read(
            run.out / "autograded" / student / name / f"{name}.ipynb", as_version=4
        )
        summary = page[page.index('<table class="tex2jax_ignore">') :]
        summary = summary[: summary.index("</table>")]
        for cell in graded.cells:
            gid = _meta(cell).get("grade_id")
            if gid not in graded_ids:
                continue
            points = float(rows[student][gid])
            row = re.search(
                rf'<a href="#{gid}">{gid}</a></td><td>([^<]*)</td><td>([^<]*)</td>', summary
            )
            assert row, f"{student}: {gid} is not in the summary"
            assert row.group(1) == f"{points:g} / {float(_meta(cell)['points']):g}"
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                said = html.unescape(row.group(2))
                assert said.startswith(errors[0]["ename"]), (student, gid, said)
                assert " ".join(str(errors[0]["evalue"]).split())[:60] in said, (student, gid, said)
                assert gid in rows[student]["reason"], rows[student]
            else:
                assert row.group(2) == "passed"
    failing = [g for g in graded_ids if float(rows["wrong"][g]) == 0]
    assert failing and float(rows["wrong"]["score"]) < float(rows["wrong"]["max_score"])
    assert rows["wrong"]["reason"].startswith("ran to the end; graded cells failed: " + failing[0])
    page = (run.out / results["wrong"]["feedback"][0]).read_text(encoding="utf-8")
    assert re.search(
        rf"{failing[0]}</a></td><td>0 / [^<]*</td><td>AssertionError: [^<]*expected", page
    )


@pytest.mark.slow
def test_a_page_that_still_shows_hidden_code_is_made_bare_or_withheld(tmp_path, monkeypatch):
    """The worker's last resorts, with a leak check forced to refuse: never a silent gap."""
    import builders
    from builders import ASSIGNMENT, NOTEBOOK

    import autograder.feedback as fb
    from autograder.course import course_config, make_template, tool_env
    from autograder.sandbox import Limits, make_spec, write_kernel_spec
    from autograder.worker import Job, grade_one

    require_sandbox()
    tool_env()
    course = builders.make_course(tmp_path / "course")
    release_nb = builders.released(course)
    config = course_config(course)
    scratch, out, incoming = tmp_path / "scratch", tmp_path / "out", tmp_path / "incoming"
    for folder in (scratch, out, incoming):
        folder.mkdir()
    template = scratch / "template"
    make_template(course, ASSIGNMENT, template, config)
    spec = make_spec(Limits(), hide=[course, out, scratch, incoming])
    kernels = write_kernel_spec(spec, scratch / "spec")
    submitted = incoming / "wrong.ipynb"
    answer = "def square(x):\n    return x + x\n\nprint('OUT' + 'PUT-7')"
    nbformat.write(builders.answered(release_nb, square=answer), submitted)

    def job(student: str) -> Job:
        files = {NOTEBOOK: str(submitted)}
        return Job(
            student, ASSIGNMENT, files, str(template), str(kernels), str(scratch), str(out),
            Limits(), config,
        )  # fmt: skip

    real = fb.Secrets.leaks
    # Any page with a cell's output is refused: the page is made again without outputs.
    monkeypatch.setattr(
        fb.Secrets, "leaks", lambda self, page: ["x"] if "OUTPUT-7" in page else real(self, page)
    )
    result = grade_one(job("bare"))
    assert result["feedback_status"].startswith("published (without the cells' output"), result
    page = (out / result["feedback"][0]).read_text(encoding="utf-8")
    assert "OUTPUT-7" not in page
    assert "it showed hidden test code" in page
    assert "square_works</a></td><td>0 / 3</td><td>AssertionError: square" in page
    # Every page is refused: none is published, an older one is removed, the state says why.
    stale = out / "feedback" / "withheld" / ASSIGNMENT / f"{NOTEBOOK}.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("an older page")
    monkeypatch.setattr(fb.Secrets, "leaks", lambda self, page: ["x"])
    result = grade_one(job("withheld"))
    assert result["feedback"] == [] and not stale.parent.exists()
    assert result["feedback_status"] == (
        "withheld: the page showed 1 line(s) of hidden test code even without the cells' output"
    )
    assert result["status"] == "ok" and result["score"] == 1.0
    # A hand-in that cannot be graded has no page either: an older one goes.
    stale.parent.mkdir(parents=True)
    stale.write_text("an older page")
    submitted.write_text("")
    result = grade_one(job("withheld"))
    assert result["status"] == "invalid_notebook" and not stale.parent.exists()
    assert result["feedback_status"] == "none: no notebook was graded"
