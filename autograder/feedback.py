"""Remove hidden tests from a graded notebook before its feedback page is made (nbgrader #917).

What is secret is decided on code, not on raw text. The hidden blocks of the source
notebook (between the ``BEGIN HIDDEN TESTS`` and ``END HIDDEN TESTS`` markers) are cut
into statements (logical lines: a call written over several lines is one statement,
a loop's header is one, comments are dropped), and each statement is compared as a
sequence of tokens. A hidden statement is a secret unless its tokens also occur in
code or text the student sees anyway: the released notebook, and the visible part of
the graded notebook (their own answers included). So a visible
``def _check_masks(model, X, label):`` does not make a hidden
``_check_masks(_planted(...), _X, "...")`` call a leak, nor the reverse.

Besides statements, every hidden source line that is long enough to say something
and is not shown elsewhere is a secret *line*: it is matched as a whole line, which
catches a traceback that shows only part of a long hidden call. The marker lines
themselves are secret too.

Scrubbing replaces only the output lines that show hidden material: traceback lines
whose line number falls in a hidden block of the cell they quote, and any line of a
traceback, printed text or error message that shows a secret statement or line. The
student's own code, the visible test lines and the assertion messages stay. A last
check on the rendered HTML uses the same rules; a page that fails it is not published.
"""

from __future__ import annotations

import bisect
import html
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass, field

from nbformat.notebooknode import NotebookNode

from autograder.checks import nbgrader_meta

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TAG = re.compile(r"<[^>]+>")
NOTE = "[hidden test removed]"
BEGIN = "BEGIN HIDDEN TESTS"
END = "END HIDDEN TESTS"
# Words, numbers and single other characters; whitespace between them does not count.
TOKEN = re.compile(r"[^\W\d]\w*|\d[\w.]*|\S")
# IPython's traceback context lines: "      5 code" and "----> 7 code".
GUTTER = re.compile(r"^(?:\s*|-+>\s*)\d+(?: |$)")
FRAME = re.compile(r"Cell In\[(\d+)\], line \d+")
# A statement or line needs this many tokens to be a secret (`)`, `_X,` or `else:` are not).
MIN_TOKENS = 3
# Output types that hold pictures, not text.
BINARY = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")


def hidden_markers(config: dict) -> tuple[str, str]:
    """The hidden-test markers a course configures (nbgrader's ClearHiddenTests), or the defaults.

    ``config`` holds nbgrader config sections, as ``autograder.grade.course_config`` returns.
    """
    cfg = config.get("ClearHiddenTests", {})
    return cfg.get("begin_test_delimeter", BEGIN), cfg.get("end_test_delimeter", END)


def tokens(text: str) -> list[str]:
    """The tokens of a piece of code or text, whitespace and ANSI colours ignored."""
    return TOKEN.findall(ANSI.sub("", text))


def _key(toks: list[str]) -> str:
    return " ".join(toks)


def _cell_name(cell: NotebookNode, index: int) -> str:
    return nbgrader_meta(cell).get("grade_id") or f"cell {index}"


def hidden_ranges(source: str, begin: str = BEGIN, end: str = END) -> list[tuple[int, int]]:
    """The hidden blocks of a cell as (first, last) line indexes, 0-based, markers included."""
    out, start = [], None
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if start is None and begin in line:
            start = i
        elif start is not None and end in line:
            out.append((start, i))
            start = None
    if start is not None:  # no end marker: hidden to the end of the cell
        out.append((start, len(lines) - 1))
    return out


def hidden_blocks(
    nb: NotebookNode, begin: str = BEGIN, end: str = END
) -> list[tuple[str, list[str]]]:
    """Each hidden block of a notebook as (cell name, its lines without the markers)."""
    out = []
    for i, cell in enumerate(nb.cells):
        if begin not in cell.get("source", ""):
            continue
        lines = cell.source.splitlines()
        for first, last in hidden_ranges(cell.source, begin, end):
            body = [ln for ln in lines[first + 1 : last + 1] if end not in ln]
            out.append((_cell_name(cell, i), body))
    return out


