"""Mutation testing of the graded notebooks: every plausible wrong answer loses points."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, assignments

from autograder.mutants import mutants_of_cell, notebook_mutants, visible_test_helpers
from autograder.mutation import defined_names, load_accepted, markdown, run_notebook

ACCEPTED_FILE = ROOT / "benchmarks" / "mutation_accepted.toml"
NEVER_ACCEPTABLE = {"stub", "test_helper", "hardcode"}

ANSWER = '''def clip_sum(x, limit=2):
    """Sum of x along its rows, clipped at limit."""
    ### BEGIN SOLUTION
    total = np.sum(x, axis=1)
    if np.allclose(total, 0):
        return total
    return np.where(total <= limit, total, limit - 1e-9)
    ### END SOLUTION
'''
STUB = '''def clip_sum(x, limit=2):
    """Sum of x along its rows, clipped at limit."""
    raise NotImplementedError()
'''


def _changes(mutants, kind):
    return sorted(m.after for m in mutants if m.kind == kind)


def test_mutants_change_only_the_solution_one_slip_at_a_time():
    ms = mutants_of_cell("clip", ANSWER, STUB, {})
    assert _changes(ms, "axis") == [
        "total = np.sum(x)",
        "total = np.sum(x, axis=0)",
    ]
    assert "return np.where((total < limit), total, limit - 1e-9)" in _changes(ms, "boundary")
    assert "return np.where(total <= limit, total, (limit + 1e-09))" in _changes(ms, "sign")
    assert "if np.array_equal(total, 0):" in _changes(ms, "exact")
    assert "return np.where(total <= limit, total, limit - 0.0)" in _changes(ms, "exact")
    # The default argument and the docstring are outside the solution: never mutated.
    assert not [m for m in ms if "limit=" in m.after or "Sum of" in m.after]
    # Every mutant is one change that still parses, and no two give the same code.
    sources = [m.source for m in ms if not m.wrapper]
    assert len(sources) == len(set(sources))
    for m in ms:
        compile(m.source, m.key, "exec")
    kinds = {m.kind for m in ms}
    assert {"stub", "list", "hardcode"} <= kinds
    assert next(m for m in ms if m.kind == "stub").source == STUB


def test_test_helpers_with_a_fitting_arity_become_mutants():
    release = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell(
        "def _two(a, b):\n    return a\n\ndef _three(a, b, c):\n    return a\n"
        "def _flexible(*args):\n    return 0\n"
    )
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1}
    release.cells = [nbformat.v4.new_code_cell("def _not_a_test(a):\n    pass"), test]
    helpers = visible_test_helpers(release)
    assert set(helpers) == {"_two", "_three", "_flexible"}
    ms = mutants_of_cell("clip", ANSWER, STUB, helpers)
    delegated = {m.after for m in ms if m.kind == "test_helper"}
    assert delegated == {"clip_sum returns _two(...)", "clip_sum returns _flexible(...)"}


@pytest.mark.parametrize("name", assignments())
def test_every_answer_cell_of_the_course_has_mutants(name):
    for src in sorted((ROOT / "solutions" / name).glob("*.ipynb")):
        source = nbformat.read(src, as_version=4)
        release = nbformat.read(ROOT / "exercises" / name / src.name, as_version=4)
        ms = notebook_mutants(source, release)
        answers = {
            c.metadata["nbgrader"]["grade_id"]
            for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"
        }
        assert answers and answers == {m.exercise for m in ms if m.kind == "stub"}


def test_accepted_survivors_give_a_reason_and_never_excuse_an_oracle():
    accepted = load_accepted(ACCEPTED_FILE)
    for key in accepted:
        kind = key.split(" | ")[1]
        assert kind not in NEVER_ACCEPTABLE, f"{key}: a {kind} mutant must always be killed"


@pytest.mark.slow
@pytest.mark.parametrize("name", assignments())
def test_every_mutant_of_the_course_notebooks_loses_points(name, tmp_path):
    """Run every mutant against the hidden tests: each is killed or its survival is explained."""
    accepted = load_accepted(ACCEPTED_FILE)
    for src in sorted((ROOT / "solutions" / name).glob("*.ipynb")):
        report = run_notebook(src, ROOT / "exercises" / name / src.name, accepted)
        assert not report.baseline_failures, f"the solution fails: {report.baseline_failures}"
        broken = [f"{o.key}: {o.message}" for o in report.outcomes if o.status == "broken"]
        assert not broken, "mutants that could not run:\n" + "\n".join(broken)
        assert report.count("killed") > 0
        survivors = "\n".join(o.key for o in report.unexplained)
        assert not survivors, f"{name}: these wrong answers keep full marks:\n{survivors}"
        stale = {
            k for k in accepted if k.startswith(tuple(f"{o.exercise} |" for o in report.outcomes))
        } - {o.key for o in report.outcomes if o.status == "survived"}
        assert not stale, f"accepted survivors that no longer survive (remove them): {stale}"
        text = markdown([report], "cmd")
        assert f"| {name} | {len(report.outcomes)} |" in text
        Path(tmp_path / "report.md").write_text(text)


def test_the_names_an_answer_cell_binds_are_found():
    source = (
        "import numpy as np\nfrom math import pi as PI\nanswer = 2 * x\nA, (b, c) = 1, (2, 3)\n"
        "total: int = 0\ndef f():\n    inner = 1\nclass K:\n    pass\nfor i in range(3):\n"
        "    pass\nwith open('x') as fh:\n    pass\n"
    )
    assert defined_names(source) == {
        "np",
        "PI",
        "answer",
        "A",
        "b",
        "c",
        "total",
        "f",
        "K",
        "i",
        "fh",
    }
