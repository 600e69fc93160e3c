"""The course in a real JupyterLab, driven in Chromium as students and readers use it.

One server (``jupyter lab`` on a free 127.0.0.1 port, random token) serves a
temporary copy of the course for the whole module; the page may reach nothing
but that server. Every chapter's solution notebook is Run All and must show no
error; every live explorer it displays must redraw when each of its controls
moves; one chapter's MyST file is opened as a notebook through jupytext and
run; nbgrader's Validate button passes a solution and reports the failing cells
of an unanswered release. The server's process group and its kernels are
stopped at the end. Waits are bounded; timings are not asserted (see
benchmarks/EXPLORERS.md for them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, assignments

sys.path.insert(0, str(ROOT / "scripts"))
import jupyterlab_driver as jl  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ASSIGNMENTS = assignments()
JUPYTEXT_CHAPTER = "book/ch01_linear_collapse.md"  # the quickest chapter to execute
VALIDATED = "ch05_hinges"  # the quickest graded notebook to validate
DOWNLOADED = "book/ch05_hinges"  # a chapter page whose .ipynb download is run
SITE = Path(os.environ.get("ACTLAB_SITE", ROOT / "_build" / "html"))  # the built book


def notebook(folder: str, name: str) -> str:
    (path,) = sorted((ROOT / folder / name).glob("*.ipynb"))
    return path.relative_to(ROOT).as_posix()


def expected_explorers(path: str) -> int:
    """Code cells that display a live explorer (``.live()``) or an ``interact`` form."""
    nb = json.loads((ROOT / path).read_text())
    return sum(
        1
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and (".live()" in "".join(c["source"]) or "interact(" in "".join(c["source"]))
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[jl.Lab]:
    base = tmp_path_factory.mktemp("lab")
    course = jl.course_copy(base / "course")
    server = jl.LabServer(course, base / "state")
    try:
        server.start()
    except RuntimeError as err:
        pytest.fail(f"{err}\n{server.log_tail()}")
    try:
        with jl.chromium() as browser:
            page = jl.Lab(browser, server)
            page.course = course  # type: ignore[attr-defined]
            yield page
            page.close()
            assert not page.blocked, f"JupyterLab asked for remote resources: {page.blocked}"
    finally:
        server.stop()
    assert server._kernel_pids() == [], "kernels were left running"


def assert_no_errors(state: dict, path: str) -> None:
    errors = [(c["index"], c["errors"], c["source"]) for c in state["cells"] if c["errors"]]
    assert not errors, f"{path}: cells with errors: {errors}"
    unrun = [c["index"] for c in state["cells"] if c["count"] is None]
    assert not unrun, f"{path}: cells that did not run: {unrun}"


def check_explorers_respond(lab: jl.Lab, path: str, expected: int) -> None:
    explorers = lab.panel(path).locator(jl.EXPLORER)
    assert explorers.count() == expected, (
        f"{path}: expected {expected} live explorer(s), found {explorers.count()}"
    )
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        ctrls = jl.controls(explorer)
        assert ctrls, f"{path}: explorer {i} has no controls"
        # under load the first frame can arrive after Run All reports done: wait for it
        shown = jl.shown_frame(explorer) or jl.wait_for_new_frame(
            lab.page, explorer, "", timeout=60
        )
        assert shown, f"{path}: explorer {i} shows no image"
        for kind, control in ctrls:
            jl.change(lab.page, kind, control)
            # a frame not drawn yet may train a network first: allow it time
            new = jl.wait_for_new_frame(lab.page, explorer, shown, timeout=180)
            assert new != shown, f"{path}: moving a {kind} did not change the image"
            shown = new


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_runs_in_jupyterlab_and_its_explorers_respond(lab: jl.Lab, name: str) -> None:
    path = notebook("solutions", name)
    lab.open(path)
    state = lab.run_all(path, timeout=600)
    assert_no_errors(state, path)
    check_explorers_respond(lab, path, expected_explorers(path))
    if name != VALIDATED:  # the Validate test below uses this one, already open
        lab.close_document(path)


def validation_dialog(lab: jl.Lab, path: str) -> tuple[list[str], str]:
    """Press Validate in the notebook's toolbar; return the dialog's classes and text."""
    lab.activate(path)
    button = lab.panel(path).locator(".jp-NotebookPanel-toolbar .validate-button")
    button.click()
    dialog = lab.page.locator(".jp-Dialog:has(#validation-message)")
    dialog.wait_for(timeout=300_000)
    message = dialog.locator("#validation-message")
    classes = (message.get_attribute("class") or "").split()
    text = message.inner_text()
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=30_000)
    return classes, text


def test_validate_button_passes_a_solution(lab: jl.Lab) -> None:
    path = notebook("solutions", VALIDATED)
    if lab.page.evaluate("p => window.__lab.panel(p) === null", path):
        lab.open(path)
    classes, text = validation_dialog(lab, path)
    lab.close_document(path)
    assert "validation-success" in classes, text[:2000]
    assert "Success! Your notebook passes all the tests." in text


def test_validate_button_reports_the_failing_cells_of_an_unanswered_release(lab: jl.Lab) -> None:
    path = notebook("exercises", VALIDATED)
    nb = json.loads((ROOT / path).read_text())
    tests = [
        c
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
        and not c["metadata"]["nbgrader"].get("solution")
    ]
    lab.open(path)
    classes, text = validation_dialog(lab, path)
    lab.close_document(path)
    assert "validation-failed" in classes, text[:2000]
    # every test cell fails while its function still raises NotImplementedError
    assert text.count("The following cell failed:") == len(tests) > 0, text[:2000]
    assert "NotImplementedError" in text


def test_a_chapter_opens_through_jupytext_as_a_notebook_and_runs(lab: jl.Lab) -> None:
    factories = lab.page.evaluate(
        "p => window.jupyterapp.docRegistry.preferredWidgetFactories(p).map(f => f.name)",
        JUPYTEXT_CHAPTER,
    )
    assert "Jupytext Notebook" in factories, factories
    lab.open(JUPYTEXT_CHAPTER, factory="Jupytext Notebook")
    state = lab.run_all(JUPYTEXT_CHAPTER, timeout=600)
    assert len(state["cells"]) > 5, "the chapter did not open as a notebook of cells"
    assert_no_errors(state, JUPYTEXT_CHAPTER)
    check_explorers_respond(lab, JUPYTEXT_CHAPTER, 1)
    lab.close_document(JUPYTEXT_CHAPTER)


@pytest.mark.book
def test_a_chapter_downloaded_from_its_built_page_runs_in_jupyterlab(lab: jl.Lab) -> None:
    page = SITE / f"{DOWNLOADED}.html"
    if not page.exists():
        pytest.fail("_build/html is missing: run `make book` first (make test does)")
    # the theme's download menu links the notebook converted at build time
    links = re.findall(r'href="([^"]+\.ipynb)"', page.read_text())
    assert links, f"{page.name} offers no .ipynb download"
    notebook_file = (page.parent / links[0]).resolve()
    assert notebook_file.is_file(), f"the download link {links[0]} leads nowhere"
    nb = json.loads(notebook_file.read_text())
    assert nb["nbformat"] == 4 and len(nb["cells"]) > 5
    dest = lab.course / "downloads" / notebook_file.name  # type: ignore[attr-defined]
    dest.parent.mkdir(exist_ok=True)
    shutil.copy(notebook_file, dest)
    path = f"downloads/{notebook_file.name}"
    lab.open(path)
    state = lab.run_all(path, timeout=600)
    assert_no_errors(state, path)
    check_explorers_respond(lab, path, 1)
    lab.close_document(path)
