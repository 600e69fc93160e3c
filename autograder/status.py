"""A graded submission's status and its one-line reason, from everything grading found.

The status is the most severe finding (:data:`STATUS_ORDER`); the reason names every
finding, then the graded cells that failed and the other cells that raised.
"""

from __future__ import annotations

from typing import Any

import nbformat

from autograder.sandbox import Limits

# Most severe first: a submission's status is the first of these that applies.
STATUS_ORDER = [
    "invalid_notebook",
    "ambiguous_submission",
    "grader_error",
    "timeout",
    "memory_limit",
    "disk_limit",
    "kernel_died",
    "output_limit",
    "process_limit",
    "exit_called",
    "tampered_cells",
    "missing_cells",
    "uses_test_code",
    "ok",
]


def _errors(nb: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i}"
                out.append((name, o.get("ename", ""), str(o.get("evalue", ""))))
    return out


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_errors(nb: nbformat.NotebookNode) -> list[tuple[str, bool, str, str]]:
    """Each cell that raised: (name, whether it is graded, exception name, message).

    A cell's first error counts; "did not run" notes (GradingStopped) are left out.
    """
    out = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") != "GradingStopped":
                name = meta.get("grade_id") or f"cell {i}"
                out.append(
                    (name, bool(meta.get("grade")), o.get("ename", ""), str(o.get("evalue", "")))
                )
                break
    return out


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _failures(graded: dict[str, nbformat.NotebookNode], messages: bool = True) -> str:
    """The graded cells that failed, each by its grade_id, then the other cells that raised.

    Every failing cell is named; with many, each message is cut shorter.
    """
    failed, other = [], []
    for nb in graded.values():
        for name, is_graded, ename, evalue in _cell_errors(nb):
            (failed if is_graded else other).append((name, ename, evalue))
    if not failed and not other:
        return ""
    per = max(24, min(160, 600 // (len(failed) + len(other))))

    def say(name: str, ename: str, evalue: str) -> str:
        if not messages:
            return _short(name)
        what = f"{ename}: {evalue}" if evalue.strip() else ename
        return f"{_short(name)} ({one_line(what, max(per, len(ename) + 2))})"

    parts = []
    if failed:
        parts.append("graded cells failed: " + ", ".join(say(*f) for f in failed))
    if other:
        parts.append("other cells raised: " + ", ".join(say(*f) for f in other))
    return "; ".join(parts)


def classify(
    issues: list[tuple[str, str]],
    events: dict[str, Any],
    graded: dict[str, nbformat.NotebookNode],
    limits: Limits | None = None,
) -> tuple[str, str]:
    """Pick a status and write a one-line reason from everything that was found."""
    limits = limits or Limits()
    found: list[tuple[str, str]] = list(issues)
    for _name, ev in events.items():
        if ev.get("fatal"):
            f = ev["fatal"]
            where = f" (in {f['cell']})" if f.get("cell") else ""
            found.append((f["status"], f"{f['reason']}{where}"))
        if ev.get("timeouts"):
            found.append(
                (
                    "timeout",
                    "cell(s) interrupted after the time limit: " + ", ".join(ev["timeouts"]),
                )
            )
        if ev.get("truncated"):
            found.append(("output_limit", "output truncated in: " + ", ".join(ev["truncated"])))
        if limits.max_processes and ev.get("peak_tasks", 0) >= limits.max_processes:
            found.append(
                (
                    "process_limit",
                    f"the kernel's processes and threads reached the limit of "
                    f"{limits.max_processes}",
                )
            )
    errors = [e for nb in graded.values() for e in _errors(nb)]
    for cell, ename, _evalue in errors:
        if "MemoryError" in ename:
            found.append(
                ("memory_limit", f"{cell} ran out of memory ({ename}) under the memory limit")
            )
            break
    for cell, ename, evalue in errors:
        if "File too large" in evalue:
            per_file = min(limits.file_size_mb, limits.disk_mb) or limits.file_size_mb
            found.append(
                (
                    "disk_limit",
                    f"{cell} wrote a file over the limit of {per_file} MiB per file "
                    f"({ename}: {one_line(evalue, 80)})",
                )
            )
            break
    for cell, ename, evalue in errors:
        if (ename == "BlockingIOError" and "temporarily unavailable" in evalue) or (
            ename == "RuntimeError" and "can't start new thread" in evalue
        ):
            found.append(
                ("process_limit", f"{cell} hit the limit on processes ({ename}: {evalue})")
            )
            break
    for cell, ename, evalue in errors:
        if ename == "SystemExit":
            found.append(("exit_called", f"{cell} called sys.exit({evalue}); the kernel went on"))
            break
    failures = _failures(graded)
    if not found:
        if failures:
            return "ok", "ran to the end; " + failures
        return "ok", "ran to the end without errors"
    found.sort(key=lambda sr: STATUS_ORDER.index(sr[0]) if sr[0] in STATUS_ORDER else 0)
    status = found[0][0]
    seen: list[str] = []
    for _, reason in found:
        if reason not in seen:
            seen.append(reason)
    reason = one_line("; ".join(seen), 300)
    if status == "uses_test_code" and failures:
        return status, f"{reason}; {failures}"  # the run was otherwise normal: say it all
    failures = _failures(graded, messages=False)
    return status, f"{reason}; {failures}" if failures else reason
