"""Fast checks of the autograder's pieces: finding submissions, checking cells, hiding tests."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

import builders  # noqa: E402

from autograder.checks import check_notebook  # noqa: E402
from autograder.collect import extract_zip, find_submissions  # noqa: E402
from autograder.feedback import leaked_lines, scrub_notebook, secrets  # noqa: E402


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def _found(root: Path, notebooks=("squares",)) -> dict[str, dict[str, str]]:
    subs, _ = find_submissions(root, "ps1", list(notebooks))
    return {s.student: {k: Path(v).name for k, v in s.files.items()} for s in subs}


def test_nbgrader_tree(tmp_path):
    _touch(tmp_path / "submitted" / "ann" / "ps1" / "squares.ipynb")
    _touch(tmp_path / "submitted" / "bob" / "ps1" / "squares.ipynb")
    (tmp_path / "submitted" / "bob" / "ps1" / "data.csv").write_text("1")
    _touch(tmp_path / "submitted" / "bob" / "ps1" / ".ipynb_checkpoints" / "x.ipynb")
    assert _found(tmp_path) == {
        "ann": {"squares": "squares.ipynb"},
        "bob": {"squares": "squares.ipynb", "data.csv": "data.csv"},
    }


@pytest.mark.parametrize(
    ("name", "student"),
    [
        ("ann.ipynb", "ann"),
        ("ann_squares.ipynb", "ann"),
        ("squares-ann.ipynb", "ann"),
        ("ps1_ann_smith.ipynb", "ann_smith"),
        ("smithann_12345_6789012_squares.ipynb", "smithann"),  # Canvas
        ("smithann_LATE_12345_6789012_squares-1.ipynb", "smithann"),  # Canvas, late resubmission
        ("PS 1_asmith_attempt_2024-01-31-10-00-00_squares.ipynb", "asmith"),  # Blackboard
    ],
)
def test_flat_names(tmp_path, name, student):
    _touch(tmp_path / name)
    assert _found(tmp_path) == {student: {"squares": name}}


def test_folder_per_student_and_moodle(tmp_path):
    _touch(tmp_path / "Ann Smith_123456_assignsubmission_file_" / "squares.ipynb")
    _touch(tmp_path / "bob" / "squares.ipynb")
    _touch(tmp_path / "__MACOSX" / "bob" / "._squares.ipynb")
    assert _found(tmp_path) == {
        "Ann_Smith": {"squares": "squares.ipynb"},
        "bob": {"squares": "squares.ipynb"},
    }


def test_multi_notebook_and_duplicates(tmp_path):
    _touch(tmp_path / "ann_part1.ipynb")
    _touch(tmp_path / "ann_part2.ipynb")
    _touch(tmp_path / "ann_other.ipynb")
    subs, warnings = find_submissions(tmp_path, "ps1", ["part1", "part2"])
    assert {s.student: sorted(s.files) for s in subs} == {"ann": ["part1", "part2"]}
    assert any("ann_other.ipynb" in w for w in warnings)


def test_zip_is_unpacked_safely(tmp_path):
    zpath = tmp_path / "class.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ann_squares.ipynb", "{}")
        zf.writestr("../escape.ipynb", "{}")
        zf.writestr("/abs.ipynb", "{}")
    folder = extract_zip(zpath, tmp_path / "unpacked")
    assert not (tmp_path / "escape.ipynb").exists()
    assert _found(folder) == {"ann": {"squares": "ann_squares.ipynb"}}


@pytest.fixture(scope="module")
def release_nb(tmp_path_factory):
    course = builders.make_course(tmp_path_factory.mktemp("course"))
    return builders.released(course)


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


@pytest.mark.filterwarnings("error::nbformat.warnings.DuplicateCellId")
def test_checks_restore_deleted_and_edited_cells(release_nb):
    good = builders.answered(release_nb)
    assert check_notebook(nbformat.writes(good).encode(), release_nb).issues == []

    deleted = copy.deepcopy(good)
    deleted.cells = [
        c for c in deleted.cells if c.metadata["nbgrader"]["grade_id"] != "double_works"
    ]
    result = check_notebook(nbformat.writes(deleted).encode(), release_nb)
    assert result.issues == [
        ("missing_cells", "deleted cells restored from the source: double_works")
    ]
    assert _ids(result.notebook) == _ids(release_nb)

    stripped = copy.deepcopy(good)
    stripped.cells[3].metadata = {}
    result = check_notebook(nbformat.writes(stripped).encode(), release_nb)
    assert result.issues[0][0] == "tampered_cells" and "metadata removed" in result.issues[0][1]
    assert _ids(result.notebook) == _ids(release_nb)

    points = copy.deepcopy(good)
    points.cells[5].metadata["nbgrader"]["points"] = 100
    result = check_notebook(nbformat.writes(points).encode(), release_nb)
    assert result.issues == [
        ("tampered_cells", "restored from the source: double_works (metadata edited)")
    ]
    assert result.notebook.cells[5].metadata["nbgrader"]["points"] == 1

    extra = copy.deepcopy(good)
    fake = copy.deepcopy(extra.cells[5])
    fake.id = "free-points"  # a cell id of its own: ids are unique in a valid notebook
    fake.metadata["nbgrader"]["grade_id"] = "free_points"
    fake.source = "pass"
    extra.cells.append(fake)
    result = check_notebook(nbformat.writes(extra).encode(), release_nb)
    assert "free_points (unknown grade cell, not graded)" in result.issues[0][1]
    assert "nbgrader" not in result.notebook.cells[-1].metadata


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"cells": [', "not valid JSON"),
        (b"[1, 2]", "not a notebook"),
        (json.dumps({"cells": [{"cell_type": "code"}]}).encode(), "not a notebook"),
        (
            json.dumps(
                {
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "metadata": {},
                    "cells": [{"cell_type": "code"}],
                }
            ).encode(),
            "not a valid notebook",
        ),
    ],
)
def test_checks_reject_unreadable_files(release_nb, data, reason):
    result = check_notebook(data, release_nb)
    assert result.notebook is None
    assert result.issues[0][0] == "invalid_notebook" and reason in result.issues[0][1]


def test_scrub_removes_hidden_tests_from_source_and_tracebacks(tmp_path):
    source = builders.source_notebook()
    course = builders.make_course(tmp_path / "c")
    release = builders.released(course)
    secret = secrets(source, release)
    assert builders.HIDDEN_LINE in secret.statements.values()
    graded = copy.deepcopy(source)
    cell = graded.cells[3]
    frame = (
        f"\x1b[31mCell In[4], line 4\x1b[0m\n  2 x\n----> 4 \x1b[43m{builders.HIDDEN_LINE}\x1b[0m\n"
    )
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="square(7) should be 49",
            traceback=["header", frame, "AssertionError: square(7) should be 49"],
        )
    ]
    scrub_notebook(graded, secret)
    text = json.dumps(graded)
    assert builders.HIDDEN_MARK not in text
    assert "assert square(-2)" not in text
    assert "assert square(3) == 9" in cell.source
    assert "[hidden test removed]" in cell.source
    assert cell.outputs[0].traceback[-1] == "AssertionError: square(7) should be 49"
    page = f"<pre><span>{builders.HIDDEN_LINE.replace('==', '<span>==</span>')}</span></pre>"
    assert leaked_lines(page, secret) == [builders.HIDDEN_LINE]
    assert leaked_lines("<pre>assert square(3) == 9</pre>", secret) == []


def test_an_interpreter_under_tmp_is_bound_into_the_sandbox(monkeypatch, tmp_path):
    """A course cloned into /tmp keeps its venv there: the kernel's private /tmp must not hide it."""
    from autograder import sandbox

    monkeypatch.setattr(sandbox, "find_tools", lambda: ("/usr/bin/bwrap", "/usr/bin/setpriv"))
    venv = "/tmp/some-clone/.venv"
    monkeypatch.setattr(sys, "prefix", venv)
    spec = sandbox.make_spec(sandbox.Limits(), hide=[tmp_path / "course"])
    assert venv in spec.keep
    monkeypatch.setattr(sys, "prefix", "/opt/elsewhere/.venv")
    spec = sandbox.make_spec(sandbox.Limits(), hide=[tmp_path / "course"])
    assert "/opt/elsewhere/.venv" not in spec.keep


