"""The instructor autograder: a class graded in one command, sandboxed, in parallel, robustly.

The fixtures build a small nbgrader course and a batch of submissions (correct, wrong
and many hostile or broken kinds) in a temporary folder, grade them once per xdist
group and check each outcome: status, reason, score and that nothing else changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

import builders  # noqa: E402
from builders import ASSIGNMENT, HIDDEN_MARK, NOTEBOOK  # noqa: E402

from autograder.grade import grade  # noqa: E402
from autograder.sandbox import Limits, SandboxUnavailable  # noqa: E402

LIMITS = Limits(
    cell_timeout=4,
    notebook_timeout=90,
    memory_mb=1536,
    cpu_seconds=60,
    max_processes=96,
    output_mb=2.0,
    disk_mb=100,
)


def cli(course: Path, *args: str) -> list[str]:
    """The command line of `python -m autograder --course COURSE ARGS...`."""
    return [sys.executable, "-m", "autograder", "--course", str(course), *args]


def require_sandbox() -> None:
    """The sandbox tools are part of the test setup (`make system`): fail loudly without them."""
    missing = [t for t in ("bwrap", "setpriv") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        pytest.fail(
            f"the autograder tests need {', '.join(missing) or 'root'}: install bubblewrap "
            "(`make system` or `apt-get install bubblewrap`) and run as root",
            pytrace=False,
        )


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


class Listener:
    """A TCP server on localhost that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the whole adversarial batch once (2 workers); yield what the tests inspect."""
    require_sandbox()
    course = builders.make_course(tmp_path_factory.mktemp("course"))
    release_nb = builders.released(course)
    listener = Listener()
    subs = builders.bad_kinds(release_nb, course, listener.port)
    folder = builders.write_submissions(tmp_path_factory.mktemp("incoming"), subs)
    solutions_before = tree_digest(course / "solutions")
    try:
        run = grade(course, ASSIGNMENT, folder, workers=2, limits=LIMITS, progress=False)
    finally:
        listener.close()
    results = {r["student"]: r for r in run.results}
    yield {
        "course": course,
        "folder": folder,
        "run": run,
        "results": results,
        "csv": read_csv(run.out / "grades.csv"),
        "listener": listener,
        "solutions_before": solutions_before,
        "subs": subs,
    }


pytestmark = pytest.mark.slow
in_batch = pytest.mark.xdist_group("autograder_batch")

# student -> (status, words the reason must contain, score)
EXPECTED = {
    "correct": ("ok", "without errors", 4.0),
    "wrong": ("ok", "AssertionError", 1.0),
    "infinite_loop": ("timeout", "square_solution", 1.0),
    "memory_bomb": ("memory_limit", "MemoryError", 1.0),
    "fork_bomb": ("process_limit", "BlockingIOError", 4.0),
    "os_exit": ("kernel_died", "exited with code 0", 0.0),
    "sys_exit": ("exit_called", "sys.exit(3)", 4.0),
    "corrupted_json": ("invalid_notebook", "not valid JSON", 0.0),
    "empty_file": ("invalid_notebook", "empty", 0.0),
    "deleted_grade_cell": ("missing_cells", "square_works", 4.0),
    "edited_test_cell": ("tampered_cells", "square_works (edited)", 4.0),
    "retyped_grade_cell": ("tampered_cells", "square_works (changed to markdown)", 4.0),
    "huge_output": ("output_limit", "output truncated", 4.0),
    # These define square() correctly first, then try to get out of their sandbox.
    "reads_solutions": ("ok", "FileNotFoundError", 4.0),
    "reads_gradebook": ("ok", "unable to open database file", 4.0),
    "writes_outside": ("ok", "PermissionError", 4.0),
    "writes_system": ("ok", "Read-only file system", 4.0),
    "opens_socket": ("ok", "ConnectionRefusedError", 4.0),
    # Writes 2 GiB across its folder and /tmp: stopped in the answer cell, later cells 0.
    "disk_bomb": ("disk_limit", "over the 100 MiB disk quota", 0.0),
    "big_file": ("disk_limit", "over the limit of 64 MiB per file", 4.0),
    "quiet_fork_bomb": ("process_limit", "reached the limit of 96", 4.0),
    "nbformat3": ("ok", "without errors", 4.0),
}


@in_batch
def test_every_submission_has_a_row_status_and_reason(batch):
    rows = batch["csv"]
    assert sorted(rows) == sorted(EXPECTED)
    for student, row in rows.items():
        assert row["status"] and row["reason"], student
        assert "\n" not in row["reason"]
        assert float(row["max_score"]) == 4.0


@in_batch
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_outcome(batch, student):
    status, words, score = EXPECTED[student]
    row = batch["csv"][student]
    assert row["status"] == status, row
    assert words in row["reason"], row
    assert float(row["score"]) == score, row
    # Per-question columns add up to the total.
    assert float(row["square_works"]) + float(row["double_works"]) == score


@in_batch
def test_sandbox_kept_everything_else_unchanged(batch):
    course = batch["course"]
    assert tree_digest(course / "solutions") == batch["solutions_before"]
    assert not (course / "pwned.txt").exists()
    forked = (
        course / "grading" / "autograded" / "fork_bomb" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    ).read_text()
    n = int(forked.split("forked ")[1].split(" processes")[0])
    assert 0 < n < LIMITS.max_processes
    assert not Path("/etc/pwned").exists()
    assert batch["listener"].connections == 0
    # The hostile gradebook write did nothing: every graded submission still has its grades.
    with sqlite3.connect(course / "grading" / "gradebook.db") as con:
        n_grades = con.execute("select count(*) from grade").fetchone()[0]
        n_subs = con.execute("select count(*) from submitted_assignment").fetchone()[0]
    assert n_subs == len(EXPECTED)
    assert n_grades == 2 * len(EXPECTED)
    # The one who tried to print the solutions got nothing of them in the feedback.
    page = (
        course / "grading" / "feedback" / "reads_solutions" / ASSIGNMENT / f"{NOTEBOOK}.html"
    ).read_text()
    assert "return x * x" not in page.replace("&quot;", '"')


@in_batch
def test_disk_bomb_is_stopped_near_the_quota(batch):
    """The kernel is stopped soon after the quota, long before its 2 GiB, and nothing stays."""
    reason = batch["csv"]["disk_bomb"]["reason"]
    written = float(reason.split("wrote at least ")[1].split(" MiB")[0])  # rounded down
    assert LIMITS.disk_mb <= written < 1024, reason
    left = batch["course"] / "grading" / "autograded" / "disk_bomb" / ASSIGNMENT
    assert sorted(p.name for p in left.iterdir()) == [f"{NOTEBOOK}.ipynb"]
    # The kernel's /tmp was a folder of the scratch area, removed with it.
    assert not list(Path(tempfile.gettempdir()).glob("ag-*/g*/**/tmp/f1"))


@in_batch
def test_feedback_hides_hidden_tests(batch):
    out = batch["course"] / "grading"
    pages = sorted((out / "feedback").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}.html"))
    graded = [s for s, r in batch["results"].items() if r["status"] != "invalid_notebook"]
    assert len(pages) == len(graded)
    for page in pages:
        text = page.read_text()
        assert HIDDEN_MARK not in text, page
        assert "assert square(-2)" not in text, page
        assert (
            "square(3) == 9" in text.replace("&quot;", '"').replace("<span", " <span")
            or "square" in text
        )
    # The wrong answer fails the hidden case: its traceback would show the hidden line.
    wrong = (out / "feedback" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    assert "AssertionError" in wrong
    assert "hidden test removed" in wrong
    # The instructor's copy keeps everything.
    graded_nb = (out / "autograded" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text()
    assert HIDDEN_MARK in graded_nb


@in_batch
def test_huge_output_is_capped(batch):
    out = batch["course"] / "grading"
    page = out / "feedback" / "huge_output" / ASSIGNMENT / f"{NOTEBOOK}.html"
    nb = out / "autograded" / "huge_output" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert nb.stat().st_size < 8 * 1024 * 1024
    assert page.stat().st_size < 8 * 1024 * 1024
    assert "output truncated by the grader" in nb.read_text()


@in_batch
def test_summary_outputs(batch):
    out = batch["course"] / "grading"
    md = (out / "summary.md").read_text()
    assert "| square_works | 3 |" in md
    assert "| timeout | 1 |" in md
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in (out / "summary.html").read_text()


@in_batch
def test_parallel_and_sequential_give_the_same_csv(batch, tmp_path):
    """Graded by one worker, a mix of the batch gives the same grades.csv rows as with two."""
    mix = [
        "correct",
        "wrong",
        "infinite_loop",
        "os_exit",
        "corrupted_json",
        "deleted_grade_cell",
        "edited_test_cell",
        "huge_output",
    ]
    folder = tmp_path / "mix"
    folder.mkdir()
    for student in mix:
        shutil.copy(batch["folder"] / f"{student}.ipynb", folder)
    run = grade(
        batch["course"],
        ASSIGNMENT,
        folder,
        out=tmp_path / "seq",
        workers=1,
        limits=LIMITS,
        progress=False,
    )
    seq = (run.out / "grades.csv").read_text().splitlines()
    par = (batch["run"].out / "grades.csv").read_text().splitlines()
    assert seq[0] == par[0]
    assert seq[1:] == [row for row in par[1:] if row.split(",")[0] in mix]
    assert len(seq) == len(mix) + 1


@in_batch
def test_local_dask_cluster_gives_the_same_csv(batch, tmp_path):
    """`--cluster local:2` (a LocalCluster of two worker processes) = `--workers 2`."""
    mix = ["correct", "wrong", "os_exit", "corrupted_json", "deleted_grade_cell", "disk_bomb"]
    folder = tmp_path / "mix"
    folder.mkdir()
    for student in mix:
        shutil.copy(batch["folder"] / f"{student}.ipynb", folder)
    run = grade(
        batch["course"],
        ASSIGNMENT,
        folder,
        out=tmp_path / "dask",
        limits=LIMITS,
        progress=False,
        cluster="local:2",
    )
    got = (run.out / "grades.csv").read_text().splitlines()
    par = (batch["run"].out / "grades.csv").read_text().splitlines()
    assert got[0] == par[0]
    rows = {r.split(",")[0]: r for r in got[1:]}
    want = {r.split(",")[0]: r for r in par[1:] if r.split(",")[0] in mix}
    # The disk bomb's reason says how much it wrote before it was stopped: that varies.
    bomb = rows.pop("disk_bomb"), want.pop("disk_bomb")
    assert [b.split(",")[4] for b in bomb] == ["disk_limit", "disk_limit"]
    assert rows == want
    assert len(got) == len(mix) + 1
    feedback = run.out / "feedback" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.html"
    assert "hidden test removed" in feedback.read_text()


@in_batch
def test_rerun_skips_unchanged_and_regrades_changed(batch):
    course, folder = batch["course"], batch["folder"]
    release_nb = builders.released(course)
    # Change one submission: only it is graded again.
    builders.write_submissions(folder, {"wrong": builders.answered(release_nb)})
    run = grade(course, ASSIGNMENT, folder, workers=2, limits=LIMITS, progress=False)
    assert sorted(run.skipped) == sorted(set(EXPECTED) - {"wrong"})
    rows = read_csv(run.out / "grades.csv")
    assert rows["wrong"]["score"] == "4.0" and rows["wrong"]["status"] == "ok"
    assert rows["memory_bomb"] == batch["csv"]["memory_bomb"]


def test_missing_sandbox_refuses_unless_unsafe(tmp_path, monkeypatch):
    course = builders.make_course(tmp_path / "course")
    release_nb = builders.released(course)
    folder = builders.write_submissions(
        tmp_path / "incoming", {"ann": builders.answered(release_nb)}
    )
    import autograder.sandbox as sandbox

    real_which = shutil.which
    monkeypatch.setattr(
        sandbox.shutil, "which", lambda name: None if name == "bwrap" else real_which(name)
    )
    with pytest.raises(SandboxUnavailable, match="bwrap.*--unsafe"):
        grade(course, ASSIGNMENT, folder, workers=1, limits=LIMITS, progress=False)
    proc = subprocess.run(
        cli(course, "grade", ASSIGNMENT, str(folder)),
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/nonexistent"},
    )
    assert proc.returncode == 2
    assert "refusing to grade" in proc.stderr and "--unsafe" in proc.stderr
    run = grade(course, ASSIGNMENT, folder, workers=1, unsafe=True, limits=LIMITS, progress=False)
    assert [(r["student"], r["status"], r["score"]) for r in run.results] == [("ann", "ok", 4.0)]


def test_resume_after_kill(tmp_path):
    require_sandbox()
    course = builders.make_course(tmp_path / "course")
    release_nb = builders.released(course)
    students = {f"s{i}": builders.answered(release_nb) for i in range(5)}
    folder = builders.write_submissions(tmp_path / "incoming", students)
    out = course / "grading"
    proc = subprocess.Popen(
        cli(course, "grade", ASSIGNMENT, str(folder), "--workers", "1", "--no-progress"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = out / "journal" / ASSIGNMENT
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(journal.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.stem: json.loads(p.read_text()) for p in journal.glob("*.json")}
    stale = [
        d
        for d in Path(tempfile.gettempdir()).glob("ag-*")
        if (d / "owner.pid").exists() and (d / "owner.pid").read_text() == str(proc.pid)
    ]
    assert len(stale) == 1, "the killed run leaves its scratch folder behind"
    assert 2 <= len(before) < 5, "the batch should have been killed half-way"
    # The same limits as the command line's defaults, so the same content hashes.
    run = grade(course, ASSIGNMENT, folder, workers=2, limits=Limits(), progress=False)
    assert sorted(run.skipped) == sorted(before)
    assert not stale[0].exists(), "the next run removes a killed run's scratch folder"
    rows = read_csv(out / "grades.csv")
    assert sorted(rows) == sorted(students)
    assert all(r["status"] == "ok" and r["score"] == "4.0" for r in rows.values())
    # `report` rebuilds the same CSV from the gradebook.
    csv_before = (out / "grades.csv").read_text()
    (out / "grades.csv").unlink()
    proc = subprocess.run(
        cli(course, "report"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "grades.csv").read_text() == csv_before
