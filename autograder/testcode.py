"""Find answer cells that use the test cells' own code (status ``uses_test_code``).

A test cell's helpers (a reference implementation, a checker, planted inputs) are
module-level names of the kernel once that cell has run, so an answer such as
``def dead_mask(model, X): return _reference_masks(model, X)`` passes its tests
without solving anything. Each answer cell (nbgrader ``solution: true``) of the
submission, and each code cell the student added or changed, is parsed, and the global names it reads are compared with the names that
the source notebook's test cells define at module level (functions, classes,
assignments, loop and ``with`` targets, visible or hidden part alike). Not reported:
imported names (a student may use ``np`` as the tests do), names that the released
notebook also defines outside its test cells, names the student defines outside the
test cells, and Python's builtins. Code that does not parse is not judged here.
"""

from __future__ import annotations

import ast
import builtins
import symtable

from nbformat.notebooknode import NotebookNode

from autograder.checks import nbgrader_meta

BUILTINS = frozenset(dir(builtins))
TRY = (ast.Try, ast.TryStar) if hasattr(ast, "TryStar") else (ast.Try,)


def is_test_cell(cell: NotebookNode) -> bool:
    """A graded cell that is not an answer: nbgrader's autograder tests."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_answer_cell(cell: NotebookNode) -> bool:
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def _python(source: str) -> str:
    """Cell source as plain Python (IPython's ``%magic`` and ``!shell`` lines translated)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover  (IPython comes with nbgrader)
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001  (a cell IPython cannot read: parse it as it is)
        return source


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python(source))
    except (SyntaxError, ValueError):
        return None


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def module_names(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Names a cell binds at module level ({name: kind}) and the names it imports.

    Kinds: ``function``, ``class`` or ``value``. Blocks that do not open a scope
    (``if``, ``for``, ``while``, ``with``, ``try``) are followed; functions, classes and
    comprehensions are not entered.
    """
    defined: dict[str, str] = {}
    imported: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined[node.name] = "function"
            elif isinstance(node, ast.ClassDef):
                defined[node.name] = "class"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    imported.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    for name in _targets(t):
                        defined.setdefault(name, "value")
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                for name in _targets(node.target):
                    defined.setdefault(name, "value")
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                for name in _targets(node.target):
                    defined.setdefault(name, "value")
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        for name in _targets(item.optional_vars):
                            defined.setdefault(name, "value")
            elif isinstance(node, TRY):
                for handler in node.handlers:
                    if handler.name:
                        defined.setdefault(handler.name, "value")
            for field in ("body", "orelse", "finalbody"):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                visit(handler.body)
            for case in getattr(node, "cases", []) or []:
                visit(case.body)

    visit(tree.body)
    return defined, imported


def global_reads(source: str) -> set[str]:
    """Module-level names that code reads: at module level, or free in its functions and classes.

    A function's parameters and locals are not module names; ``symtable`` tells them apart.
    """
    code = _python(source)
    try:
        top = symtable.symtable(code, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return set()
    out: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        for sym in table.get_symbols():
            if not sym.is_referenced():
                continue
            if table.get_type() == "module" or sym.is_global():
                out.add(sym.get_name())
        tables.extend(table.get_children())
    return out


def uses_test_code(
    submitted: NotebookNode, source_nb: NotebookNode, release_nb: NotebookNode
) -> list[str]:
    """One line per cell of the student's that reads a name only a test cell defines.

    E.g. ``dead_mask calls _check_masks, defined by a test cell``.
    """
    test_defined: dict[str, str] = {}
    allowed: set[str] = set(BUILTINS)
    for cell in source_nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(cell.source)
        if tree is None:
            continue
        defined, imported = module_names(tree)
        allowed |= imported
        if is_test_cell(cell):
            for name, kind in defined.items():
                test_defined.setdefault(name, kind)
    for nb in (release_nb, submitted):
        for cell in nb.cells:
            if cell.get("cell_type") != "code" or is_test_cell(cell):
                continue
            tree = _parse(cell.source)
            if tree is None:
                continue
            defined, imported = module_names(tree)
            allowed |= imported | set(defined)
    # The student's own code: answer cells and any cell the release does not have as it
    # is (a cell added below a test could alias a test's helper for an answer to call).
    released = {
        cell.source.strip()
        for cell in release_nb.cells
        if cell.get("cell_type") == "code" and not is_answer_cell(cell)
    }
    found = []
    for i, cell in enumerate(submitted.cells):
        if cell.get("cell_type") != "code" or is_test_cell(cell):
            continue
        if not is_answer_cell(cell) and cell.source.strip() in released:
            continue
        if _parse(cell.source) is None:
            continue
        names = sorted((global_reads(cell.source) & set(test_defined)) - allowed)
        if not names:
            continue
        gid = nbgrader_meta(cell).get("grade_id") or f"cell {i}"
        kinds = {test_defined[n] for n in names}
        verb = "calls" if kinds <= {"function", "class"} else "uses"
        where = "a test cell" if len(names) == 1 else "test cells"
        found.append(f"{gid} {verb} {', '.join(names)}, defined by {where}")
    return found
