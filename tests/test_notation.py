"""One notation across the book: the activation, its slope and the normal distribution
are written with the macros that ``_config.yml`` defines for MathJax (book/intro.md's
table), never as raw ``\\phi`` / ``\\varphi`` / ``\\Phi``, and every macro the book's math
uses is either standard TeX or defined there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from actlab.engine.activations import ACTIVATIONS

BOOK = sorted((ROOT / "book").glob("*.md"))

# The symbols the macros stand for: written raw, two chapters can mean two things by
# one letter (the activation and the normal density were both phi).
RAW = re.compile(r"\\(varphi|phi|Phi)(?![A-Za-z])")
COMMAND = re.compile(r"\\([A-Za-z]+)")

# The notation every chapter relies on (book/intro.md's table).
NOTATION = {"act", "dact", "pre", "npdf", "ncdf"}

# Standard TeX / MathJax commands the book may use without defining them. A command
# outside this set and outside _config.yml's macros is a typo or a missing definition.
STANDARD = set(
    """
    alpha beta gamma delta epsilon varepsilon eta theta lambda mu nu pi rho sigma tau
    omega Delta Sigma Omega partial nabla infty cdot cdots ldots dots times odot otimes
    pm mp le leq ge geq neq approx sim equiv propto in subset to mapsto gets
    rightarrow leftarrow Rightarrow implies iff frac dfrac tfrac sqrt sum prod int
    lim max min arg argmax log ln exp sin cos tanh sinh cosh erf det mathrm mathbf
    mathcal mathbb mathtt mathit operatorname text textbf boxed underbrace overbrace
    hat bar tilde vec dot left right bigl bigr Bigl Bigr big Big middle quad qquad
    lfloor rfloor lceil rceil langle rangle lvert rvert top begin end hline binom star
    blacksquare
    """.split()
)


def config_macros() -> dict[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


def jupyter_definitions() -> str:
    """The macros as ``\\newcommand``s in one math span: the chapters carry it in a cell
    the book removes (tag ``remove-cell``), so that the math also renders where MathJax
    knows no ``_config.yml``: the notebooks opened in Jupyter and the downloaded .ipynb."""
    defs = "".join(f"\\newcommand{{\\{name}}}{{{tex}}}" for name, tex in config_macros().items())
    return f"${defs}$"


def chapter_text(path: Path) -> str:
    """A chapter without its macro definitions (checked on their own)."""
    return path.read_text().replace(jupyter_definitions(), "")


def registry_strings() -> list[tuple[str, str]]:
    return [
        (f"{name}.{field}", getattr(act, field))
        for name, act in ACTIVATIONS.items()
        for field in ("formula", "dformula")
    ]


CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```", re.S | re.M)
RAW_STRING = re.compile(r"""\br[f]?("([^"\n]*)"|'([^'\n]*)')""")
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"\$([^$\n]+?)\$")


def math_of(text: str) -> list[str]:
    """The TeX that MathJax renders in one chapter: math in the prose, and raw strings in
    code cells (``Math(r"...")``)."""
    tex = []
    for cell in CODE_CELL.findall(text):
        tex += [m.group(2) or m.group(3) or "" for m in RAW_STRING.finditer(cell)]
    prose = CODE_CELL.sub("", text)
    tex += DISPLAY_MATH.findall(prose)
    tex += INLINE_MATH.findall(DISPLAY_MATH.sub("", prose))
    return tex


def test_the_notation_macros_are_defined_for_mathjax() -> None:
    macros = config_macros()
    missing = NOTATION - set(macros)
    assert not missing, f"_config.yml's mathjax3_config defines no {sorted(missing)}"
    assert macros["act"] != macros["npdf"], "the activation and the normal density share a symbol"


@pytest.mark.parametrize("path", BOOK, ids=lambda p: p.name)
def test_no_raw_phi_in_the_book(path: Path) -> None:
    bad = [
        f"{path.name}:{number}: {line.strip()}"
        for number, line in enumerate(chapter_text(path).splitlines(), 1)
        if RAW.search(line)
    ]
    assert not bad, "write \\act, \\dact, \\npdf or \\ncdf instead:\n" + "\n".join(bad)


def test_no_raw_phi_in_the_registry_formulas() -> None:
    bad = [f"{where}: {tex}" for where, tex in registry_strings() if RAW.search(tex)]
    assert not bad, "write \\act, \\dact, \\npdf or \\ncdf instead:\n" + "\n".join(bad)


def test_every_macro_the_book_uses_is_defined() -> None:
    known = STANDARD | set(config_macros())
    used: dict[str, set[str]] = {}
    for path in BOOK:
        for tex in math_of(chapter_text(path)):
            for name in COMMAND.findall(tex):
                used.setdefault(name, set()).add(path.name)
    for where, tex in registry_strings():
        for name in COMMAND.findall(tex):
            used.setdefault(name, set()).add(f"activations.py ({where})")
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert not unknown, f"macros neither standard nor in _config.yml: {unknown}"
    assert NOTATION <= set(used), f"notation macros unused: {sorted(NOTATION - set(used))}"


@pytest.mark.parametrize(
    "path", [p for p in BOOK if "kernelspec:" in p.read_text()], ids=lambda p: p.name
)
def test_each_notebook_defines_the_macros_for_jupyter(path: Path) -> None:
    cell = f'+++ {{"tags": ["remove-cell"]}}\n\n{jupyter_definitions()}\n\n+++\n'
    assert cell in path.read_text(), (
        f"{path.name} lacks the cell that defines the notation macros in Jupyter; "
        f"put this after its title:\n{cell}"
    )
