"""Grading on a Dask cluster: the workers run the kernels, this process writes everything.

``autograder grade … --cluster tcp://HOST:8786`` sends one task per submission to an
existing Dask scheduler; ``--cluster local:N`` starts a ``LocalCluster`` of N worker
processes on this machine. A task carries the submission's bytes, the limits and a
hash of the course; the worker grades it in its own scratch folder, with its own copy
of the course (the same sandbox, the same nbgrader steps as on one machine) and
returns the result with the graded notebooks, the feedback pages and any log as
bytes. The command's own process remains the only writer of the gradebook, the
journal, ``autograded/``, ``feedback/`` and the reports.

A worker refuses a task when its course (``solutions/``, ``nbgrader_config.py`` and
the autograder's own code) hashes differently from the command's, or when it cannot
build the sandbox and the command was not given ``--unsafe``; the command then stops
and says which worker and why. A worker process that dies mid-task (a SIGKILL, the
machine going away) costs nothing: the scheduler gives its tasks to another worker,
and each result is written once, when it arrives.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.sandbox import Limits

# Where a worker finds its copy of the course when the task's path is not one.
COURSE_ENV = "AUTOGRADER_COURSE"


class ClusterError(RuntimeError):
    """The cluster cannot grade this batch: bad address, scheduler gone, a worker refused."""


class WorkerRefused(RuntimeError):
    """Raised on a worker that must not grade the task (another course version, no sandbox)."""


def course_version(course_root: Path) -> str:
    """A hash of what decides a grade on a worker: ``solutions/``, the config, the grader."""
    course_root = Path(course_root)
    h = hashlib.sha256(b"autograder course version 1\n")
    files: list[tuple[str, Path]] = []
    sol = course_root / "solutions"
    if sol.is_dir():
        for p in sol.rglob("*"):
            rel = p.relative_to(course_root)
            if p.is_file() and not any(
                part in (".ipynb_checkpoints", "__pycache__") for part in rel.parts
            ):
                files.append((rel.as_posix(), p))
    config = course_root / "nbgrader_config.py"
    if config.is_file():
        files.append(("nbgrader_config.py", config))
    package = Path(__file__).resolve().parent
    for p in package.glob("*.py"):
        files.append((f"autograder/{p.name}", p))
    for name, p in sorted(files):
        h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class Task:
    """One submission, self-contained: what a worker on another machine needs to grade it."""

    student: str
    assignment: str
    files: dict[str, tuple[str, bytes]]  # notebook or file name -> (file name, content)
    limits: Limits
    digest: str
    version: str  # course_version() of the command's course
    course: str  # the command's course folder (used when the worker has the same path)
    unsafe: bool = False
    hide: list[str] = field(default_factory=list)  # more folders to hide, if they exist there


# -- on the worker ---------------------------------------------------------------------

_LOCK = threading.Lock()  # one submission at a time per worker process
_STATE: dict[tuple, dict[str, Any]] = {}


def _course_root(task: Task) -> Path:
    env = os.environ.get(COURSE_ENV)
    if env:
        return Path(env).resolve()
    if (Path(task.course) / "solutions").is_dir():
        return Path(task.course)
    return Path.cwd().resolve()


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _prepare(task: Task) -> dict[str, Any]:
    """This worker process's scratch folder, assignment template and kernel spec (cached)."""
    from autograder.grade import (
        _init_worker,
        _remove_stale_scratch,
        course_config,
        make_template,
    )
    from autograder.sandbox import SandboxUnavailable, make_spec, write_kernel_spec

    root = _course_root(task)
    key = (str(root), task.assignment, task.version, task.unsafe, repr(task.limits))
    if key in _STATE:
        return _STATE[key]
    mine = course_version(root)
    if mine != task.version:
        raise WorkerRefused(
            f"worker {_where()} runs another version of the course ({root}: hash "
            f"{mine[:12]} of solutions/, nbgrader_config.py and the autograder; the command's "
            f"is {task.version[:12]}). Give the worker the same checkout (set {COURSE_ENV} "
            "to it) and restart it."
        )
    _init_worker()
    _remove_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix="ag-"))
    (scratch / "owner.pid").write_text(str(os.getpid()))
    atexit.register(shutil.rmtree, scratch, True)
    hide = [root, scratch, *(p for p in task.hide if Path(p).exists())]
    kernel_env = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    try:
        spec = make_spec(
            task.limits, hide=[Path(p) for p in hide], unsafe=task.unsafe, env=kernel_env
        )
    except SandboxUnavailable as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise WorkerRefused(f"worker {_where()} cannot run the sandbox: {exc}") from None
    config = course_config(root)
    make_template(root, task.assignment, scratch / "template", config)
    state = {
        "root": root,
        "scratch": scratch,
        "kernels": write_kernel_spec(spec, scratch / "spec"),
        "template": scratch / "template",
        "config": config,
        "out": scratch / "out",
    }
    _STATE[key] = state
    return state


def _take(folder: Path, out: Path) -> dict[str, bytes]:
    """The files under ``folder`` (paths relative to ``out``), removed from the worker."""
    found: dict[str, bytes] = {}
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.is_symlink():
                found[p.relative_to(out).as_posix()] = p.read_bytes()
        shutil.rmtree(folder, ignore_errors=True)
    return found