def hidden_lines(
    source_nb: NotebookNode, begin: str = BEGIN, end: str = END
) -> dict[str, list[str]]:
    """Hidden-test lines of each cell of a source notebook, keyed by ``grade_id``."""
    out: dict[str, list[str]] = {}
    for name, body in hidden_blocks(source_nb, begin, end):
        out.setdefault(name, []).extend(body)
    return out


def statements(code: str) -> list[str]:
    """The logical lines of a piece of Python code, comments removed, as written.

    A statement written over several lines is one; a compound statement's header
    (``for _t in range(6):``) is one and each statement of its body another. Code that
    does not tokenize (a block cut out of a larger statement) falls back to its lines.
    """
    src = textwrap.dedent(code)
    rows = src.splitlines(keepends=True)
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        return [ln.strip() for ln in src.splitlines() if ln.strip()]
    out: list[str] = []
    start: tuple[int, int] | None = None
    comments: dict[int, int] = {}  # row -> column where its comment starts
    skip = (tokenize.ENCODING, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    for tok in toks:
        if tok.type in skip or (tok.type == tokenize.NL and start is None):
            continue
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.start[1]
            continue
        if start is None:
            start = tok.start
        if tok.type == tokenize.NEWLINE:
            (r0, c0), (r1, c1) = start, tok.start
            parts = []
            for r in range(r0, r1 + 1):
                line = rows[r - 1] if r - 1 < len(rows) else ""
                lo = c0 if r == r0 else 0
                hi = c1 if r == r1 else len(line)
                hi = min(hi, comments.get(r, hi))
                parts.append(line[lo:hi])
            text = "".join(parts).strip()
            if text:
                out.append(text)
            start, comments = None, {}
    return out


def _enough(toks: list[str]) -> bool:
    return len(toks) >= MIN_TOKENS and any(t[0].isalnum() or t[0] == "_" for t in toks)


def strip_hidden(source: str, begin: str = BEGIN, end: str = END) -> str:
    """A cell's source with each hidden block replaced by a one-line note."""
    ranges = hidden_ranges(source, begin, end)
    if not ranges:
        return source
    lines = source.splitlines()
    out, at = [], 0
    for first, last in ranges:
        out += lines[at:first]
        line = lines[first]
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}# {NOTE}")
        at = last + 1
    out += lines[at:]
    return "\n".join(out)


@dataclass
class Secrets:
    """What a feedback page must not show, and how to find it in text."""

    statements: dict[str, str] = field(default_factory=dict)  # token key -> statement
    lines: dict[str, str] = field(default_factory=dict)  # token key -> hidden line
    markers: tuple[str, ...] = (BEGIN, END)
    _need_cache: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.statements or self.lines)

    def find(self, lines: list[str]) -> set[int]:
        """Indexes of the lines that show hidden material (a statement may span lines).

        Each line is read three ways: as it is, without a traceback's line-number
        gutter, and without that and a trailing ``#`` comment; a match in any counts.
        """
        plain = [ANSI.sub("", ln) for ln in lines]
        hit = {i for i, ln in enumerate(plain) if any(m in ln for m in self.markers)}
        if not self:
            return hit
        as_is = [TOKEN.findall(ln) for ln in plain]
        stripped, uncommented = [], []
        for ln, toks in zip(plain, as_is):
            bare = GUTTER.sub("", ln, count=1)
            stripped.append(toks if bare == ln else TOKEN.findall(bare))
            code = bare.split("#", 1)[0]
            uncommented.append(stripped[-1] if code == bare else TOKEN.findall(code))
        seen = {t for toks in as_is for t in toks}
        wanted = [k for k, need in self._needs.items() if need <= seen]
        keys: dict[int, str] = {}  # id of a token list -> its key (the variants share lists)
        for per_line in (stripped, uncommented, as_is):
            line_keys = []
            for i, toks in enumerate(per_line):
                key = keys.get(id(toks))
                if key is None:
                    key = keys[id(toks)] = _key(toks)
                line_keys.append(key)
                if key and key in self.lines:
                    hit.add(i)
            if not wanted:
                continue
            starts, parts, pos = [], [], 1
            for part in line_keys:
                starts.append(pos)
                if part:
                    parts.append(part)
                    pos += len(part) + 1
            stream = " " + " ".join(parts) + " "
            for key in wanted:
                needle = f" {key} "
                at = stream.find(needle)
                while at >= 0:
                    first = bisect.bisect_right(starts, at + 1) - 1
                    last = bisect.bisect_right(starts, at + len(key)) - 1
                    hit.update(range(first, last + 1))
                    at = stream.find(needle, at + 1)
        return hit

    @property
    def _needs(self) -> dict[str, frozenset[str]]:
        """Each secret statement's tokens: a text without one of them cannot show it."""
        if len(self._need_cache) != len(self.statements):
            self._need_cache = {k: frozenset(k.split(" ")) for k in self.statements}
        return self._need_cache

    def shows(self, text: str) -> bool:
        """Whether a piece of text shows hidden material."""
        return bool(self.find(text.split("\n")))

    def scrub(self, text: str, extra: set[int] | None = None) -> str:
        """Text with each line that shows hidden material (or is in ``extra``) replaced.

        A run of such lines becomes one note.
        """
        lines = text.split("\n")
        hit = self.find(lines) | (extra or set())
        if not hit:
            return text
        out: list[str] = []
        for i, line in enumerate(lines):
            if i not in hit:
                out.append(line)
            elif not (out and out[-1] == NOTE and i - 1 in hit):
                out.append(NOTE)
        return "\n".join(out)

    def leaks(self, page: str) -> list[str]:
        """The hidden statements, lines or markers a rendered HTML page shows (empty when clean).

        The page is read as its text (tags removed) and as its markup (so nothing in an
        attribute or a script escapes the check).
        """
        found: list[str] = []
        for text in (html.unescape(TAG.sub("", page)), html.unescape(page)):
            lines = text.split("\n")
            for i in sorted(self.find(lines)):
                shown = lines[i].strip()
                if shown not in found:
                    found.append(shown)
        return found


