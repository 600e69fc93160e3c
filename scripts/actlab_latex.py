"""Sphinx extension for the book's PDF (``make pdf``, the LaTeX builder).

* The notation: the macros the web pages give MathJax (``mathjax3_config`` in
  ``_config.yml``) are defined for LaTeX too, from that one list.
* Characters: XeLaTeX with the GNU FreeFont faces (serif, sans, mono), which hold the
  Greek, arrows, minus signs, sub- and superscripts and the ≈ and ⊙ that the text and the
  cell outputs print.
* Figures stay where the text puts them (``[H]``), and code lines too long for the page
  wrap instead of running off it.
* One bibliography: LaTeX gathers every chapter's references at the end of the book, where
  a work that several chapters cite would appear once per chapter;
  :class:`MergeDuplicateCitations` keeps its first entry and points every citation of it
  there.

Explorers need nothing here: their display carries a paper representation that the
LaTeX builder prefers (``actlab.presentation.paper``).

The web book links the PDF: when ``_build/latex/book.pdf`` exists as the HTML is built
(``make test`` builds the PDF first), every page's download menu offers it and the file
is copied into the site as ``actlab-book.pdf``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

#: The PDF's name in the built site.
SITE_PDF = "actlab-book.pdf"

# Sphinx's XeLaTeX default fonts are FreeSerif/FreeSans/FreeMono; say so and add the
# fall-back for the few symbols a face lacks.
FONTS = r"""
\setmainfont{FreeSerif}[Extension=.otf,UprightFont=*,ItalicFont=*Italic,BoldFont=*Bold,BoldItalicFont=*BoldItalic]
\setsansfont{FreeSans}[Extension=.otf,UprightFont=*,ItalicFont=*Oblique,BoldFont=*Bold,BoldItalicFont=*BoldOblique]
\setmonofont{FreeMono}[Extension=.otf,UprightFont=*,ItalicFont=*Oblique,BoldFont=*Bold,BoldItalicFont=*BoldOblique]
"""


def macro_preamble(macros: dict[str, Any]) -> str:
    r"""``\newcommand`` lines for MathJax's ``tex.macros`` (``name: body`` or
    ``name: [body, n_args]``)."""
    lines = []
    for name, body in macros.items():
        if isinstance(body, list | tuple):
            text, n_args = body[0], int(body[1])
            lines.append(rf"\providecommand{{\{name}}}[{n_args}]{{{text}}}")
        else:
            lines.append(rf"\providecommand{{\{name}}}{{{body}}}")
    return "\n".join(lines)


def note_pdf(app: Any, config: Any) -> None:
    """Put the built PDF's digest in ``html_context``: Sphinx rewrites every page when its
    HTML configuration changes, so every page's download menu follows the PDF."""
    import hashlib

    pdf = built_pdf(app)
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest() if pdf.exists() else ""
    config.html_context = {**(config.html_context or {}), "actlab_book_pdf": digest}


def configure_latex(app: Any, config: Any) -> None:
    macros = (config.mathjax3_config or {}).get("tex", {}).get("macros", {})
    elements = dict(config.latex_elements or {})
    elements["fontpkg"] = FONTS
    elements["figure_align"] = "H"
    elements["preamble"] = (elements.get("preamble", "") + "\n" + macro_preamble(macros)).strip()
    setup = elements.get("sphinxsetup", "")
    wrap = "verbatimwrapslines=true, verbatimforcewraps=true"
    elements["sphinxsetup"] = f"{setup}, {wrap}" if setup else wrap
    config.latex_elements = elements


def built_pdf(app: Any) -> Path:
    """Where ``make pdf`` leaves the PDF, beside the HTML output."""
    return Path(app.outdir).parent / "latex" / "book.pdf"


def offer_pdf(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Add the book's PDF to the theme's download menu (runs after the theme fills it)."""
    if not built_pdf(app).exists():
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](SITE_PDF, 1),
                    "text": "book .pdf",
                    "tooltip": "Download the whole book as a PDF",
                    "icon": "fas fa-book",
                    "label": "download-book-pdf-button",
                }
            )


def copy_pdf(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html" and built_pdf(app).exists():
        shutil.copyfile(built_pdf(app), Path(app.outdir) / SITE_PDF)


class MergeDuplicateCitations(SphinxPostTransform):
    """In the PDF's one bibliography, each work once.

    Runs after Sphinx gathers the citations (priority 750). Two entries are the same work
    when their text (label and reference) is the same; the later ones go, and the
    citations that linked to them (sphinxcontrib-bibtex writes them as ``raw_latex``
    nodes, ``\\hyperlink{cite.DOC:ID}{``) link to the one kept.
    """

    default_priority = 760
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        kept: dict[str, str] = {}
        renamed: dict[str, str] = {}
        for citation in list(self.document.findall(nodes.citation)):
            key = f"cite.{citation['docname']}:{citation['ids'][0]}"
            text = citation.astext()
            if text in kept:
                renamed[key] = kept[text]
                citation.parent.remove(citation)
            else:
                kept[text] = key
        if not renamed:
            return
        from sphinxcontrib.bibtex.nodes import raw_latex

        for raw in list(self.document.findall(raw_latex)):
            text = raw.rawsource
            for old, new in renamed.items():
                text = text.replace(f"{{{old}}}", f"{{{new}}}")
            raw.rawsource = text


def setup(app: Any) -> dict[str, Any]:
    app.add_post_transform(MergeDuplicateCitations)
    app.connect("config-inited", configure_latex)
    app.connect("config-inited", note_pdf)
    # after the theme builds its download menu (priority 501)
    app.connect("html-page-context", offer_pdf, priority=600)
    app.connect("build-finished", copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
