"""Command line: `autograder release` (more commands are added by the grading pipeline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.release import release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__)
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_rel = sub.add_parser("release", help="generate exercises/ from solutions/")
    p_rel.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    args = parser.parse_args(argv)
    if args.command == "release":
        for path in release(args.course, args.assignments or None):
            print(f"released {path.relative_to(args.course.resolve())}")
    return 0
