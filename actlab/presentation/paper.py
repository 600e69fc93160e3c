"""Explorers on paper: a few frames of an explorer as one captioned figure.

An explorer's static view is a widget: it means nothing in a PDF. Its display therefore
carries one more representation, :data:`PAPER_MIME` (``Explorer.paper()``), that only the
LaTeX builder shows (:class:`PaperRenderer`, a MyST-NB mime renderer): a grid of a few
precomputed frames, chosen to span the controls (:func:`paper_keys`), under a caption
that gives each frame's control values and its description, and a line saying where
the live explorer is. One mechanism for every explorer; no chapter does anything for it.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

#: The mime type of an explorer's paper representation (a JSON object).
PAPER_MIME = "application/vnd.actlab.paper+json"

#: At most this many frames go on paper.
MAX_FRAMES = 4

#: Where the live explorer is, said under every frame grid.
LIVE_NOTE = (
    "On paper the explorer shows these frames only; the live version, with every frame, "
    "is in the web book and in the chapter's notebook."
)


def paper_keys(controls: Sequence[Any], max_frames: int = MAX_FRAMES) -> list[tuple[int, ...]]:
    """The frames (control indices) that go on paper: the default frame, then for each
    control in turn the frame with that control at the value farthest from its default
    and the others at theirs, until ``max_frames``."""
    default = tuple(c.default_index for c in controls)
    keys = [default]
    for level, control in enumerate(controls):
        if len(keys) >= max_frames:
            break
        n, d = len(control.values), control.default_index
        if n < 2:
            continue
        far = 0 if d - 0 > n - 1 - d else n - 1
        key = tuple(far if i == level else k for i, k in enumerate(default))
        if key not in keys:
            keys.append(key)
    return keys


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def frame_grid(pngs: Sequence[bytes]) -> bytes:
    """The frames side by side, two to a row, each titled (a), (b), ..., as one PNG
    under the figure rule."""
    import matplotlib.image as mpimg

    from actlab.presentation.figures import CONTENT_WIDTH_IN, panels, render

    images = [mpimg.imread(io.BytesIO(png), format="png") for png in pngs]
    cols = 1 if len(images) == 1 else 2
    aspect = max(im.shape[0] / im.shape[1] for im in images)
    fig, axes = panels(len(images), height=CONTENT_WIDTH_IN / cols * aspect + 0.35)
    for i, (ax, image) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(image, interpolation="antialiased")
        ax.set_title(_letter(i))
        ax.set_axis_off()
    return render(fig).png


def paper_caption(title: str, n_frames: int, frames: Sequence[tuple[str, str]]) -> str:
    """The caption of a frame grid: ``frames`` holds each shown frame's control values in
    words and its finding, lettered as in :func:`frame_grid`."""
    parts = []
    for i, (values, finding) in enumerate(frames):
        finding = finding.strip()
        if not finding.endswith((".", "!", "?")):
            finding += "."
        parts.append(f"{_letter(i)} {values}: {finding}")
    return f"{title}: {len(frames)} of its {n_frames} frames. " + " ".join(parts) + " " + LIVE_NOTE


class PaperRenderer:
    """MyST-NB mime renderer (entry point ``myst_nb.mime_renderers``) for :data:`PAPER_MIME`:
    a figure with the frame grid and its caption. Only the LaTeX builder prefers it; the
    web builders keep showing the live widget.

    The caption is the figure's legend, not a numbered caption: the web pages number only
    their figures, and the PDF's "Figure 4.3" must be the web's."""

    mime_priority_overrides: ClassVar[list[tuple[str, str, int | None]]] = [
        ("latex", PAPER_MIME, 1),
    ]

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list[Any] | None:
        if data.mime_type != PAPER_MIME or inline:
            return None
        import hashlib

        from docutils import nodes

        content = data.content if isinstance(data.content, dict) else json.loads(data.string)
        png = base64.b64decode(content["png"])
        name = f"paper-{hashlib.sha256(png).hexdigest()[:16]}.png"
        uri = renderer.write_file([name], png, overwrite=False, exists_ok=True)
        figure = nodes.figure("", classes=["actlab-paper"])
        figure += nodes.image(uri=uri, alt=content["alt"], width="100%")
        figure += nodes.legend("", nodes.paragraph(text=content["caption"]))
        return [figure]


_NUMBER = re.compile(r"^[−+-]?[\d.,]+(e[−+-]?\d+)?\s*%?$")


def styler_text(styler: Any) -> str:
    """A pandas ``Styler`` as an aligned plain-text table, with its formats applied.

    A styled table's display has only HTML and IPython's ``<pandas...Styler at 0x...>``
    as its plain text; the PDF (and any plain-text reader) shows the plain text, so it
    gets the table itself: numbers right-aligned, text left-aligned.
    """
    rows = [line.split("\t") for line in styler.to_string(delimiter="\t").splitlines()]
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[j]) for r in rows) for j in range(n)]
    lines = []
    for r in rows:
        cells = [
            cell.rjust(w) if _NUMBER.match(cell) else cell.ljust(w)
            for cell, w in zip(r, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def install_text_tables() -> None:
    """In an IPython session, give pandas ``Styler`` displays :func:`styler_text` as their
    plain text (what the PDF prints)."""
    try:
        from IPython import get_ipython
        from pandas.io.formats.style import Styler
    except ImportError:  # pragma: no cover - both are course dependencies
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.formatters["text/plain"].for_type(
        Styler, lambda styler, printer, cycle: printer.text(styler_text(styler))
    )