def test_an_nbformat3_notebook_is_upgraded_and_checked(release_nb):
    """An old (nbformat 3, worksheets) notebook is read as version 4, cells and metadata kept."""
    answered = builders.answered(release_nb)
    old = nbformat.writes(nbformat.convert(answered, 3), version=3)
    assert '"worksheets"' in old and '"cells": [' in old
    result = check_notebook(old.encode(), release_nb)
    assert result.notebook is not None and result.issues == []
    assert result.notebook.nbformat == 4
    got = [c.metadata.get("nbgrader", {}).get("grade_id") for c in result.notebook.cells]
    want = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release_nb.cells]
    assert got == want
    nbformat.validate(result.notebook)
    # nbformat 3 without its worksheets is still not a notebook.
    bad = check_notebook(json.dumps({"nbformat": 3, "metadata": {}}).encode(), release_nb)
    assert bad.notebook is None and "without worksheets" in bad.issues[0][1]


def test_disk_usage_counts_blocks_and_entries_without_following_links(tmp_path):
    from autograder.executor import BLOCK, disk_usage

    (tmp_path / "d").mkdir()
    with open(tmp_path / "d" / "data", "wb") as f:
        f.write(b"z" * (3 << 20))
    for i in range(10):
        (tmp_path / f"empty{i}").touch()
    (tmp_path / "link").symlink_to("/usr")  # a link to a big tree counts as one entry
    used = disk_usage(str(tmp_path))
    assert 3 << 20 <= used <= (3 << 20) + 16 * BLOCK
    assert used >= (3 << 20) + 12 * BLOCK - BLOCK  # folder + 10 files + link, a block each
    assert disk_usage(str(tmp_path / "missing")) == 0