def grade_task(task: Task) -> dict[str, Any]:
    """Grade one submission on this worker; return its result and the files it produced."""
    from autograder.worker import Job, grade_one

    with _LOCK:
        state = _prepare(task)
        scratch, out = state["scratch"], state["out"]
        inbox = Path(tempfile.mkdtemp(prefix="in", dir=scratch))
        try:
            files = {}
            for name, (fname, data) in task.files.items():
                target = inbox / Path(fname).name
                target.write_bytes(data)
                files[name] = str(target)
            job = Job(
                task.student,
                task.assignment,
                files,
                str(state["template"]),
                str(state["kernels"]),
                str(scratch),
                str(out),
                task.limits,
                state["config"],
                task.digest,
                sandboxed=not task.unsafe,
            )
            result = grade_one(job)
            produced: dict[str, bytes] = {}
            for part in ("autograded", "feedback"):
                produced |= _take(out / part / task.student / task.assignment, out)
            log = out / "logs" / f"{task.assignment}__{task.student}.log"
            if log.is_file():
                produced[log.relative_to(out).as_posix()] = log.read_bytes()
                log.unlink()
        finally:
            shutil.rmtree(inbox, ignore_errors=True)
    return {"result": result, "files": produced, "worker": _where()}


# -- in the command --------------------------------------------------------------------


def connect(spec: str) -> tuple[Any, Any]:
    """A Dask client for ``tcp://HOST:PORT`` (or ``tls://…``) or ``local:N``; and the cluster."""
    import logging

    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover
        raise ClusterError(
            "--cluster needs Dask's `distributed` (pip install -e '.[grade]')"
        ) from exc
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ClusterError(f"--cluster {spec}: give local:N with N a number of workers >= 1")
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster
    if "://" not in spec or spec.split("://", 1)[1].count(":") != 1:
        raise ClusterError(
            f"--cluster {spec!r}: give a scheduler address (tcp://HOST:8786) or local:N"
        )
    try:
        return Client(spec, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {exc}") from None


def task_for(job: Any, version: str, course: Path, unsafe: bool, hide: list[str]) -> Task:
    """The cluster task for a prepared :class:`autograder.worker.Job`."""
    files = {name: (Path(p).name, Path(p).read_bytes()) for name, p in job.files.items()}
    return Task(
        job.student,
        job.assignment,
        files,
        job.limits,
        job.digest,
        version,
        str(course),
        unsafe,
        hide,
    )


def _key(task: Task) -> str:
    return f"grade-{task.assignment}-{task.student}-{task.digest[:16]}"


def _write_files(out: Path, files: dict[str, bytes]) -> None:
    """Write what a worker produced into ``out``, each file atomically."""
    for rel, data in files.items():
        target = (out / rel).resolve()
        if not target.is_relative_to(out.resolve()):
            continue  # never outside the output folder
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def _remove_unpublished(out: Path, result: dict[str, Any]) -> None:
    """Pages of an earlier run that this grading did not publish (withheld, or none) go."""
    from autograder.worker import remove_pages

    folder = out / "feedback" / result["student"] / result["assignment"]
    if folder.is_dir():
        kept = {Path(p).name for p in result.get("feedback", [])}
        remove_pages(folder, [p.stem for p in folder.glob("*.html") if p.name not in kept])


def run_tasks(client: Any, tasks: list[Task], out: Path, progress: bool):
    """Yield each task's result as it arrives, after writing its files into ``out``."""
    if not tasks:
        return
    import sys

    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    from autograder.worker import Result

    bar = tqdm(total=len(tasks), desc="grading", unit="nb", disable=not progress, file=sys.stderr)
    futures = [client.submit(grade_task, t, key=_key(t), pure=False, retries=0) for t in tasks]
    by_key = {f.key: t for f, t in zip(futures, tasks)}
    done = 0
    try:
        for fut in as_completed(futures):
            task = by_key[fut.key]
            if fut.status == "finished":
                reply = fut.result()
                _write_files(out, reply["files"])
                result = reply["result"]
                _remove_unpublished(out, result)
            elif fut.status == "error":
                exc = fut.exception()
                if isinstance(exc, KilledWorker):
                    result = Result(
                        task.student,
                        task.assignment,
                        "grader_error",
                        "every worker that took this submission died while grading it",
                        0.0,
                        0.0,
                        {},
                        task.digest,
                    ).to_json()
                elif isinstance(exc, WorkerRefused):
                    raise ClusterError(str(exc))
                else:
                    raise ClusterError(f"a worker failed: {type(exc).__name__}: {exc}")
            else:
                raise ClusterError(
                    f"lost the Dask scheduler ({client.scheduler.address}) with {done} of "
                    f"{len(tasks)} submissions graded and saved; run the same command again "
                    "to grade the rest"
                )
            done += 1
            bar.update(1)
            bar.set_postfix_str(f"{task.student}: {result['status']}")
            yield result
    finally:
        bar.close()
        try:
            client.cancel([f for f in futures if not f.done()])
        except Exception:  # noqa: BLE001  (the scheduler may be gone)
            pass
