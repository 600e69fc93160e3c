"""Every graded notebook: nbgrader validates it, the release is in sync, grading works both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, assignments, tool_env

ASSIGNMENTS = assignments()


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc


def notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def test_every_solution_has_a_release() -> None:
    assert ASSIGNMENTS, "no graded notebooks found under solutions/"
    released = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS, "exercises/ and solutions/ hold different assignments"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_validates(name: str) -> None:
    for nb in notebooks(ROOT / "solutions" / name):
        proc = nbgrader("validate", str(nb), cwd=ROOT)
        assert "Success! Your notebook passes all the tests." in proc.stdout, (
            proc.stdout + proc.stderr
        )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_fails_validation(name: str) -> None:
    for nb in notebooks(ROOT / "exercises" / name):
        proc = nbgrader("validate", "--invert", str(nb), cwd=ROOT)
        assert "Success! The notebook does not pass any tests." in proc.stdout, (
            proc.stdout + proc.stderr
        )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_exercises_match_a_fresh_release(name: str, tmp_path: Path) -> None:
    """exercises/ is generated: regenerating it from solutions/ must give no difference."""
    from autograder.release import release

    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / name, course / "solutions" / name)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    release(course, [name])
    for fresh in notebooks(course / "exercises" / name):
        committed = ROOT / "exercises" / name / fresh.name
        assert committed.exists(), f"{committed} is missing: run `make release`"
        assert json.loads(committed.read_text()) == json.loads(fresh.read_text()), (
            f"{committed} differs from a fresh release of solutions/: run `make release`"
        )


def _scores(course: Path, name: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = {student: gb.find_submission(name, student) for student in ("solver", "blank")}
        return {student: (sub.score, sub.max_score) for student, sub in subs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_grading_gives_full_marks_to_the_solution_and_zero_to_the_release(
    name: str, tmp_path: Path
) -> None:
    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / name, course / "source" / name)
    flags = [f"--CourseDirectory.root={course}", "--log-level=WARN"]
    proc = nbgrader("generate_assignment", name, "--force", *flags, cwd=course)
    assert proc.returncode == 0, proc.stderr
    for student, folder in (("solver", course / "source"), ("blank", course / "release")):
        dest = course / "submitted" / student / name
        dest.mkdir(parents=True)
        for nb in notebooks(folder / name):
            shutil.copy(nb, dest / nb.name)
    proc = nbgrader("autograde", name, "--create", *flags, cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scores = _scores(course, name)
    score, max_score = scores["solver"]
    assert max_score > 0
    assert score == max_score, f"solution scored {score}/{max_score}"
    assert scores["blank"][0] == 0, f"the unanswered release scored {scores['blank'][0]}"
