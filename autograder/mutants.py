"""The catalogue of slips: every plausible wrong answer ("mutant") to an answer cell.

Each mutant changes the solution in one place, the way a student slips (the kinds are
listed in :mod:`autograder.mutation`, which runs them against the tests); the stub and
the wrappers (``list``, ``hardcode``, ``test_helper``) are mutants too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

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
