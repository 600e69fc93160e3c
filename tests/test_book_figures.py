"""Every figure in the book is a numbered MyST figure with a visible caption that the text
cites, drawn by the one figure helper (``actlab.presentation.figures.panels``).

The built pages are checked in Chromium (tests/test_browser.py: the caption is shown and
the smallest text is at least 10 CSS pixels); this test reads the sources, so that a
figure without a name, a caption or a citation fails before the book is built.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

BOOK = sorted((ROOT / "book").glob("*.md"))
CHAPTER_MODULES = sorted((ROOT / "actlab" / "chapters").rglob("*.py"))

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
SHOW = re.compile(r"(?<![.\w])show\(")
NAME_ARG = re.compile(r"""name\s*=\s*f?["'](fig-[a-z0-9-]+)["']""")
GLUE_FIGURE = re.compile(
    r"^```\{glue:figure\} (\S+)\n(?P<options>(?::[^\n]*\n)*)\n?(?P<caption>.*?)^```", re.S | re.M
)
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?(fig-[a-z0-9-]+)>?`")


def show_calls(code: str) -> list[str]:
    """The text of each ``show(...)`` call in a cell, up to its closing parenthesis."""
    calls = []
    for match in SHOW.finditer(code):
        depth, i = 0, match.end() - 1
        for i in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                break
        calls.append(code[match.start() : i + 1])
    return calls


def figures_of(path: Path) -> list[str]:
    text = path.read_text()
    names = []
    for cell in CODE_CELL.findall(text):
        for call in show_calls(cell):
            found = NAME_ARG.search(call)
            assert found, f"{path.name}: a figure shown without name='fig-...': {call[:90]!r}"
            names.append(found[1])
    return names


@pytest.mark.parametrize("path", BOOK, ids=lambda p: p.name)
def test_every_figure_is_named_captioned_and_cited(path: Path) -> None:
    text = path.read_text()
    names = figures_of(path)
    pasted = {m[1]: m for m in GLUE_FIGURE.finditer(text)}
    book = "".join(p.read_text() for p in BOOK)
    cited = set(NUMREF.findall(book))
    for name in names:
        assert name.startswith(f"fig-{path.stem.split('_')[0]}-") or path.stem == "intro", (
            f"{path.name}: figure {name!r} should be named fig-{path.stem.split('_')[0]}-..."
        )
        assert name in pasted, f"{path.name}: {name} is glued but no {{glue:figure}} shows it"
        block = pasted[name]
        assert f":name: {name}" in block["options"], f"{path.name}: {name} needs :name: {name}"
        caption = " ".join(block["caption"].split())
        assert len(caption.split()) >= 6, f"{path.name}: {name}'s caption is {caption!r}"
        assert name in cited, f"{path.name}: no {{numref}} in the text cites {name}"
    assert len(names) == len(set(names)), f"{path.name}: a figure name is used twice"
    orphans = set(pasted) - set(names)
    assert not orphans, f"{path.name}: {{glue:figure}} of names no cell shows: {orphans}"


def test_the_check_reads_show_calls_as_the_chapters_write_them() -> None:
    cell = 'x = 1\nshow(fig, f"a (b) {c(1)}", table=t,\n     name="fig-ch09-a")\nexplorer.show()\n'
    assert show_calls(cell) == ['show(fig, f"a (b) {c(1)}", table=t,\n     name="fig-ch09-a")']
    assert NAME_ARG.search(show_calls(cell)[0])[1] == "fig-ch09-a"
    text = "```{glue:figure} fig-ch09-a\n:name: fig-ch09-a\n\nA caption of six words here.\n```\n"
    match = GLUE_FIGURE.search(text)
    assert match[1] == "fig-ch09-a" and match["caption"].strip().startswith("A caption")
    assert NUMREF.findall("see {numref}`fig-ch09-a` and {numref}`Fig. %s <fig-ch09-b>`") == [
        "fig-ch09-a",
        "fig-ch09-b",
    ]


@pytest.mark.parametrize("path", BOOK + CHAPTER_MODULES, ids=lambda p: p.name)
def test_figures_are_made_by_the_figure_helper(path: Path) -> None:
    """``plt.subplots(figsize=...)`` sizes a figure by hand; ``panels`` sizes it for the page."""
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(CODE_CELL.findall(text))
    found = re.findall(r"plt\.(?:subplots|figure)\(|figsize\s*=|subplots_adjust\(", text)
    assert not found, f"{path.relative_to(ROOT)}: figures sized by hand ({found}); use panels()"


@pytest.mark.parametrize("path", BOOK, ids=lambda p: p.name)
def test_an_explorer_is_the_last_thing_its_cell_shows(path: Path) -> None:
    """A cell shows only its last expression: ``explorer.show()`` followed by more code
    displays nothing, and the page (and the PDF) loses its explorer."""
    for cell in CODE_CELL.findall(path.read_text()):
        lines = [line for line in cell.strip().splitlines() if line.strip()]
        shown = [i for i, line in enumerate(lines) if re.search(r"\bexplorer\.show\(\)", line)]
        for i in shown:
            assert i == len(lines) - 1, (
                f"{path.name}: explorer.show() is followed by {lines[i + 1].strip()!r}; "
                "make it the cell's last line"
            )


def test_the_explorer_check_fails_on_a_hidden_explorer(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```{code-cell} ipython3\nexplorer.show()\nglue('x', 1)\n```\n")
    with pytest.raises(AssertionError, match="followed by"):
        test_an_explorer_is_the_last_thing_its_cell_shows(page)
