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
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course import (
    course_config,
    course_version,
    init_worker,
    kernel_spec,
    make_template,
    new_scratch,
)
from autograder.runner import Batch, Crashed
from autograder.sandbox import Limits, SandboxUnavailable
from autograder.worker import Job, grade_one, remove_pages

# Where a worker finds its copy of the course when the task's path is not one.
COURSE_ENV = "AUTOGRADER_COURSE"


class ClusterError(RuntimeError):
    """The cluster cannot grade this batch: bad address, scheduler gone, a worker refused."""


class WorkerRefused(RuntimeError):
    """Raised on a worker that must not grade the task (another course version, no sandbox)."""


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
    init_worker()
    scratch = new_scratch()
    atexit.register(shutil.rmtree, scratch, True)
    hide = [root, scratch, *(Path(p) for p in task.hide if Path(p).exists())]
    try:
        kernels = kernel_spec(task.limits, hide, task.unsafe, scratch / "spec")
    except SandboxUnavailable as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise WorkerRefused(f"worker {_where()} cannot run the sandbox: {exc}") from None
    config = course_config(root)
    make_template(root, task.assignment, scratch / "template", config)
    state = {
        "root": root,
        "scratch": scratch,
        "kernels": kernels,
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


def task_for(job: Job, version: str, course: Path, unsafe: bool, hide: list[str]) -> Task:
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
    folder = out / "feedback" / result["student"] / result["assignment"]
    if folder.is_dir():
        kept = {Path(p).name for p in result.get("feedback", [])}
        remove_pages(folder, [p.stem for p in folder.glob("*.html") if p.name not in kept])


class DaskRunner:
    """A Dask scheduler's workers (``tcp://HOST:PORT``), or ``local:N`` started here."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.client: Any = None
        self.cluster: Any = None

    def start(self, batch: Batch) -> Path:
        self.client, self.cluster = connect(self.address)
        self.version = course_version(batch.course_root)
        self.batch = batch
        return batch.scratch / "spec"  # each worker checks for and builds its own sandbox

    def outcomes(self, jobs: list[Job]) -> Iterator[tuple[Job, dict[str, Any] | Crashed]]:
        """Each job's result as it arrives, after writing its files into the output folder."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        b = self.batch
        hide = [str(b.out), str(b.submissions)]
        tasks = [task_for(job, self.version, b.course_root, b.unsafe, hide) for job in jobs]
        futures = [
            self.client.submit(grade_task, t, key=_key(t), pure=False, retries=0) for t in tasks
        ]
        by_key = {f.key: job for f, job in zip(futures, jobs)}
        done = 0
        try:
            for fut in as_completed(futures):
                job = by_key[fut.key]
                if fut.status == "finished":
                    reply = fut.result()
                    _write_files(b.out, reply["files"])
                    result: dict[str, Any] | Crashed = reply["result"]
                    _remove_unpublished(b.out, reply["result"])
                elif fut.status == "error":
                    exc = fut.exception()
                    if isinstance(exc, KilledWorker):
                        result = Crashed(
                            "every worker that took this submission died while grading it"
                        )
                    elif isinstance(exc, WorkerRefused):
                        raise ClusterError(str(exc))
                    else:
                        raise ClusterError(f"a worker failed: {type(exc).__name__}: {exc}")
                else:
                    raise ClusterError(
                        f"lost the Dask scheduler ({self.client.scheduler.address}) with "
                        f"{done} of {len(tasks)} submissions graded and saved; run the same "
                        "command again to grade the rest"
                    )
                done += 1
                yield job, result
        finally:
            try:
                self.client.cancel([f for f in futures if not f.done()])
            except Exception:  # noqa: BLE001  (the scheduler may be gone)
                pass

    def close(self) -> None:
        """Close the client (and a LocalCluster this command started), even without a scheduler."""
        import logging

        if self.client is None:
            return
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        for thing in (self.client, self.cluster):
            if thing is None:
                continue
            try:
                thing.close(timeout=10) if thing is self.client else thing.close()
            except Exception:  # noqa: BLE001  (a lost scheduler makes closing fail too)
                pass
        self.client = self.cluster = None
