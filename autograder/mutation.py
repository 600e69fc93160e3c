"""Mutation testing of graded notebooks: do the tests take points from plausible wrong answers?

For every answer cell of an assignment's source notebook, wrong answers are derived
from the solution itself, one change each, the kind of slip a student makes:

* ``sign``: a number negated, ``+`` for ``-`` and back, a unary minus dropped;
* ``off_by_one``: an integer one more or one less, ``range(n)`` one longer or shorter;
* ``boundary``: ``<`` for ``<=``, ``>`` for ``>=`` and back;
* ``axis``: a reduction along the other axis (``axis=``/``dim=`` or a ``.sum(0)``), or along all;
* ``exact``: a small tolerance set to 0, ``isclose``/``allclose`` replaced by exact equality;
* ``list``: the arrays or tensors a function returns handed back as Python lists;
* ``hardcode``: the answer to the first call (the visible example) returned for every call;
* ``stub``: the released stub, untouched;
* ``test_helper``: the answer delegated to a function that the release's test cells define
  (when its arity fits): a visible test must never be an oracle.

Each wrong answer ("mutant") is run the way grading runs it: in a kernel that has run the
notebook with its hidden tests, the answer cell is replaced and every cell after it runs
again in order. The mutant is *killed* when a graded cell fails (an error or a timeout),
and *survives* when every graded cell still passes. A ``list`` mutant whose function never
returned an array, or a mutant whose cell does not even define its function, is
``not_applicable``; a wrapper whose answer cell raised is ``broken``. Survivors are
either killed by a new hidden case or listed, each with why it is acceptable, in an accepted-survivors file; ``python -m autograder.mutation``
writes the report.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from autograder.checks import nbgrader_meta
from autograder.testcode import is_answer_cell, is_test_cell

SOLUTION_BEGIN = "BEGIN SOLUTION"
SOLUTION_END = "END SOLUTION"
REDUCTIONS = {
    "sum",
    "mean",
    "all",
    "any",
    "max",
    "min",
    "argmax",
    "argmin",
    "prod",
    "std",
    "var",
    "cumsum",
    "softmax",
    "log_softmax",
    "norm",
}
TOLERANCE_CALLS = {"isclose", "allclose"}
KINDS = (
    "sign",
    "off_by_one",
    "boundary",
    "axis",
    "exact",
    "list",
    "hardcode",
    "stub",
    "test_helper",
)


@dataclass
class Mutant:
    """One wrong answer: which answer cell, what kind of slip, and the code that makes it."""

    exercise: str  # grade_id of the answer cell
    function: str  # the function it concerns ("" for a cell of plain statements)
    kind: str
    before: str  # the solution's line (or a description for the wrappers)
    after: str  # the same line as the mutant has it
    source: str  # the answer cell as the mutant has it
    wrapper: str = ""  # code run after the cell (the wrappers' kinds)

    @property
    def key(self) -> str:
        """A name that survives edits elsewhere in the notebook: cell, kind and the changed line."""
        return f"{self.exercise} | {self.kind} | {self.before} -> {self.after}"


@dataclass
class Outcome:
    """What running one mutant gave."""

    key: str
    exercise: str
    kind: str
    before: str
    after: str
    status: str  # killed, survived, not_applicable, broken
    cell: str = ""  # the graded cell that killed it
    message: str = ""
    seconds: float = 0.0
    accepted: str = ""  # why a survivor is acceptable (from the accepted-survivors file)


@dataclass
class Report:
    """All mutants of one notebook."""

    assignment: str
    notebook: str
    outcomes: list[Outcome] = field(default_factory=list)
    baseline_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def unexplained(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "survived" and not o.accepted]


def _solution_lines(source: str) -> set[int]:
    """1-based line numbers inside ``BEGIN SOLUTION`` ... ``END SOLUTION`` markers."""
    inside, lines = False, set()
    for n, line in enumerate(source.splitlines(), start=1):
        if SOLUTION_BEGIN in line:
            inside = True
        elif SOLUTION_END in line:
            inside = False
        elif inside:
            lines.add(n)
    return lines


def _offsets(source: str) -> list[int]:
    starts, pos = [0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _span(node: ast.AST, starts: list[int]) -> tuple[int, int]:
    # ast gives column offsets in UTF-8 bytes; the course's answer code is ASCII.
    return (
        starts[node.lineno - 1] + node.col_offset,
        starts[node.end_lineno - 1] + node.end_col_offset,
    )


def _line_of(source: str, start: int) -> tuple[int, int]:
    a = source.rfind("\n", 0, start) + 1
    b = source.find("\n", start)
    return a, (len(source) if b < 0 else b)


def _splice(source: str, span: tuple[int, int], text: str) -> tuple[str, str, str]:
    """The source with ``span`` replaced, and the changed line before and after (stripped)."""
    a, b = span
    new = source[:a] + text + source[b:]
    la, lb = _line_of(source, a)
    before = source[la:lb] if "\n" not in source[a:b] else source[la:b]
    after_end = la + (lb - la) + (len(text) - (b - a))
    after = new[la:after_end]
    return new, " ".join(before.split()), " ".join(after.split())


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _enclosing_functions(tree: ast.AST) -> dict[int, str]:
    """For every node id, the name of the top-level function it is in ("" outside any)."""
    out: dict[int, str] = {}
    for top in ast.iter_child_nodes(tree):
        name = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) else ""
        for node in ast.walk(top):
            out[id(node)] = name
    return out


def _docstring_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
    return skip


def _edits(tree: ast.AST, source: str) -> list[tuple[str, ast.AST, str]]:
    """(kind, node, replacement text) for every single-change slip in the tree."""
    edits: list[tuple[str, ast.AST, str]] = []
    negated: set[int] = set()
    # Negating an index or an axis is mostly the same code (x[1] is x[-1] for a pair, axis 1
    # is axis -1 of a matrix), and -1 in reshape/view is "whatever fits" like any negative:
    # such numbers get only their off-by-one mutants, or none.
    no_sign: set[int] = set()
    no_change: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
        ):
            negated.add(id(node.operand))
        if isinstance(node, ast.Subscript):
            no_sign.update(id(n) for n in ast.walk(node.slice))
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in ("axis", "dim"):
                    no_sign.update(id(n) for n in ast.walk(kw.value))
            name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if name in REDUCTIONS:
                no_sign.update(id(n) for a in node.args for n in ast.walk(a))
            if name in ("reshape", "view"):
                for a in node.args:
                    if isinstance(a, ast.UnaryOp) and isinstance(a.operand, ast.Constant):
                        no_change.update({id(a), id(a.operand)})
    for node in ast.walk(tree):
        if id(node) in no_change:
            continue
        if isinstance(node, ast.Constant) and _number(node.value) and id(node) not in negated:
            v = node.value
            if v != 0 and id(node) not in no_sign:
                edits.append(("sign", node, f"(-{repr(v)})"))
            if isinstance(v, int):
                edits.append(("off_by_one", node, repr(v + 1)))
                edits.append(("off_by_one", node, f"({repr(v - 1)})"))
            elif 0 < abs(v) < 1e-3:
                edits.append(("exact", node, "0.0"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            if id(node) not in no_sign:
                edits.append(("sign", node, f"({ast.get_source_segment(source, node.operand)})"))
            if isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, int):
                v = -node.operand.value
                edits.append(("off_by_one", node, f"({repr(v + 1)})"))
                edits.append(("off_by_one", node, f"({repr(v - 1)})"))
            elif (
                isinstance(node.operand, ast.Constant)
                and _number(node.operand.value)
                and 0 < abs(node.operand.value) < 1e-3
            ):
                edits.append(("exact", node, "0.0"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            flipped = ast.BinOp(
                left=node.left,
                op=ast.Sub() if isinstance(node.op, ast.Add) else ast.Add(),
                right=node.right,
            )
            edits.append(("sign", node, f"({ast.unparse(flipped)})"))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            swap = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
            op = type(node.ops[0])
            if op in swap:
                changed = ast.Compare(
                    left=node.left, ops=[swap[op]()], comparators=node.comparators
                )
                edits.append(("boundary", node, f"({ast.unparse(changed)})"))
        elif isinstance(node, ast.Call):
            edits += _call_edits(node)
    return edits


def _call_edits(node: ast.Call) -> list[tuple[str, ast.AST, str]]:
    edits: list[tuple[str, ast.AST, str]] = []
    fname = (
        node.func.attr
        if isinstance(node.func, ast.Attribute)
        else node.func.id
        if isinstance(node.func, ast.Name)
        else ""
    )
    for i, kw in enumerate(node.keywords):
        if kw.arg in ("axis", "dim"):
            others = [k for j, k in enumerate(node.keywords) if j != i]
            dropped = ast.Call(func=node.func, args=node.args, keywords=others)
            edits.append(("axis", node, ast.unparse(dropped)))
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                other = 1 if kw.value.value in (0, -2) else 0
                moved = ast.Call(
                    func=node.func,
                    args=node.args,
                    keywords=[
                        ast.keyword(arg=k.arg, value=ast.Constant(other)) if j == i else k
                        for j, k in enumerate(node.keywords)
                    ],
                )
                edits.append(("axis", node, ast.unparse(moved)))
    if (
        isinstance(node.func, ast.Attribute)
        and fname in REDUCTIONS
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, int)
        and not node.keywords
    ):
        other = 1 if node.args[0].value in (0, -2) else 0
        moved = ast.Call(func=node.func, args=[ast.Constant(other)], keywords=[])
        edits.append(("axis", node, ast.unparse(moved)))
    if fname in TOLERANCE_CALLS and len(node.args) >= 2:
        a, b = (ast.unparse(x) for x in node.args[:2])
        if fname == "allclose":
            mod = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else "np"
            edits.append(("exact", node, f"{mod}.array_equal({a}, {b})"))
        else:
            edits.append(("exact", node, f"({a} == {b})"))
    if fname == "range" and node.args and not node.keywords:
        k = 0 if len(node.args) == 1 else 1
        stop = ast.unparse(node.args[k])
        for delta in ("- 1", "+ 1"):
            args = [ast.unparse(x) for x in node.args]
            args[k] = f"{stop} {delta}"
            edits.append(("off_by_one", node, f"range({', '.join(args)})"))
    return edits


def _top_functions(tree: ast.AST) -> dict[str, ast.FunctionDef]:
    return {
        n.name: n
        for n in ast.iter_child_nodes(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _arity(fn: ast.FunctionDef) -> tuple[int, int, bool]:
    """(required positional, all positional, takes *args) of a function definition."""
    pos = fn.args.posonlyargs + fn.args.args
    return len(pos) - len(fn.args.defaults), len(pos), fn.args.vararg is not None


def visible_test_helpers(release_nb: Any) -> dict[str, tuple[int, int, bool]]:
    """Functions defined at the top level of the release's test cells, with their arity."""
    out: dict[str, tuple[int, int, bool]] = {}
    for cell in release_nb.cells:
        if not is_test_cell(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for name, fn in _top_functions(tree).items():
            out[name] = _arity(fn)
    return out


def mutants_of_cell(
    cell_id: str, source: str, stub: str, helpers: dict[str, tuple[int, int, bool]]
) -> list[Mutant]:
    """Every mutant of one answer cell (its source from the source notebook)."""
    tree = ast.parse(source)
    lines = _solution_lines(source)
    starts = _offsets(source)
    where = _enclosing_functions(tree)
    skip = _docstring_nodes(tree)
    out: list[Mutant] = []
    seen: set[str] = set()  # mutated sources: two slips that give the same code are one mutant
    for kind, node, text in _edits(tree, source):
        if id(node) in skip or node.lineno not in lines or node.end_lineno not in lines:
            continue
        new, before, after = _splice(source, _span(node, starts), text)
        if before == after:
            continue
        try:
            ast.parse(new)
        except SyntaxError:
            continue
        if new not in seen:
            seen.add(new)
            out.append(Mutant(cell_id, where.get(id(node), ""), kind, before, after, new))
    out.append(Mutant(cell_id, "", "stub", "the solution", "the released stub", stub))
    for name, fn in _top_functions(tree).items():
        required, total, _ = _arity(fn)
        out.append(
            Mutant(
                cell_id,
                name,
                "list",
                f"{name} returns arrays",
                f"{name} returns lists",
                source,
                f"{name} = __mutation_listify({name})",
            )
        )
        out.append(
            Mutant(
                cell_id,
                name,
                "hardcode",
                f"{name} computes each answer",
                f"{name} returns its first answer every time",
                source,
                f"{name} = __mutation_first_answer({name})",
            )
        )
        for helper, (h_req, h_all, h_var) in sorted(helpers.items()):
            if helper == name or not (h_req <= total and (required <= h_all or h_var)):
                continue
            out.append(
                Mutant(
                    cell_id,
                    name,
                    "test_helper",
                    f"{name} computes its answer",
                    f"{name} returns {helper}(...)",
                    source,
                    f"{name} = __mutation_delegate({name}, {helper!r})",
                )
            )
    return out


def notebook_mutants(source_nb: Any, release_nb: Any) -> list[Mutant]:
    """All mutants of a source notebook, answer cell by answer cell."""
    helpers = visible_test_helpers(release_nb)
    stubs = {
        nbgrader_meta(c).get("grade_id"): c.source for c in release_nb.cells if is_answer_cell(c)
    }
    out: list[Mutant] = []
    for cell in source_nb.cells:
        if not is_answer_cell(cell):
            continue
        gid = nbgrader_meta(cell).get("grade_id", "")
        out += mutants_of_cell(
            gid, cell.source, stubs.get(gid, "raise NotImplementedError()"), helpers
        )
    return out


# Defined in the kernel before any mutant runs; the names cannot clash with a notebook's.
KERNEL_SUPPORT = """
import copy as __mutation_copy
import functools as __mutation_functools
__mutation_applied = [0]


def __mutation_as_list(value):
    if hasattr(value, "tolist") and hasattr(value, "shape") and len(getattr(value, "shape", ())) > 0:
        __mutation_applied[0] += 1
        return value.tolist()
    if isinstance(value, list):
        return [__mutation_as_list(v) for v in value]
    if isinstance(value, tuple):
        return tuple(__mutation_as_list(v) for v in value)
    if isinstance(value, dict):
        return {k: __mutation_as_list(v) for k, v in value.items()}
    return value


def __mutation_listify(fn):
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return __mutation_as_list(fn(*args, **kwargs))
    return wrapped


def __mutation_first_answer(fn):
    memo = []
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if not memo:
            memo.append(fn(*args, **kwargs))
        __mutation_applied[0] += 1
        return __mutation_copy.deepcopy(memo[0])
    return wrapped


def __mutation_delegate(fn, helper):
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        __mutation_applied[0] += 1
        return globals()[helper](*args, **kwargs)
    return wrapped
"""


class Kernel:
    """A Jupyter kernel that runs cells with a time limit and says whether each raised."""

    def __init__(self, cwd: Path) -> None:
        import subprocess

        from jupyter_client.manager import KernelManager

        env = dict(os.environ)
        env.update(
            NBGRADER_EXECUTION="autograde",
            MPLBACKEND="Agg",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            PYTHONHASHSEED="0",
        )
        self.km = KernelManager(kernel_name="python3")
        # The kernel's own chatter (the TCP warning) is noise in a report.
        self.km.start_kernel(cwd=str(cwd), env=env, stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float) -> tuple[bool, str]:
        """(True, "") when the code ran; (False, "Ename: message") when it raised or timed out."""
        errors: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        try:
            reply = self.kc.execute_interactive(
                code, timeout=timeout, output_hook=hook, store_history=False, allow_stdin=False
            )
        except TimeoutError:
            self.km.interrupt_kernel()
            self._drain(30)
            return False, f"Timeout: the cell ran past {timeout:.0f} s"
        if reply["content"]["status"] != "ok":
            c = reply["content"]
            return False, errors[0] if errors else f"{c.get('ename')}: {c.get('evalue')}"
        return True, ""

    def _drain(self, timeout: float) -> None:
        """After an interrupt, wait for the kernel to be idle again (restart it if it is not)."""
        try:
            self.kc.execute_interactive("pass", timeout=timeout, store_history=False)
        except TimeoutError:
            self.km.restart_kernel(now=True)
            self.kc.wait_for_ready(timeout=120)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_notebook(
    source_path: Path,
    release_path: Path,
    accepted: dict[str, str] | None = None,
    only: set[str] | None = None,
    timeout_factor: float = 5.0,
    min_timeout: float = 20.0,
    log: Any = None,
) -> Report:
    """Run every mutant of one source notebook against its tests (hidden ones included).

    Args:
        source_path: the nbgrader source notebook (solutions and hidden tests).
        release_path: its release (for the stubs and the visible test helpers).
        accepted: mutant key -> why its survival is acceptable.
        only: mutant kinds to run (default: all).
        timeout_factor: a cell may take this many times its time in the solution's run.
        min_timeout: seconds a cell may take whatever the solution needed.
        log: a file to print progress to (default: none).
    """
    accepted = accepted or {}
    start = time.monotonic()
    source_nb = nbformat.read(source_path, as_version=4)
    release_nb = nbformat.read(release_path, as_version=4)
    report = Report(source_path.parent.name, source_path.name)
    cells = [c for c in source_nb.cells if c.cell_type == "code"]
    graded = {i: nbgrader_meta(c)["grade_id"] for i, c in enumerate(cells) if is_test_cell(c)}
    answer_at = {
        nbgrader_meta(c).get("grade_id"): i for i, c in enumerate(cells) if is_answer_cell(c)
    }
    mutants = [m for m in notebook_mutants(source_nb, release_nb) if not only or m.kind in only]

    # The kernel works in a copy of the notebook's folder: a mutant writes nowhere that matters.
    work = Path(tempfile.mkdtemp(prefix="mutants-"))
    shutil.copytree(source_path.parent, work / "nb", ignore=shutil.ignore_patterns("*.ipynb"))
    kernel = Kernel(work / "nb")
    try:
        ok, why = kernel.run(KERNEL_SUPPORT, 60)
        if not ok:
            raise RuntimeError(f"could not prepare the kernel: {why}")
        limit: dict[int, float] = {}
        for i, cell in enumerate(cells):
            t = time.monotonic()
            ok, why = kernel.run(cell.source, 600)
            limit[i] = max(min_timeout, timeout_factor * (time.monotonic() - t))
            if not ok and i in graded:
                report.baseline_failures.append(f"{graded[i]}: {_one_line(why)}")
        if report.baseline_failures:
            return report

        current: int | None = None
        for m in mutants:
            a = answer_at[m.exercise]
            if current is not None and current != a:
                _restore(kernel, cells, current, a, limit)
            current = a
            t = time.monotonic()
            outcome = _run_mutant(kernel, m, cells, a, graded, limit)
            outcome.seconds = round(time.monotonic() - t, 2)
            if outcome.status == "survived" and m.key in accepted:
                outcome.accepted = accepted[m.key]
            report.outcomes.append(outcome)
            if log:
                print(f"  {outcome.status:>14}  {m.key}", file=log, flush=True)
            kernel.run(cells[a].source, limit[a])
    finally:
        kernel.close()
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = round(time.monotonic() - start, 1)
    return report


def _restore(kernel: Kernel, cells: list, frm: int, to: int, limit: dict[int, float]) -> None:
    """Run the solution's cells from one answer cell up to the next: their state is the solution's."""
    for i in range(frm, to):
        kernel.run(cells[i].source, limit[i])


def _run_mutant(
    kernel: Kernel, m: Mutant, cells: list, a: int, graded: dict[int, str], limit: dict[int, float]
) -> Outcome:
    out = Outcome(m.key, m.exercise, m.kind, m.before, m.after, "killed")
    # What the solution's cell defined must not outlive it: a stub that raises before it
    # assigns its answer would otherwise leave the solution's value in place. Names that
    # earlier cells bind too (an import repeated) stay, as they would in grading.
    earlier = set().union(*(defined_names(c.source) for c in cells[:a]))
    names = sorted(defined_names(cells[a].source) - earlier)
    kernel.run(f"for __n in {names!r}:\n    globals().pop(__n, None)", 10)
    # A cell that raises (a stub of plain statements does) is what grading meets too: the
    # cells after it still run.
    ok, why = kernel.run(m.source, limit[a])
    if not ok and m.wrapper:
        out.status, out.message = "broken", f"the answer cell raised {_one_line(why)}"
        return out
    if m.wrapper:
        kernel.run("__mutation_applied[0] = 0", 10)
        ok, why = kernel.run(m.wrapper, 10)
        if not ok:
            out.status, out.message = "not_applicable", _one_line(why)
            return out
    for i in range(a + 1, len(cells)):
        ok, why = kernel.run(cells[i].source, limit[i])
        if i in graded and not ok:
            out.cell, out.message = graded[i], _one_line(why)
            return out
    out.status = "survived"
    # A wrapper that never changed a result (no array to list) made no mutant at all.
    if m.wrapper and kernel.run("assert __mutation_applied[0] == 0", 10)[0]:
        out.status = "not_applicable"
        out.message = (
            "the function never returned an array"
            if m.kind == "list"
            else "the function was never called"
        )
    return out


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [getattr(node, "target", None)]
                + [i.optional_vars for i in getattr(node, "items", [])]
            )
            for t in targets:
                if t is not None:
                    out.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return out


