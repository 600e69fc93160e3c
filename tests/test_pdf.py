"""The book as a PDF (``make pdf``; ``make test`` builds it after the web book).

Read as a reader gets it, through poppler's ``pdftotext``: every chapter is there, no
reference or citation is left unresolved, glued numbers are the web pages' numbers,
every explorer is a captioned frame grid, no raw ANSI escape or widget repr got
through, and the LaTeX log has no missing character or undefined reference.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LATEX = ROOT / "_build" / "latex"
PDF = LATEX / "book.pdf"
HTML = ROOT / "_build" / "html"

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("pdf")]


def _chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [toc]):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return [ROOT / f"{f}.md" for f in files]


def _squash(text: str) -> str:
    """Text with every space and line break removed (PDF lines break anywhere) and
    typographic apostrophes and quotes made plain (the PDF's are curly)."""
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'}))
    return re.sub(r"\s+", "", text)


@cache
def pdf_text() -> str:
    if not PDF.exists():
        pytest.fail("_build/latex/book.pdf is missing: run `make pdf` first (make test does)")
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: `make pdf` installs poppler-utils")
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(PDF), "-"], capture_output=True, text=True, check=True
    ).stdout


def _latex_log() -> str:
    return (LATEX / "book.log").read_text(errors="replace")


def test_every_chapter_of_the_toc_is_in_the_pdf_in_order():
    text = pdf_text()
    positions = []
    for chapter in _chapters():
        title = next(
            line[2:].strip() for line in chapter.read_text().splitlines() if line.startswith("# ")
        )
        title = re.sub(r"\$[^$]*\$", "", title).strip()
        where = _squash(text).find(_squash(title))
        assert where >= 0, f"chapter title {title!r} ({chapter.name}) is not in the PDF"
        positions.append(where)
    assert positions == sorted(positions), "the chapters are not in the table of contents' order"


def test_no_unresolved_reference_citation_or_missing_character():
    text = pdf_text()
    assert "??" not in text, "an unresolved reference prints as ?? in the PDF"
    log = _latex_log()
    problems = [
        line
        for line in log.splitlines()
        if re.search(r"Missing character|undefined|There were undefined references", line)
    ]
    assert not problems, "the LaTeX log reports:\n" + "\n".join(problems[:10])


def test_no_ansi_escapes_widget_reprs_or_empty_explorers():
    text = pdf_text()
    assert "\x1b[" not in text and not re.search(r"\[\d+(;\d+)*m", text), "raw ANSI escapes"
    assert "VBox(" not in text and "HTML(value=" not in text, "a widget's repr reached the PDF"


def _explorer_chapters() -> list[str]:
    return [
        c.stem for c in _chapters() if ".show()" in c.read_text() and "explorer" in c.read_text()
    ]


def test_every_explorer_is_a_captioned_frame_grid_with_the_live_note():
    from actlab.presentation.paper import LIVE_NOTE

    squashed = _squash(pdf_text())
    grids = squashed.count(_squash(LIVE_NOTE))
    expected = len(_explorer_chapters())
    assert expected >= 6, _explorer_chapters()
    assert grids == expected, f"{grids} explorer frame grids in the PDF, expected {expected}"
    assert len(re.findall(r"of its \d+ frames", pdf_text().replace("\n", " "))) == expected


class _Pasted(HTMLParser):
    """The glued values of a web page: MyST-NB pastes them as ``span.pasted-text``."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
        elif tag == "span" and "pasted-text" in (dict(attrs).get("class") or ""):
            self._depth = 1
            self.values.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.values[-1] += data


NUMBER = re.compile(r"[−-]?\d[\d.,]*(e[−+-]?\d+)?( ?%)?")


def test_a_sample_of_glued_numbers_reads_the_same_in_the_pdf_as_on_the_web_pages():
    squashed = _squash(pdf_text())
    checked = 0
    for chapter in _chapters():
        page = HTML / chapter.relative_to(ROOT).with_suffix(".html")
        parser = _Pasted()
        parser.feed(page.read_text())
        numbers = sorted({v for v in parser.values if NUMBER.fullmatch(v) and len(v) >= 3})
        for value in numbers[::3][:10]:
            assert _squash(value) in squashed, f"{page.name}: the glued {value!r} is not in the PDF"
            checked += 1
    assert checked >= 30, f"only {checked} glued numbers sampled"


def test_the_page_count_is_sane():
    out = subprocess.run(["pdfinfo", str(PDF)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))
    assert 60 <= pages <= 600, f"the PDF has {pages} pages"


def test_the_web_book_offers_the_pdf_in_every_pages_download_menu():
    site_pdf = HTML / "actlab-book.pdf"
    assert site_pdf.exists(), "the site has no actlab-book.pdf: build the PDF before the web book"
    assert site_pdf.read_bytes() == PDF.read_bytes(), "the site's PDF is not the latest build"
    for chapter in _chapters():
        page = HTML / chapter.relative_to(ROOT).with_suffix(".html")
        html = page.read_text()
        assert "download-book-pdf-button" in html and "actlab-book.pdf" in html, (
            f"{page.name} does not offer the book's PDF"
        )


def test_one_bibliography_each_work_once_and_every_citation_reaches_its_entry():
    tex = (LATEX / "book.tex").read_text()
    items = re.findall(r"\\bibitem\[([^\]]*)\]\{([^}]*)\}", tex)
    labels = [label for label, _ in items]
    assert len(items) >= 10, f"only {len(items)} bibliography entries"
    assert len(labels) == len(set(labels)), sorted(x for x in labels if labels.count(x) > 1)
    assert tex.count(r"\begin{sphinxthebibliography}") == 1, "more than one bibliography"
    keys = {key for _, key in items}
    cited = set(re.findall(r"\\hyperlink\{cite\.([^}]*)\}", tex))
    assert cited, "no citation links in the PDF"
    assert cited <= keys, f"citations without an entry: {sorted(cited - keys)[:5]}"


def test_every_figure_is_an_image_in_the_pdf_not_its_description():
    text = pdf_text()
    assert "[figure]" not in text, "a figure reached the PDF as its plain-text description"
    figures = sum(c.read_text().count("```{glue:figure}") for c in _chapters())
    listing = subprocess.run(
        ["pdfimages", "-list", str(PDF)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    images = [line for line in listing if line.split()[2] == "image"]
    assert len(images) >= figures + len(_explorer_chapters()), (
        f"{len(images)} images in the PDF for {figures} figures and "
        f"{len(_explorer_chapters())} explorers"
    )
