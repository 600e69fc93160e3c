"""Remove hidden tests from a graded notebook before its feedback HTML is made (nbgrader #917).

The source notebook says which lines are hidden (between the ``BEGIN HIDDEN TESTS`` and
``END HIDDEN TESTS`` markers). They are cut from the cell sources, and any output
line, traceback frame or printed text that repeats one of them is replaced by a note.
A last check on the rendered HTML refuses to publish a page that still shows one.
"""

from __future__ import annotations

import html
import re

from nbformat.notebooknode import NotebookNode

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TAG = re.compile(r"<[^>]+>")
NOTE = "[hidden test removed]"
BEGIN = "BEGIN HIDDEN TESTS"
END = "END HIDDEN TESTS"


def hidden_lines(
    source_nb: NotebookNode, begin: str = BEGIN, end: str = END
) -> dict[str, list[str]]:
    """Hidden-test lines of each cell of a source notebook, keyed by ``grade_id``."""
    out: dict[str, list[str]] = {}
    for cell in source_nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        inside, lines = False, []
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
                continue
            if end in line:
                inside = False
                continue
            if inside:
                lines.append(line)
        if lines:
            out[gid or ""] = lines
    return out


def secrets(
    source_nb: NotebookNode, release_nb: NotebookNode, begin: str = BEGIN, end: str = END
) -> list[str]:
    """Hidden lines worth hiding: long enough to say something, and not also visible.

    A line such as ``)`` or one the released notebook shows anyway is not a secret.
    """
    hidden = {ln.strip() for lines in hidden_lines(source_nb, begin, end).values() for ln in lines}
    visible = {ln.strip() for cell in release_nb.cells for ln in cell.source.splitlines()}
    keep = hidden - visible
    return sorted((ln for ln in keep if len(ln) >= 8 and re.search(r"[A-Za-z0-9]", ln)), key=len)


def _scrub_text(text: str, secrets: list[str]) -> str:
    if not secrets:
        return text
    plain = ANSI.sub("", text)
    if not any(s in plain for s in secrets):
        return text
    out = []
    for line in text.split("\n"):
        if any(s in ANSI.sub("", line) for s in secrets):
            out.append(NOTE)
        else:
            out.append(line)
    return "\n".join(out)


def _strip_source(source: str, begin: str, end: str) -> str:
    out, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# {NOTE}")
            continue
        if end in line:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


def scrub_notebook(
    nb: NotebookNode, secret: list[str], begin: str = BEGIN, end: str = END
) -> NotebookNode:
    """Remove hidden tests from the sources and outputs of a graded notebook, in place."""
    # The markers themselves show up in traceback context lines: hide them too.
    secrets = list(secret) + [begin, end]
    for cell in nb.cells:
        if begin in cell.source:
            cell.source = _strip_source(cell.source, begin, end)
        if secret:
            # A hidden line kept without its markers would still leak: cut it too.
            cell.source = "\n".join(
                ln for ln in cell.source.splitlines() if ln.strip() not in secrets
            )
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _scrub_text(out["text"], secrets)
            if "traceback" in out:
                out["traceback"] = [_scrub_text(t, secrets) for t in out["traceback"]]
            if "evalue" in out:
                out["evalue"] = _scrub_text(out["evalue"], secrets)
            data = out.get("data", {})
            for key, value in list(data.items()):
                if isinstance(value, str) and key.startswith("text/"):
                    data[key] = _scrub_text(value, secrets)
    return nb


def leaked_lines(page: str, secret: list[str]) -> list[str]:
    """Hidden lines still visible in a rendered HTML page (empty when clean)."""
    text = html.unescape(TAG.sub("", page))
    flat = re.sub(r"\s+", " ", text)
    return [s for s in secret if re.sub(r"\s+", " ", s) in flat]
