"""The code's layout holds: layers import downwards only, no import circle, small modules,
and one place for what an activation is, its label and the palette.

Every import is read (at the top of a module or inside a function), so that an arrow
back cannot hide behind a deferred import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("actlab", "autograder")
MAX_LINES = 600

# The course library's layers and what each may import (besides itself).
ACTLAB_LAYERS = {
    "engine": set(),
    "ensemble": {"engine"},
    "presentation": {"engine"},
    "chapters": {"engine", "ensemble", "presentation"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports (not itself)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        name = module_name(path)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = (
                    here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
                )
                source = ".".join([*base, *([node.module] if node.module else [])])
                names.add(source)
                names |= {f"{source}.{a.name}" for a in node.names}
        found[name] = names
    modules = set(found)
    return {
        m: {n for n in names if n in modules and n != m and n != package}
        for m, names in found.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle a depth-first walk meets, each as the modules along it."""
    found: list[list[str]] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_relative_imports_are_read_as_the_modules_they_name() -> None:
    graph = imports("actlab")
    assert "actlab.ensemble.loss" in graph["actlab.ensemble.probes"]  # from .loss import ...
    assert "actlab.ensemble.train" in graph["actlab.ensemble"]


def test_circles_finds_a_circle_and_only_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package: str) -> None:
    graph = imports(package)
    known = {"actlab": ("actlab.engine.models", "actlab.engine.activations"),
             "autograder": ("autograder.grade", "autograder.course")}[package]  # fmt: skip
    assert known[1] in graph[known[0]], "the walk sees the imports"
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ACTLAB_LAYERS else None


def test_actlab_layers_import_downwards_only() -> None:
    graph = imports("actlab")
    layers = {_layer(m) for m in graph} - {None}
    assert layers == set(ACTLAB_LAYERS), f"every layer is a package of actlab: {layers}"
    wrong = [
        f"{module} imports {dep}"
        for module, deps in graph.items()
        if (layer := _layer(module))
        for dep in sorted(deps)
        if _layer(dep) not in {layer, *ACTLAB_LAYERS[layer]}
    ]
    assert not wrong, "imports against the layers: " + "; ".join(wrong)
    loose = [m for m in graph if m != "actlab" and _layer(m) is None]
    assert not loose, f"modules outside the layers: {loose}"


def test_chapter_modules_are_named_after_their_chapter() -> None:
    chapters = {p.stem for p in (ROOT / "book").glob("ch*.md")}
    modules = {
        p.stem for p in (ROOT / "actlab" / "chapters").glob("ch*") if p.suffix in (".py", "")
    }
    assert modules <= chapters, f"chapter modules without a chapter: {modules - chapters}"


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_are_small_enough_to_read(package: str) -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / package).rglob("*.py")
    }
    big = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _sources() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "actlab").rglob("*.py"))
    }


def test_one_activation_predicate_one_label_table_one_palette() -> None:
    sources = _sources()
    predicates = [
        path for path, text in sources.items() if re.search(r"^def \w*is_activation", text, re.M)
    ]
    assert predicates == ["actlab/engine/activations.py"], predicates
    labels = [
        path for path, text in sources.items() if re.search(r"^(LABELS|STYLES?)\b.*=", text, re.M)
    ]
    assert sorted(labels) == ["actlab/engine/activations.py", "actlab/presentation/figures.py"]
    hex_colours = [path for path, text in sources.items() if re.search(r"#[0-9A-Fa-f]{6}\b", text)]
    assert hex_colours == ["actlab/presentation/figures.py"], hex_colours
