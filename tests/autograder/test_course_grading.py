"""Every chapter's graded notebook, graded end to end as an instructor would grade a class.

For each assignment a small class hands in: the solution (``correct``), the untouched
release (``blank``), the first exercise solved and the rest left as stubs (``mixed``),
everything solved but one exercise holding a plausible slip from the mutation tests
(``wrong``), a file that is not JSON (``broken``) and a folder with an
``Untitled.ipynb`` beside the real notebook (``two_notebooks``). The class is graded by
``autograder.grade.grade`` in the sandbox, and what the students receive is checked:
the scores, a feedback page for every graded student that lists every graded cell,
no hidden-test statement on any page, and reasons that name the graded cells.
"""

from __future__ import annotations

import ast
import csv
import html
import re
import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, assignments
from test_autograder import require_sandbox

from autograder.mutants import mutants_of_cell, visible_test_helpers
from autograder.mutation import load_accepted

CODE_SLIPS = ("sign", "off_by_one", "boundary", "axis", "exact")
TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"[^\W\d]\w*|\d[\w.]*|\S")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _answers(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and _meta(c).get("solution")]


def _graded(nb) -> list:
    return [c for c in nb.cells if _meta(c).get("grade") and not _meta(c).get("solution")]


def _owned_points(nb, answer_id: str) -> float:
    """Points of the graded cells between an answer cell and the next answer cell."""
    owner, points = None, 0.0
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            owner = meta.get("grade_id")
        elif meta.get("grade") and owner == answer_id:
            points += float(meta.get("points", 0))
    return points


def _student_notebook(release, answers: dict[str, str]):
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _tokens(text: str) -> str:
    return " " + " ".join(WORD.findall(text)) + " "


def _statement(code: str, node: ast.AST) -> str:
    """A simple statement's code; a compound one's header only (its body is walked too)."""
    if not isinstance(node, ast.stmt):
        return ""
    segment = ast.get_source_segment(code, node) or ""
    return segment.splitlines()[0] if hasattr(node, "body") else segment


def hidden_statements(source, *shown_nbs) -> list[str]:
    """Each statement of every hidden block, as tokens, unless the given notebooks show it.

    What the student sees anyway (the release, their own answers) is no secret.
    """
    shown = _tokens("\n".join(c.source for nb in shown_nbs for c in nb.cells))
    out = []
    for cell in source.cells:
        lines, inside, block = cell.source.splitlines(), False, []
        for line in lines + ["### END HIDDEN TESTS"]:
            if "BEGIN HIDDEN TESTS" in line:
                inside, block = True, []
            elif "END HIDDEN TESTS" in line and inside:
                inside = False
                code = textwrap.dedent("\n".join(block))
                try:
                    parts = [_statement(code, n) for n in ast.walk(ast.parse(code))]
                except SyntaxError:
                    parts = block
                for part in parts:
                    toks = _tokens(part)
                    if len(toks.split()) >= 4 and toks not in shown:
                        out.append(toks)
            elif inside:
                block.append(line)
    return out


def _page_text(page: Path) -> str:
    return _tokens(html.unescape(TAG.sub(" ", page.read_text(encoding="utf-8"))))


def _first_slip(source, release) -> dict[str, str]:
    """The first code slip, in notebook order, that the mutation tests require to be killed.

    Returned as {answer cell id: the cell with the slip}; answer cells with no code slip
    (a solution that only calls library functions) are passed over.
    """
    accepted = load_accepted(ROOT / "benchmarks" / "mutation_accepted.toml")
    stubs = {_meta(c)["grade_id"]: c.source for c in _answers(release)}
    helpers = visible_test_helpers(release)
    for cell in _answers(source):
        gid = _meta(cell)["grade_id"]
        for m in mutants_of_cell(gid, cell.source, stubs[gid], helpers):
            if m.kind in CODE_SLIPS and m.key not in accepted:
                return {gid: m.source}
    pytest.fail("no code mutant of any answer cell to hand in as a wrong answer")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", assignments())
def test_a_class_of_the_chapter_is_graded_and_every_student_gets_feedback(assignment, tmp_path):
    require_sandbox()
    from autograder.grade import grade

    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    incoming = tmp_path / "incoming"
    (src_path,) = sorted((ROOT / "solutions" / assignment).glob("*.ipynb"))
    source = nbformat.read(src_path, as_version=4)
    release = nbformat.read(ROOT / "exercises" / assignment / src_path.name, as_version=4)
    answers = {_meta(c)["grade_id"]: c.source for c in _answers(source)}
    first = _answers(source)[0]
    first_id = _meta(first)["grade_id"]
    max_score = sum(float(_meta(c).get("points", 0)) for c in _graded(source))
    notebooks = {
        "correct": _student_notebook(release, answers),
        "blank": _student_notebook(release, {}),
        "mixed": _student_notebook(release, {first_id: answers[first_id]}),
        "wrong": _student_notebook(release, {**answers, **_first_slip(source, release)}),
        "two_notebooks": _student_notebook(release, answers),
    }
    for student, nb in notebooks.items():
        (incoming / student).mkdir(parents=True)
        nbformat.write(nb, incoming / student / src_path.name)
    nbformat.write(nbformat.v4.new_notebook(), incoming / "two_notebooks" / "Untitled.ipynb")
    (incoming / "broken").mkdir()
    (incoming / "broken" / src_path.name).write_text('{"cells": [')

    run = grade(course, assignment, incoming, workers=2, progress=False)
    rows = {r["student"]: r for r in csv.DictReader(open(run.out / "grades.csv"))}
    results = {r["student"]: r for r in run.results}
    assert sorted(rows) == sorted([*notebooks, "broken"]), run.warnings

    def score(student: str) -> float:
        return float(rows[student]["score"])

    for student in ("correct", "two_notebooks"):
        assert rows[student]["status"] == "ok", rows[student]
        assert score(student) == max_score > 0, rows[student]
    assert score("blank") == 0, rows["blank"]
    assert score("mixed") == _owned_points(source, first_id) > 0, rows["mixed"]
    assert 0 <= score("wrong") < max_score, rows["wrong"]
    assert rows["broken"]["status"] == "invalid_notebook" and score("broken") == 0
    assert "JSON" in rows["broken"]["reason"], rows["broken"]

    graded_ids = [_meta(c)["grade_id"] for c in _graded(source)]
    for student in ("blank", "mixed", "wrong"):
        named = [g for g in graded_ids if g in rows[student]["reason"]]
        assert named, f"{student}'s reason names no graded cell: {rows[student]['reason']}"

    assert hidden_statements(source, release), f"{assignment} has no hidden statement"
    for student, nb in notebooks.items():
        secrets = hidden_statements(source, release, nb)
        pages = results[student]["feedback"]
        assert pages, f"{student} got no feedback page: {results[student]}"
        page = run.out / pages[0]
        assert page.exists(), page
        text = _page_text(page)
        leaked = [s.strip() for s in secrets if s in text]
        assert not leaked, f"{student}'s feedback shows hidden test code: {leaked[:3]}"
        missing = [g for g in graded_ids if g not in page.read_text(encoding="utf-8")]
        assert not missing, f"{student}'s feedback does not list the graded cells {missing}"
    wrong_page = (run.out / results["wrong"]["feedback"][0]).read_text(encoding="utf-8")
    assert re.search(r"expected", wrong_page, re.IGNORECASE), "the wrong answer's page says nothing"