def _visible_text(nbs: list[NotebookNode], begin: str, end: str) -> tuple[str, set[str]]:
    """What a student sees of some notebooks' sources: one token stream, and each line's key."""
    cells, lines = [], set()
    for nb in nbs:
        for cell in nb.cells:
            src = strip_hidden(cell.get("source", ""), begin, end)
            toks = tokens(src)
            if toks:
                cells.append(_key(toks))
            for ln in src.splitlines():
                t = tokens(ln)
                if t:
                    lines.add(_key(t))
    return " " + " \x00 ".join(cells) + " ", lines


def secrets(
    source_nb: NotebookNode,
    release_nb: NotebookNode,
    graded_nb: NotebookNode | None = None,
    begin: str = BEGIN,
    end: str = END,
) -> Secrets:
    """The hidden statements and lines of ``source_nb`` that the student cannot otherwise see.

    What the student sees: every cell of the released notebook and the visible part of
    the graded notebook (their own answers included).
    """
    visible, visible_lines = _visible_text(
        [release_nb] + ([graded_nb] if graded_nb is not None else []), begin, end
    )
    found = Secrets(markers=(begin, end))
    for _name, body in hidden_blocks(source_nb, begin, end):
        for stmt in statements("\n".join(body)):
            toks = tokens(stmt)
            key = _key(toks)
            if _enough(toks) and f" {key} " not in visible:
                found.statements.setdefault(key, stmt)
        for line in body:
            toks = tokens(line)
            key = _key(toks)
            if _enough(toks) and key not in visible_lines and f" {key} " not in visible:
                found.lines.setdefault(key, line.strip())
    return found


def _hidden_rows(nb: NotebookNode, begin: str, end: str) -> dict[int, set[int]]:
    """Per execution count, the 1-based line numbers of the hidden blocks of that cell."""
    rows: dict[int, set[int]] = {}
    for cell in nb.cells:
        count = cell.get("execution_count")
        if cell.get("cell_type") != "code" or not count or begin not in cell.source:
            continue
        rows[count] = {
            n + 1
            for first, last in hidden_ranges(cell.source, begin, end)
            for n in range(first, last + 1)
        }
    return rows


