"""Check a submitted notebook before grading: readable, and every nbgrader cell in place.

Cells are matched to the released notebook by ``grade_id``. A deleted cell is put
back (a test cell from the source, an answer cell as the released stub) and reported
as ``missing_cells``; a test or locked cell that was edited, retyped or stripped of
its metadata is restored and reported as ``tampered_cells``. Nothing is silently 0.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field

import nbformat
from nbformat.notebooknode import NotebookNode


@dataclass
class CheckResult:
    """A checked notebook (``None`` when unreadable) and what was found."""

    notebook: NotebookNode | None
    issues: list[tuple[str, str]] = field(default_factory=list)


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def nbgrader_meta(cell: NotebookNode) -> dict:
    """A cell's nbgrader metadata (empty when missing or not a mapping)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _is_protected(meta: dict) -> bool:
    """Cells a student must not change: tests (grade without solution) and locked cells."""
    return bool(meta.get("locked")) or (bool(meta.get("grade")) and not meta.get("solution"))


def read_notebook(data: bytes) -> tuple[NotebookNode | None, str]:
    """Parse a submitted file; return the notebook or ``None`` and a one-line reason."""
    if not data.strip():
        return None, "the file is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        # json's messages end where the position goes ("Unterminated string starting at").
        return None, f"not valid JSON: {exc.msg}: line {exc.lineno} column {exc.colno}"
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        return None, "JSON but not a notebook (no 'cells' list or 'nbformat' version)"
    if raw["nbformat"] > 4 or (raw["nbformat"] == 4 and "cells" not in raw):
        return None, "JSON but not a notebook (no 'cells' list or 'nbformat' version)"
    if raw["nbformat"] < 4 and not ("worksheets" in raw or "cells" in raw):
        return None, f"JSON but not a notebook (nbformat {raw['nbformat']} without worksheets)"
    try:
        # Older notebooks (nbformat 3, its worksheets and heading cells) are upgraded.
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001  (nbformat raises several kinds)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"not a valid notebook: {first[:160]}"
    return nb, ""


def check_notebook(data: bytes, release: NotebookNode) -> CheckResult:
    """Check and repair one submitted notebook against its released version."""
    nb, why = read_notebook(data)
    if nb is None:
        return CheckResult(None, [("invalid_notebook", why)])

    missing: list[str] = []
    tampered: list[str] = []
    by_id: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid and gid not in by_id:
            by_id[gid] = i

    cells = list(nb.cells)
    placed: list[int] = []  # positions (in ``cells``) of release cells already matched
    used: set[int] = set(by_id.values())
    for rcell in release.cells:
        rmeta = nbgrader_meta(rcell)
        gid = rmeta.get("grade_id")
        if not gid:
            continue
        fresh = copy.deepcopy(rcell)
        fresh["id"] = "restored-" + re.sub(r"[^A-Za-z0-9_-]", "-", gid)[:54]
        if gid in by_id:
            pos = by_id[gid]
            cell = cells[pos]
            if cell.cell_type != rcell.cell_type:
                tampered.append(f"{gid} (changed to {cell.cell_type})")
                cells[pos] = _with_id(fresh, cell)
            elif _is_protected(rmeta) and _norm(cell.source) != _norm(rcell.source):
                tampered.append(f"{gid} (edited)")
                cells[pos] = _with_id(fresh, cell)
            elif nbgrader_meta(cell) != rmeta:
                # Flags or points changed by hand: nbgrader restores them; say so.
                tampered.append(f"{gid} (metadata edited)")
                cell.metadata["nbgrader"] = copy.deepcopy(rmeta)
            placed.append(pos)
            continue
        # Not found by id: the same text with its metadata stripped, or deleted.
        twin = next(
            (
                j
                for j, c in enumerate(cells)
                if j not in used
                and not nbgrader_meta(c).get("grade_id")
                and c.cell_type in ("code", "markdown", "raw")
                and _norm(c.source) == _norm(rcell.source)
                and _norm(rcell.source)
            ),
            None,
        )
        if twin is not None:
            tampered.append(f"{gid} (nbgrader metadata removed)")
            cells[twin] = _with_id(fresh, cells[twin])
            used.add(twin)
            placed.append(twin)
            continue
        missing.append(gid)
        at = (max(placed) + 1) if placed else 0
        cells.insert(at, fresh)
        # Shift the recorded positions at or after the insertion point.
        by_id = {k: (v + 1 if v >= at else v) for k, v in by_id.items()}
        used = {u + 1 if u >= at else u for u in used} | {at}
        placed = [p + 1 if p >= at else p for p in placed] + [at]

    if nb.get("nbformat_minor", 5) < 5:
        for c in cells:
            c.pop("id", None)
    # nbgrader cells the release does not have (copied by hand, or from an older version
    # of the assignment) would make nbgrader reject the whole notebook: make them plain.
    known = {nbgrader_meta(c).get("grade_id") for c in release.cells} - {None}
    seen: set[str] = set()
    for cell in cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        gid = meta.get("grade_id")
        if gid in known and gid not in seen:
            seen.add(gid)
            continue
        if meta.get("grade") and gid not in known:
            tampered.append(f"{gid or 'a cell'} (unknown grade cell, not graded)")
        cell.metadata.pop("nbgrader", None)
    nb.cells = cells
    issues = []
    if tampered:
        issues.append(("tampered_cells", "restored from the source: " + ", ".join(tampered)))
    if missing:
        issues.append(
            ("missing_cells", "deleted cells restored from the source: " + ", ".join(missing))
        )
    return CheckResult(nb, issues)


def _with_id(fresh: NotebookNode, old: NotebookNode) -> NotebookNode:
    if "id" in old:
        fresh["id"] = old["id"]
    return fresh
