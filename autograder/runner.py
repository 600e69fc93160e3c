"""Where a batch is graded: the runners' common interface and what they share.

:func:`autograder.grade.grade` prepares the batch (the template, the journal, one
:class:`~autograder.worker.Job` per submission to grade) and hands the jobs to a
runner, which says where they run: :class:`autograder.runner_local.LocalRunner` (this
machine's worker processes) or :class:`autograder.runner_dask.DaskRunner` (a Dask
cluster). A runner yields each job as it completes, with its result or, when the job
took down the process that graded it, why; :func:`results` turns that into the
batch's results (a crash is a ``grader_error``) behind one progress bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autograder.sandbox import Limits
from autograder.worker import Job, Result


@dataclass
class Batch:
    """What a runner needs to know of the batch besides its jobs."""

    course_root: Path
    assignment: str
    out: Path  # the output folder (hidden from the kernels)
    scratch: Path  # this process's scratch folder (the jobs' template is there)
    submissions: Path  # the folder the submissions were read from (hidden too)
    limits: Limits
    unsafe: bool


@dataclass
class Crashed:
    """A job that took down the process that graded it, with why it was given up."""

    reason: str


class Runner(Protocol):
    """Runs jobs somewhere: start, then the jobs' outcomes as they complete, then close."""

    def start(self, batch: Batch) -> Path:
        """Start the workers (or connect to them); return the kernel spec folder for the jobs.

        Raises :class:`autograder.sandbox.SandboxUnavailable` or
        :class:`autograder.runner_dask.ClusterError` when the batch cannot be graded there.
        """
        ...

    def outcomes(self, jobs: list[Job]) -> Iterator[tuple[Job, dict[str, Any] | Crashed]]:
        """Grade ``jobs``; yield each with its result, or :class:`Crashed`, as it completes."""
        ...

    def close(self) -> None:
        """Let the workers go (also after a failure, and when :meth:`start` never ran)."""
        ...


def grader_error(job: Job, reason: str) -> dict[str, Any]:
    """The result of a job that could not be graded at all: no points, and why."""
    return Result(
        job.student, job.assignment, "grader_error", reason, 0.0, 0.0, {}, job.digest
    ).to_json()


def results(runner: Runner, jobs: list[Job], progress: bool) -> Iterator[dict[str, Any]]:
    """The jobs' results as they come from ``runner``, with a progress bar on stderr."""
    if not jobs:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="grading", unit="nb", disable=not progress, file=sys.stderr)
    try:
        for job, outcome in runner.outcomes(jobs):
            result = grader_error(job, outcome.reason) if isinstance(outcome, Crashed) else outcome
            bar.update(1)
            bar.set_postfix_str(f"{job.student}: {result['status']}")
            yield result
    finally:
        bar.close()
