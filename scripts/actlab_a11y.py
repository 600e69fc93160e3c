"""Sphinx extension: mend the accessibility faults that docutils and MyST-NB write into a page body.

axe-core (WCAG 2.0/2.1 A and AA) finds three in the HTML these tools write:

* citations carry ``role="doc-biblioentry"``, a role ARIA 1.2 deprecates;
* the citation list carries ``role="list"`` although its children are not list
  items (they hold ``role="doc-backlink"`` links), so the list role has no
  allowed children;
* the "Show code cell source" toggles of hidden cells are ``<summary>`` elements
  with ``aria-label="Toggle hidden content"``, an accessible name that does not
  contain the visible label (WCAG 2.5.3, label in name).

Each fix removes the faulty attribute, so the element's own content names it.
Faults in the theme's own markup (built by its JavaScript) are mended in
``site/assets/actlab-a11y.js``.
"""

from __future__ import annotations

import re
from typing import Any

FIXES = (
    (re.compile(r'(<div class="citation"[^>]*?) role="doc-biblioentry"'), r"\1"),
    (re.compile(r'<div role="list" class="citation-list">'), '<div class="citation-list">'),
    (re.compile(r'<summary aria-label="Toggle hidden content">'), "<summary>"),
)


def mend(body: str) -> str:
    """The page body with the faults above removed."""
    for pattern, replacement in FIXES:
        body = pattern.sub(replacement, body)
    return body


def _on_page(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if "body" in context:
        context["body"] = mend(context["body"])


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
