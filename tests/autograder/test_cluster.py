"""Grading on a Dask cluster: same grades as on one machine, faults survived, refusals clear.

The slow tests start real Dask processes (a LocalCluster; a `dask scheduler` and two
`dask worker` processes over TCP on 127.0.0.1). Every wait has a deadline and every
process is started in its own session and killed by process group at the end.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

import builders  # noqa: E402
from builders import ASSIGNMENT  # noqa: E402

from autograder.course import course_version  # noqa: E402
from autograder.runner_dask import COURSE_ENV, Task, WorkerRefused  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

BIN = Path(sys.executable).parent
# Benign submissions only: a loaded machine must not turn them into timeouts.
LIMITS = Limits(cell_timeout=30, notebook_timeout=120, memory_mb=1536, cpu_seconds=120)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds:.0f} s waiting for {what}", pytrace=False)
        time.sleep(0.2)


def spawn(
    cmd: list[str], env: dict[str, str], procs: list[subprocess.Popen], log: Path | None = None
) -> subprocess.Popen:
    """Start ``cmd`` in its own session (so it is killed by group) and add it to ``procs``.

    With ``log`` its output goes to that file; without, stdout and stderr are piped (text).
    """
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=log.parent if log else None,
        stdout=out,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if log:
        out.close()  # the child holds its own copy
    procs.append(proc)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _task(course: Path, **changes) -> Task:
    fields = dict(
        student="ann",
        assignment=ASSIGNMENT,
        files={},
        limits=LIMITS,
        digest="0" * 64,
        version=course_version(course),
        course=str(course),
    )
    fields.update(changes)
    return Task(**fields)


def test_course_version_changes_with_solutions_and_config(tmp_path):
    course = builders.make_course(tmp_path / "c")
    before = course_version(course)
    assert course_version(course) == before
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    after_config = course_version(course)
    assert after_config != before
    nb = course / "solutions" / ASSIGNMENT / f"{builders.NOTEBOOK}.ipynb"
    nb.write_text(nb.read_text().replace("return x * x", "return x ** 2"))
    assert course_version(course) != after_config


def test_a_worker_with_another_course_version_refuses(tmp_path, monkeypatch):
    from autograder import runner_dask

    course = builders.make_course(tmp_path / "c")
    monkeypatch.setenv(COURSE_ENV, str(course))
    with pytest.raises(WorkerRefused, match="another version of the course.*restart it"):
        runner_dask.grade_task(_task(course, version="f" * 64))


def test_a_worker_without_the_sandbox_refuses_unless_unsafe(tmp_path, monkeypatch):
    from autograder import runner_dask, sandbox

    course = builders.make_course(tmp_path / "c")
    monkeypatch.setenv(COURSE_ENV, str(course))
    monkeypatch.setattr(runner_dask, "_STATE", {})
    real_which = shutil.which
    monkeypatch.setattr(
        sandbox.shutil, "which", lambda name: None if name == "bwrap" else real_which(name)
    )
    with pytest.raises(WorkerRefused, match="cannot run the sandbox.*--unsafe"):
        runner_dask.grade_task(_task(course))
    # With --unsafe the worker grades (here: a submission without its notebook).
    reply = runner_dask.grade_task(_task(course, unsafe=True))
    assert reply["result"]["status"] == "invalid_notebook"
    assert "no squares.ipynb" in reply["result"]["reason"]


def test_bad_cluster_addresses_are_refused():
    from autograder.runner_dask import ClusterError, connect

    for spec in ("local:0", "local:two", "8786", "tcp://host"):
        with pytest.raises(ClusterError, match="local:N"):
            connect(spec)
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        connect(f"tcp://127.0.0.1:{free_port()}")


def _course_and_folder(tmp_path: Path, n_correct: int) -> tuple[Path, Path, list[str]]:
    course = builders.make_course(tmp_path / "course")
    release_nb = builders.released(course)
    subs = {f"s{i}": builders.answered(release_nb) for i in range(n_correct)}
    subs["wrong"] = builders.answered(release_nb, double="def double(x):\n    return x")
    subs["os_exit"] = builders.answered(
        release_nb, square="def square(x):\n    return x * x\nimport os\nos._exit(0)"
    )
    folder = builders.write_submissions(tmp_path / "incoming", subs)
    return course, folder, sorted(subs)


def _cli(course: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "--course", str(course), *args]


def _expected_ok(rows: dict[str, dict[str, str]], students: list[str]) -> None:
    assert sorted(rows) == students
    for s in students:
        row = rows[s]
        if s == "wrong":
            assert (row["status"], row["score"]) == ("ok", "3.0"), row
        elif s == "os_exit":
            assert (row["status"], row["score"]) == ("kernel_died", "0.0"), row
        else:
            assert (row["status"], row["score"]) == ("ok", "4.0"), row


@pytest.mark.slow
@pytest.mark.xdist_group("autograder_cluster")
def test_dask_scheduler_and_workers_over_tcp_survive_a_killed_worker(tmp_path):
    """A real scheduler and two workers: one SIGKILLed mid-batch, then the scheduler."""
    course, folder, students = _course_and_folder(tmp_path, n_correct=3)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, COURSE_ENV: str(course), "PATH": f"{BIN}:{os.environ['PATH']}"}
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        return spawn([str(BIN / "dask"), *args], env, procs, log=tmp_path / f"dask{len(procs)}.log")

    def workers_up(n: int) -> bool:
        from distributed import Client

        try:
            with Client(address, timeout="5s") as c:
                return len(c.scheduler_info()["workers"]) >= n
        except OSError:
            return False

    try:
        scheduler = start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        wargs = ("worker", address, "--nthreads", "1", "--no-dashboard", "--no-nanny")
        doomed, _survivor = start(*wargs, "--name", "doomed"), start(*wargs, "--name", "survivor")
        wait_until(lambda: workers_up(2), 120, "two Dask workers")

        # 1. One worker is killed (SIGKILL, whole process group) once the first grade is in.
        out = tmp_path / "grading"
        grading = spawn(
            _cli(course, "grade", ASSIGNMENT, str(folder), "--out", str(out), "--cluster", address)
            + ["--no-progress", "--cell-timeout", "30"],
            env,
            procs,
        )
        journal = out / "journal" / ASSIGNMENT
        wait_until(lambda: any(journal.glob("*.json")), 240, "the first grade")
        kill_group(doomed)
        stdout, stderr = grading.communicate(timeout=300)
        assert grading.returncode == 0, stderr
        assert f"graded {len(students)}, unchanged 0" in stdout
        rows = read_csv(out / "grades.csv")
        _expected_ok(rows, students)
        with open(out / "grades.csv") as f:
            assert len(f.read().strip().splitlines()) == len(students) + 1  # no duplicate row
        with sqlite3.connect(out / "gradebook.db") as con:
            assert con.execute("select count(*) from submitted_assignment").fetchone()[0] == len(
                students
            )
            assert con.execute("select count(*) from grade").fetchone()[0] == 2 * len(students)
        assert sorted(p.stem for p in journal.glob("*.json")) == students
        assert (out / "feedback" / "s0" / ASSIGNMENT / f"{builders.NOTEBOOK}.html").exists()

        # 2. A command whose course differs from the workers' is refused, with the reason.
        other = tmp_path / "other"
        shutil.copytree(course, other, ignore=shutil.ignore_patterns("grading", "release_check"))
        nb = other / "solutions" / ASSIGNMENT / f"{builders.NOTEBOOK}.ipynb"
        nb.write_text(nb.read_text().replace("return 2 * x", "return x + x"))
        proc = subprocess.run(
            _cli(other, "grade", ASSIGNMENT, str(folder), "--cluster", address, "--no-progress"),
            env={**env, COURSE_ENV: ""},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 2, proc.stderr
        assert "another version of the course" in proc.stderr, proc.stderr

        # 3. The scheduler goes away mid-batch: a clear message, and a re-run resumes.
        out2 = tmp_path / "grading2"
        grading = spawn(
            _cli(course, "grade", ASSIGNMENT, str(folder), "--out", str(out2), "--cluster")
            + [address, "--no-progress", "--cell-timeout", "30"],
            env,
            procs,
        )
        journal2 = out2 / "journal" / ASSIGNMENT
        wait_until(lambda: any(journal2.glob("*.json")), 240, "the first grade")
        kill_group(scheduler)
        _, stderr = grading.communicate(timeout=120)
        assert grading.returncode == 2, stderr
        assert "lost the Dask scheduler" in stderr and "run the same command again" in stderr
        saved = sorted(p.stem for p in journal2.glob("*.json"))
        assert 1 <= len(saved) < len(students)
        for p in journal2.glob("*.json"):
            assert json.loads(p.read_text())["status"] in ("ok", "kernel_died")
    finally:
        for proc in reversed(procs):
            kill_group(proc)

    # Resumed without the cluster: what was saved is skipped, the grades are the same.
    from autograder.grade import grade

    run = grade(course, ASSIGNMENT, folder, out=out2, workers=2, limits=Limits(cell_timeout=30))
    assert sorted(run.skipped) == saved
    assert read_csv(out2 / "grades.csv") == rows
