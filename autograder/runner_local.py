"""Grading on this machine: a pool of worker processes, one submission at a time each.

The workers start with the batch and import nbgrader while the command prepares it.
Each grades in the command's scratch folder and writes its submission's files into the
output folder itself; the command merges the results. A worker process that dies (a
kernel that took it down) costs only its own submission: the pool is started again and
the submission retried once, then given up as a ``grader_error``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from autograder.course import init_worker, kernel_spec
from autograder.runner import Batch, Crashed
from autograder.worker import Job, grade_one


def ncores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


class LocalRunner:
    """``workers`` processes of this machine (spawned, each set up by :func:`init_worker`)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def start(self, batch: Batch) -> Path:
        # Start the workers now: they import nbgrader while this process prepares the batch.
        self.pool = _new_pool(self.workers)
        for _ in range(self.workers):
            self.pool.submit(_warm)
        hide = [batch.course_root, batch.out, batch.scratch, batch.submissions]
        return kernel_spec(batch.limits, hide, batch.unsafe, batch.scratch / "spec")

    def outcomes(self, jobs: list[Job]) -> Iterator[tuple[Job, dict[str, Any] | Crashed]]:
        pending = list(jobs)
        attempts: dict[str, int] = {}
        while pending:
            if self.pool is None:
                self.pool = _new_pool(self.workers)
            futures = {self.pool.submit(grade_one, job): job for job in pending}
            pending = []
            broken = False
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    result: dict[str, Any] | Crashed = fut.result()
                except BrokenProcessPool:
                    broken = True
                    attempts[job.student] = attempts.get(job.student, 0) + 1
                    if attempts[job.student] < 2:
                        pending.append(job)
                        continue
                    result = Crashed("the grading process crashed twice on this submission")
                yield job, result
            if broken:
                self.pool.shutdown(cancel_futures=True)
                self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            # Idle now: let the workers exit while the reports are written.
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker)


def _warm() -> None:
    """Import what grading needs (seconds) before the first submission arrives."""
    import nbgrader.converters  # noqa: F401

    import autograder.executor  # noqa: F401
    import autograder.worker  # noqa: F401
