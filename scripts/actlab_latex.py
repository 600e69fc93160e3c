"""Sphinx extension for the book's PDF (``make pdf``, the LaTeX builder).

* The notation: the macros the web pages give MathJax (``mathjax3_config`` in
  ``_config.yml``) are defined for LaTeX too, from that one list.
* Characters: XeLaTeX with the GNU FreeFont faces (serif, sans, mono), which hold the
  Greek, arrows, minus signs, sub- and superscripts and the ≈ and ⊙ that the text and the
  cell outputs print.
* Figures stay where the text puts them (``[H]``), and code lines too long for the page
  wrap instead of running off it.

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


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", configure_latex)
    # after the theme builds its download menu (priority 501)
    app.connect("html-page-context", offer_pdf, priority=600)
    app.connect("build-finished", copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
