"""`autograder gradescope`: the zip's own run_autograder, run here in a Gradescope layout.

The zip of a course assignment is built and unpacked into ``ROOT/source`` of a
temporary folder laid out as Gradescope's ``/autograder`` (``submission/``,
``results/``); its ``run_autograder`` runs with this machine's venv (setup.sh is only
checked, never run). Each results.json is validated against the JSON Schema written
from Gradescope's specification (autograder/gradescope_results.schema.json), and must
show no hidden test statement.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest
from conftest import ROOT
from test_autograder import require_sandbox
from test_course_grading import (
    _answers,
    _first_slip,
    _graded,
    _meta,
    _owned_points,
    _student_notebook,
    _tokens,
    hidden_statements,
)

from autograder.gradescope import SCHEMA, build, torch_pin

ASSIGNMENT = "ch05_hinges"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory) -> Path:
    return build(ROOT, ASSIGNMENT, tmp_path_factory.mktemp("zip") / "autograder.zip")


@pytest.fixture(scope="module")
def notebooks():
    source = nbformat.read(ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    return source, release


def validate(data: dict) -> None:
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))


def run_zip(zip_path: Path, tmp: Path, files: dict[str, str], **env: str) -> dict:
    """Lay out ``tmp`` as Gradescope's /autograder, run the zip's run_autograder, read results."""
    root = tmp / "autograder"
    for sub in ("source", "submission", "results"):
        (root / sub).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    run_script = root / "run_autograder"
    shutil.copy(root / "source" / "run_autograder", run_script)
    run_script.chmod(run_script.stat().st_mode | stat.S_IXUSR)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    environ = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "AUTOGRADER_PYTHON": sys.executable,
        **env,
    }
    proc = subprocess.run(
        [str(run_script)], env=environ, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = root / "results" / "results.json"
    assert results.exists(), proc.stderr[-2000:]
    data = json.loads(results.read_text())
    validate(data)
    return data


def test_the_zip_holds_setup_run_autograder_and_only_what_grading_needs(zip_path):
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        setup = zf.read("setup.sh").decode()
        run_script = zf.read("run_autograder").decode()
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert "setup.sh" in names and "run_autograder" in names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert f"course/solutions/{ASSIGNMENT}/{NOTEBOOK}" in names
    assert "course/autograder/gradescope.py" in names and "course/pyproject.toml" in names
    assert "course/nbgrader_config.py" in names and "course/gradescope.json" in names
    assert not [n for n in names if n.startswith("course/exercises/")]
    others = [n for n in names if "/solutions/" in n and f"/solutions/{ASSIGNMENT}/" not in n]
    assert not others, others
    assert not [n for n in names if "__pycache__" in n]
    pin = torch_pin(ROOT)
    assert pin.startswith("torch==") and pin in setup
    assert "download.pytorch.org/whl/cpu" in setup
    assert "bubblewrap" in setup and "util-linux" in setup  # bwrap and setpriv
    for text in (setup, run_script):
        checked = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    config = json.loads(zipfile.ZipFile(zip_path).read("course/gradescope.json"))
    assert config["assignment"] == ASSIGNMENT and not config["unsafe"]


def test_the_cli_writes_the_zip(tmp_path):
    out = tmp_path / "gs.zip"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "--course", str(ROOT), "gradescope"]
        + [ASSIGNMENT, "-o", str(out), "--cell-timeout", "30"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads(zipfile.ZipFile(out).read("course/gradescope.json"))
    assert config["limits"]["cell_timeout"] == 30
    missing = subprocess.run(
        [sys.executable, "-m", "autograder", "--course", str(ROOT), "gradescope"]
        + ["no_such_assignment", "-o", str(tmp_path / "x.zip")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no_such_assignment" in missing.stderr


def test_a_grader_that_cannot_start_still_writes_results(zip_path, tmp_path):
    data = run_zip(zip_path, tmp_path, {NOTEBOOK: "{}"}, AUTOGRADER_PYTHON="/bin/false")
    assert data["score"] == 0 and "Grading failed" in data["output"]


def _check_no_hidden(data: dict, source, release, nb=None) -> None:
    shown = (release,) + ((nb,) if nb is not None else ())
    secrets = hidden_statements(source, *shown)
    assert secrets
    text = _tokens(json.dumps(data, ensure_ascii=False).replace("\\n", "\n"))
    leaked = [s.strip() for s in secrets if s in text]
    assert not leaked, f"results.json shows hidden test code: {leaked[:3]}"


@pytest.mark.slow
def test_correct_and_wrong_submissions(zip_path, notebooks, tmp_path):
    require_sandbox()
    source, release = notebooks
    answers = {_meta(c)["grade_id"]: c.source for c in _answers(source)}
    graded = [_meta(c)["grade_id"] for c in _graded(source)]
    max_score = sum(float(_meta(c).get("points", 0)) for c in _graded(source))

    correct = _student_notebook(release, answers)
    data = run_zip(zip_path, tmp_path / "correct", {NOTEBOOK: nbformat.writes(correct)})
    assert data["score"] == max_score > 0, data["output"]
    assert [t["name"] for t in data["tests"]] == graded
    assert all(t["score"] == t["max_score"] and t["output"] == "passed" for t in data["tests"])
    assert all(t["visibility"] == "after_published" for t in data["tests"])  # hidden tests
    assert data["output"].startswith("Status: ok")
    assert isinstance(data["execution_time"], int)
    _check_no_hidden(data, source, release, correct)

    wrong = _student_notebook(release, {**answers, **_first_slip(source, release)})
    data = run_zip(zip_path, tmp_path / "wrong", {NOTEBOOK: nbformat.writes(wrong)})
    assert 0 < data["score"] < max_score, data["output"]
    assert data["score"] == sum(t["score"] for t in data["tests"])
    failed = [t for t in data["tests"] if t["score"] < t["max_score"]]
    assert failed and all(t["status"] == "failed" for t in failed)
    # Those cells have hidden tests: the overall output, shown at once, leaves them out.
    assert not [t["name"] for t in failed if t["name"] in data["output"]], data["output"]
    said = " ".join(t["output"] for t in failed).lower()
    assert "expected" in said and "got" in said, failed
    _check_no_hidden(data, source, release, wrong)


BROKEN = {
    "no_notebook": ("invalid_notebook", "no ch05_hinges.ipynb"),
    "two_notebooks": ("ambiguous_submission", "Untitled.ipynb"),
    "invalid_json": ("invalid_notebook", "JSON"),
    "kernel_dies": ("kernel_died", ""),
    "timeout": ("timeout", "time limit"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_submission_gets_zero_and_the_reason(zip_path, notebooks, tmp_path, kind):
    require_sandbox()
    source, release = notebooks
    answers = {_meta(c)["grade_id"]: c.source for c in _answers(source)}
    first = _meta(_answers(source)[0])["grade_id"]
    env: dict[str, str] = {}
    nb = None
    if kind == "no_notebook":
        files = {"notes.txt": "I forgot the notebook\n"}
    elif kind == "two_notebooks":
        text = nbformat.writes(_student_notebook(release, answers))
        files = {"Untitled.ipynb": text, "Untitled1.ipynb": text}
    elif kind == "invalid_json":
        files = {NOTEBOOK: '{"cells": ['}
    elif kind == "kernel_dies":
        nb = _student_notebook(release, {**answers, first: "import os\nos._exit(1)\n"})
        files = {NOTEBOOK: nbformat.writes(nb)}
    else:
        nb = _student_notebook(release, {**answers, first: "while True:\n    pass\n"})
        files = {NOTEBOOK: nbformat.writes(nb)}
        env["AUTOGRADER_CELL_TIMEOUT"] = "3"
    data = run_zip(zip_path, tmp_path, files, **env)
    status, said = BROKEN[kind]
    assert data["output"].startswith(f"Status: {status}\n"), data["output"]
    assert said in data["output"], data["output"]
    if kind == "timeout":
        # As in `autograder grade`: the cell is interrupted and the notebook goes on, so
        # only the tests of the looping answer lose their points.
        max_score = sum(float(_meta(c).get("points", 0)) for c in _graded(source))
        assert data["score"] <= max_score - _owned_points(source, first), data
        assert data["score"] == sum(t["score"] for t in data["tests"])
    else:
        assert data["score"] == 0, data
        assert all(t["score"] == 0 for t in data["tests"]), data["tests"]
    assert len(data["tests"]) == len(_graded(source))
    _check_no_hidden(data, source, release, nb)


@pytest.mark.slow
def test_a_cell_without_hidden_tests_is_visible_at_once(tmp_path):
    require_sandbox()
    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    import builders

    course = builders.make_course(tmp_path / "course")
    release = builders.released(course)
    zip_file = build(course, builders.ASSIGNMENT, tmp_path / "ps1.zip")
    nb = builders.answered(release, double="def double(x):\n    return 3 * x")
    data = run_zip(zip_file, tmp_path / "run", {f"{builders.NOTEBOOK}.ipynb": nbformat.writes(nb)})
    tests = {t["name"]: t for t in data["tests"]}
    assert list(tests) == ["square_works", "double_works"]
    assert tests["square_works"]["visibility"] == "after_published"
    assert tests["square_works"]["score"] == 3 and tests["square_works"]["output"] == "passed"
    assert tests["double_works"]["visibility"] == "visible"
    assert tests["double_works"]["score"] == 0 and tests["double_works"]["status"] == "failed"
    assert tests["double_works"]["output"] == "AssertionError: double(4) should be 8"
    assert data["score"] == 3
    assert "graded cells failed: double_works" in data["output"]
    assert builders.HIDDEN_MARK not in json.dumps(data)
