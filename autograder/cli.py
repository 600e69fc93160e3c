"""Command line: `autograder release`, `autograder grade`, `autograder report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.release import release
from autograder.sandbox import add_limit_arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Release, grade (parallel, sandboxed) and report on nbgrader notebooks.",
    )
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    p_rel = sub.add_parser("release", help="generate exercises/ from solutions/")
    p_rel.add_argument("assignments", nargs="*", help="assignment names (default: all)")

    p_grade = sub.add_parser(
        "grade",
        help="grade a class: import, autograde in a sandbox, feedback, grades.csv, summary",
        description="SUBMISSIONS: an nbgrader submitted/ tree (STUDENT/ASSIGNMENT/*.ipynb), "
        "a folder per student (Moodle's 'Name_123_assignsubmission_file_' too), a flat folder "
        "of STUDENT.ipynb / STUDENT_NOTEBOOK.ipynb / NOTEBOOK_STUDENT.ipynb, Canvas "
        "(login_123_456_NOTEBOOK.ipynb) or Blackboard (..._login_attempt_DATE_NOTEBOOK.ipynb) "
        "files, or a .zip of any of these.",
    )
    p_grade.add_argument("assignment", help="assignment name (a folder of solutions/)")
    p_grade.add_argument("submissions", type=Path, help="folder or .zip of submissions")
    p_grade.add_argument(
        "--out", type=Path, default=None, help="output folder (default: COURSE/grading)"
    )
    p_grade.add_argument(
        "--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite in --out)"
    )
    p_grade.add_argument(
        "--workers", type=int, default=None, help="parallel workers (default: cores)"
    )
    p_grade.add_argument(
        "--unsafe", action="store_true", help="no sandbox: student code gets your rights"
    )
    p_grade.add_argument(
        "--force", action="store_true", help="regrade even unchanged, graded submissions"
    )
    add_limit_arguments(p_grade)
    p_grade.add_argument(
        "--cpu", type=int, default=None, help="CPU seconds per kernel (default: notebook timeout)"
    )
    p_grade.add_argument(
        "--max-output", type=float, default=4.0, help="MiB of output kept per cell (default 4)"
    )
    p_grade.add_argument(
        "--disk",
        type=int,
        default=256,
        help="MiB a submission may write, working folder and /tmp together (default 256)",
    )
    p_grade.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="grade on a Dask cluster: its scheduler (tcp://HOST:8786) or local:N "
        "(N worker processes started here); --workers is then unused",
    )
    p_grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_grade.add_argument(
        "--allow-missing-feedback",
        action="store_true",
        help="exit 0 even when some feedback pages were withheld (they would show hidden "
        "tests, or were not made); without it such a run exits with status 1",
    )

    p_rep = sub.add_parser("report", help="rebuild grades.csv and the summary from the gradebook")
    p_rep.add_argument(
        "--out", type=Path, default=None, help="output folder (default: COURSE/grading)"
    )
    p_rep.add_argument("--db", default=None, help="gradebook URL (default: sqlite in --out)")

    p_sim = sub.add_parser(
        "similarity",
        help="rank pairs of students by shared answer code: a CSV and a side-by-side page",
    )
    p_sim.add_argument("assignment", help="assignment name (a folder of exercises/ or solutions/)")
    p_sim.add_argument("submissions", type=Path, help="folder or .zip of submissions")
    p_sim.add_argument(
        "--out", type=Path, default=None, help="output folder (default: COURSE/grading/similarity)"
    )
    p_sim.add_argument(
        "--grades", type=Path, default=None, help="grades.csv (default: COURSE/grading/grades.csv)"
    )
    p_sim.add_argument(
        "--threshold", type=float, default=0.8, help="flag pairs at or above it (default 0.8)"
    )
    p_sim.add_argument("--top", type=int, default=20, help="pairs shown on the page (default 20)")

    from autograder.gradescope import add_parser as add_gradescope

    add_gradescope(sub)
    from autograder.export import add_parser as add_export

    add_export(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    course = args.course.resolve()
    if args.command == "release":
        for path in release(course, args.assignments or None):
            print(f"released {path.relative_to(course)}")
        return 0

    if args.command == "similarity":
        from autograder.similarity_report import main as similarity

        a = args
        return similarity(course, a.assignment, a.submissions, a.out, a.grades, a.threshold, a.top)

    if args.command == "export":
        from autograder.export import main as export_main

        return export_main(args, course)

    if args.command == "gradescope":
        from autograder.gradescope import command

        return command(args, course)

    from autograder.course import tool_env

    tool_env()
    out = (args.out or course / "grading").resolve()
    if args.command == "report":
        from autograder.report import write_reports

        db = args.db or f"sqlite:///{out / 'gradebook.db'}"
        if not args.db and not (out / "gradebook.db").exists():
            print(f"autograder: no gradebook at {out / 'gradebook.db'}", file=sys.stderr)
            return 2
        for kind, path in write_reports(out, db).items():
            print(f"wrote {kind}: {path}")
        return 0

    from autograder.grade import grade
    from autograder.runner_dask import ClusterError
    from autograder.sandbox import Limits, SandboxUnavailable

    limits = Limits(
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.notebook_timeout,
        memory_mb=args.memory,
        cpu_seconds=args.cpu or args.notebook_timeout,
        max_processes=args.max_processes,
        output_mb=args.max_output,
        disk_mb=args.disk,
    )
    if limits.disk_mb < 1:
        print("autograder: --disk must be at least 1 (MiB)", file=sys.stderr)
        return 2
    try:
        run = grade(
            course,
            args.assignment,
            args.submissions,
            out=out,
            db_url=args.db,
            workers=args.workers,
            unsafe=args.unsafe,
            limits=limits,
            progress=not args.no_progress,
            force=args.force,
            cluster=args.cluster,
        )
    except ClusterError as exc:
        print(f"autograder: cluster: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        print(f"autograder: refusing to grade: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    counts: dict[str, int] = {}
    for r in run.results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(
        f"graded {len(run.results) - len(run.skipped)}, unchanged {len(run.skipped)}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    print(f"gradebook: {run.db_url}")
    print(f"grades:    {run.out / 'grades.csv'}")
    print(f"summary:   {run.out / 'summary.md'}, {run.out / 'summary.png'}")
    from autograder.report import feedback_state

    published = [r for r in run.results if r.get("feedback")]
    withheld = [r for r in run.results if feedback_state(r).startswith("withheld")]
    for r in withheld:
        why = feedback_state(r).split(":", 1)[1].strip()
        print(f"warning: feedback withheld for {r['student']}: {why}", file=sys.stderr)
    where = f"{run.out / 'feedback'}/STUDENT/{args.assignment}/"
    if published:
        n = len(published)
        line = f"feedback:  {where} ({n} student{'' if n == 1 else 's'}"
    else:
        line = "feedback:  none (no page was published"
    if withheld:
        line += f"; withheld for {len(withheld)}: see the feedback column of grades.csv"
    print(line + ")")
    if withheld and not args.allow_missing_feedback:
        print(
            "autograder: some feedback was withheld; pass --allow-missing-feedback to accept that",
            file=sys.stderr,
        )
        return 1
    return 0