def load_accepted(path: Path) -> dict[str, str]:
    """Accepted survivors: ``[[survivor]]`` tables with ``key`` and ``why``."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    out = {}
    for entry in data.get("survivor", []):
        if not str(entry.get("why", "")).strip():
            raise ValueError(f"{path}: accepted survivor {entry.get('key')!r} gives no reason")
        out[entry["key"]] = entry["why"].strip()
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(reports: list[Report], command: str) -> str:
    """The report: kill rate per notebook, then every survivor and why, then every mutant."""
    lines = [
        "# Mutation testing of the graded notebooks",
        "",
        "Each answer cell's solution is changed in one plausible way (a flipped sign, an",
        "off-by-one, `<` for `<=`, another axis, an exact comparison instead of a tolerance,",
        "lists for arrays, the visible example's answer hard-coded, the stub, or a call to a",
        "function of the visible tests) and graded with the hidden tests. A mutant is killed",
        "when a graded cell fails. Generated by:",
        "",
        "```bash",
        command,
        "```",
        "",
        "The kill rate counts killed mutants among those that apply; a survivor is either",
        "killed by a new hidden case or listed below with why it is acceptable (most are",
        "equivalent to the solution), and `unexplained` must be 0.",
        "",
        "| notebook | mutants | killed | survived (accepted) | unexplained | not applicable "
        "| kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        applicable = r.count("killed") + r.count("survived")
        rate = f"{100 * r.count('killed') / applicable:.1f} %" if applicable else "n/a"
        accepted = sum(1 for o in r.outcomes if o.status == "survived" and o.accepted)
        lines.append(
            f"| {r.assignment} | {len(r.outcomes)} | {r.count('killed')} | "
            f"{r.count('survived')} ({accepted}) | {len(r.unexplained)} | "
            f"{r.count('not_applicable')} | {rate} |"
        )
    lines += ["", "## Survivors", ""]
    survivors = [(r, o) for r in reports for o in r.outcomes if o.status == "survived"]
    if not survivors:
        lines.append("None: every applicable mutant loses points.")
    for r, o in survivors:
        why = o.accepted or "**not explained: a hidden case must kill it**"
        lines.append(
            f"- {r.assignment}, `{o.exercise}` ({o.kind}): `{o.before}` → `{o.after}`. {why}"
        )
    broken = [(r, o) for r in reports for o in r.outcomes if o.status == "broken"]
    if broken:
        lines += ["", "## Mutants that did not run", ""]
        for r, o in broken:
            lines.append(f"- {r.assignment}, `{o.key}`: {o.message}")
    lines += ["", "## Every mutant", ""]
    for r in reports:
        lines += [
            f"### {r.assignment}",
            "",
            "| answer cell | kind | change | outcome | graded cell and message |",
            "| --- | --- | --- | --- | --- |",
        ]
        for o in r.outcomes:
            change = f"`{_md_cell(o.before)}` → `{_md_cell(o.after)}`"
            detail = f"{o.cell}: {_md_cell(o.message)}" if o.cell else _md_cell(o.message)
            lines.append(f"| {o.exercise} | {o.kind} | {change} | {o.status} | {detail} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.mutation",
        description="Grade plausible wrong answers to every exercise; report which lose points.",
    )
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course root (default: .)")
    parser.add_argument(
        "--accepted",
        type=Path,
        default=None,
        help="accepted survivors (TOML; default: COURSE/benchmarks/mutation_accepted.toml)",
    )
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome as JSON here")
    parser.add_argument("--kind", action="append", choices=KINDS, help="only these kinds")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    names = args.assignments or sorted(
        p.name for p in (course / "solutions").iterdir() if any(p.glob("*.ipynb"))
    )
    accepted = load_accepted(args.accepted or course / "benchmarks" / "mutation_accepted.toml")
    reports = []
    for name in names:
        for src in sorted((course / "solutions" / name).glob("*.ipynb")):
            rel = course / "exercises" / name / src.name
            if not args.quiet:
                print(f"{name}/{src.name}", file=sys.stderr, flush=True)
            reports.append(
                run_notebook(
                    src,
                    rel,
                    accepted,
                    set(args.kind) if args.kind else None,
                    log=None if args.quiet else sys.stderr,
                )
            )
    command = "python -m autograder.mutation --report benchmarks/MUTATION.md"
    if args.report:
        args.report.write_text(markdown(reports, command))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    bad = 0
    for r in reports:
        applicable = r.count("killed") + r.count("survived")
        print(
            f"{r.assignment}: {r.count('killed')}/{applicable} killed, "
            f"{len(r.unexplained)} unexplained survivors, {r.count('broken')} broken, "
            f"{r.seconds:.0f} s"
        )
        for f in r.baseline_failures:
            print(f"  the solution fails {f}")
        for o in r.unexplained:
            print(f"  survived: {o.key}")
        bad += len(r.unexplained) + len(r.baseline_failures) + r.count("broken")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
