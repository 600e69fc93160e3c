"""What the course computes, in one JSON file: every glued value and the reference grades.

A restructuring of the library or the autograder must not change what a reader or a
student receives. Take a snapshot before and after and compare::

    python scripts/snapshot.py take -o before.json      # on the old commit
    python scripts/snapshot.py take -o after.json       # on the new one
    python scripts/snapshot.py compare before.json after.json

``take`` executes every chapter of ``book/`` (as the book build does: static
explorers, fixed seeds) and records each ``glue`` call's text; then it grades, per
assignment, the solution notebook and the untouched release as a two-student class in
the sandbox and records every graded cell's points. ``compare`` lists every value
that differs and exits 1 if any does, except the values that measure wall-clock time
(``VOLATILE``): those differ between any two runs and are listed apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLUE_MIME = "application/papermill.record/text/plain"

# Glued keys that measure the machine at that moment, not what the code computes: times
# (seconds, nanoseconds per element, a ratio of epoch times, which activation ran
# fastest) and the device description with the thread count chosen from the load.
VOLATILE = re.compile(
    r"^(sym_seconds|sgd_seconds|rd_sweep_s|tx_seconds|t_shallow|t_deep|ms_(fast|slow|ratio)_.*"
    r"|relu_ns|gelu_ns|norm_cost|\w+_device)$"
)


def chapters() -> list[Path]:
    return sorted(p for p in (ROOT / "book").glob("ch*.md"))


def glued_values(chapter: Path, timeout: int = 900) -> dict[str, str]:
    """Execute one chapter as the book does and return its glued values as text."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(chapter)
    os.environ["ACTLAB_STATIC"] = "1"
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(chapter.parent)}},
    ).execute()
    values: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if not name:
                continue
            if GLUE_MIME in data:
                values[name] = data[GLUE_MIME]
            else:  # a glued figure or other object: its bytes, as a digest
                records = sorted(k for k in data if k.startswith("application/papermill.record/"))
                blob = json.dumps([data[k] for k in records], sort_keys=True).encode()
                values[name] = "sha256:" + hashlib.sha256(blob).hexdigest()
    return values


def reference_grades(workers: int) -> dict[str, dict[str, object]]:
    """Each assignment's solution and blank release, graded as a class in the sandbox."""
    from autograder.grade import grade

    out: dict[str, dict[str, object]] = {}
    for solution in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        assignment = solution.parent.name
        with tempfile.TemporaryDirectory() as tmp:
            incoming = Path(tmp) / "incoming"
            for student, source in (
                ("reference", solution),
                ("release", ROOT / "exercises" / assignment / solution.name),
            ):
                (incoming / student).mkdir(parents=True)
                shutil.copy(source, incoming / student / solution.name)
            run = grade(
                ROOT, assignment, incoming, out=Path(tmp) / "out", workers=workers, progress=False
            )
        for result in run.results:
            cells = {
                gid: fields.get("score")
                for notebook in result["grades"].values()
                for gid, fields in sorted(notebook.items())
            }
            out[f"{assignment}/{result['student']}"] = {
                "status": result["status"],
                "score": result["score"],
                "max_score": result["max_score"],
                "cells": cells,
            }
    return dict(sorted(out.items()))


def take(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    selected = [c for c in chapters() if not args.chapter or c.stem in args.chapter]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        glued = dict(zip((c.stem for c in selected), pool.map(glued_values, selected)))
    snapshot = {"glued": glued, "grades": {} if args.no_grades else reference_grades(args.jobs)}
    args.output.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in glued.values())
    print(
        f"{n} glued values from {len(glued)} chapters, {len(snapshot['grades'])} reference grades "
        f"in {time.perf_counter() - start:.0f} s -> {args.output}"
    )
    return 0


def _flatten(snapshot: dict) -> dict[str, object]:
    flat = {}
    for chapter, values in snapshot.get("glued", {}).items():
        for key, value in values.items():
            flat[f"glued {chapter} {key}"] = value
    for who, grade in snapshot.get("grades", {}).items():
        flat[f"grade {who} score"] = (grade["status"], grade["score"], grade["max_score"])
        for gid, points in grade["cells"].items():
            flat[f"grade {who} {gid}"] = points
    return flat


def compare(args: argparse.Namespace) -> int:
    before, after = (_flatten(json.loads(p.read_text())) for p in (args.before, args.after))
    keys = sorted(set(before) | set(after))
    changed, timings = [], []
    for key in keys:
        a, b = before.get(key, "<absent>"), after.get(key, "<absent>")
        if a == b:
            continue
        (
            timings if VOLATILE.match(key.split()[-1]) and key.startswith("glued") else changed
        ).append(f"{key}: {a!r} -> {b!r}")
    glued = sum(k.startswith("glued") for k in keys)
    print(f"{len(keys)} values compared ({glued} glued, {len(keys) - glued} grades)")
    print(f"identical: {len(keys) - len(changed) - len(timings)}")
    print(f"timings and load-dependent values (differ between runs, not compared): {len(timings)}")
    for line in timings:
        print("  " + line)
    print(f"changed: {len(changed)}")
    for line in changed:
        print("  " + line)
    return 1 if changed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("take", help="execute the chapters and grade the references")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--jobs", type=int, default=2, help="chapters executed at once")
    p.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    p.add_argument("--no-grades", action="store_true", help="glued values only")
    p.set_defaults(run=take)
    p = sub.add_parser("compare", help="list what differs between two snapshots")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.set_defaults(run=compare)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