def test_classify_process_and_disk_limits():
    from autograder.sandbox import Limits
    from autograder.status import classify

    lim = Limits(max_processes=50, disk_mb=100, file_size_mb=64)
    assert classify([], {"nb": {"peak_tasks": 50}}, {}, lim) == (
        "process_limit",
        "the kernel's processes and threads reached the limit of 50",
    )
    assert classify([], {"nb": {"peak_tasks": 49}}, {}, lim)[0] == "ok"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("error", ename="OSError", evalue="[Errno 27] File too large")
    ]
    status, reason = classify([], {}, {"nb": nb}, lim)
    assert status == "disk_limit" and "64 MiB per file" in reason
    nb.cells[0].outputs[0].update(ename="RuntimeError", evalue="can't start new thread")
    assert classify([], {}, {"nb": nb}, lim)[0] == "process_limit"
    fatal = {"status": "disk_limit", "reason": "the kernel wrote at least 130 MiB", "cell": "c"}
    assert classify([], {"nb": {"fatal": fatal}}, {}, lim)[0] == "disk_limit"


def test_a_system_that_forbids_the_sandbox_refuses_before_grading(monkeypatch, tmp_path):
    """bwrap present but not allowed to make namespaces (a default container): say so, once."""
    from autograder import sandbox

    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    real_which = shutil.which
    monkeypatch.setattr(
        sandbox.shutil, "which", lambda name: str(fake) if name == "bwrap" else real_which(name)
    )
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    with pytest.raises(sandbox.SandboxUnavailable) as err:
        sandbox.find_tools()
    assert "Operation not permitted" in str(err.value)
    assert "privileged" in str(err.value) and "--unsafe" in str(err.value)