def _traceback_rows(frame: str, hidden: dict[int, set[int]]) -> set[int]:
    """Lines of a traceback entry that quote a hidden line of a notebook cell, by line number."""
    out, rows = set(), None
    for i, line in enumerate(frame.split("\n")):
        plain = ANSI.sub("", line)
        m = FRAME.search(plain)
        if m:
            rows = hidden.get(int(m.group(1)))
            continue
        g = GUTTER.match(plain)
        if rows and g:
            number = int(re.search(r"\d+", g.group(0)).group(0))
            if number in rows:
                out.add(i)
    return out


def scrub_notebook(
    nb: NotebookNode, secret: Secrets, begin: str = BEGIN, end: str = END
) -> NotebookNode:
    """Remove hidden tests from the sources and outputs of a graded notebook, in place."""
    hidden = _hidden_rows(nb, begin, end)
    for cell in nb.cells:
        if begin in cell.get("source", ""):
            cell.source = strip_hidden(cell.source, begin, end)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = secret.scrub(out["text"])
            if "traceback" in out:
                out["traceback"] = [
                    secret.scrub(t, _traceback_rows(t, hidden)) for t in out["traceback"]
                ]
            if "evalue" in out:
                out["evalue"] = secret.scrub(str(out["evalue"]))
            data = out.get("data", {})
            for key, value in list(data.items()):
                if key in BINARY:
                    continue
                if isinstance(value, list):
                    value = "".join(value)
                if isinstance(value, str):
                    data[key] = secret.scrub(value)
    return nb


def leaked_lines(page: str, secret: Secrets) -> list[str]:
    """Hidden statements or lines still visible in a rendered HTML page (empty when clean)."""
    return secret.leaks(page)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell_message(cell: NotebookNode, secret: Secrets, limit: int = 300) -> str | None:
    """A cell's first error in one line ("AssertionError: expected …, got …"); None if none.

    The message is the scrubbed notebook's; one that still shows hidden material is
    replaced by the exception's name.
    """
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    real = [o for o in errors if o.get("ename") != "GradingStopped"]
    if not real:  # the grader's own note: "this cell did not run: ..."
        return _one_line(str(errors[0].get("evalue", "")) or "this cell did not run", limit)
    ename, evalue = str(real[0].get("ename", "")), str(real[0].get("evalue", ""))
    text = _one_line(f"{ename}: {evalue}" if evalue.strip() else ename, limit)
    if secret.shows(text):
        text = f"{ename} (its message showed hidden test code)"
    return text


def summary_rows(
    nb: NotebookNode, grades: dict[str, dict], secret: Secrets
) -> list[tuple[str, float, float, str]]:
    """Each graded cell of a graded notebook: (grade_id, points, max points, result)."""
    rows = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if not meta.get("grade") or not gid:
            continue
        g = grades.get(gid, {})
        top = float(g.get("max_score", meta.get("points", 0.0)) or 0.0)
        got = float(g.get("auto_score", 0.0) or 0.0)
        message = cell_message(cell, secret)
        if message is None:
            if g.get("needs_manual_grade"):
                message = "to be graded by hand"
            elif got >= top:
                message = "passed"
            else:
                message = "no points (no error shown)"
        rows.append((gid, got, top, message))
    return rows


def summary_cell(nb: NotebookNode, grades: dict[str, dict], secret: Secrets) -> NotebookNode:
    """A Markdown cell for the top of the page: each graded cell, its points and its result."""
    from nbformat.v4 import new_markdown_cell

    esc = html.escape
    parts = [
        # Room between the columns: the page's theme gives table cells no padding.
        "<style>.ag-summary th, .ag-summary td {padding: 0.15em 1.2em 0.15em 0;"
        " text-align: left; vertical-align: top}</style>",
        '<div class="ag-summary">',
        '<table class="tex2jax_ignore"><tr><th>graded cell</th><th>points</th><th>result</th></tr>',
    ]
    for gid, got, top, message in summary_rows(nb, grades, secret):
        parts.append(
            f'<tr><td><a href="#{esc(gid)}">{esc(gid)}</a></td><td>{got:g} / {top:g}</td>'
            f"<td>{esc(message)}</td></tr>"
        )
    parts.append("</table></div>")
    cell = new_markdown_cell("### Summary\n\n" + "".join(parts))
    if nb.get("nbformat_minor", 5) < 5:
        cell.pop("id", None)
    return cell
