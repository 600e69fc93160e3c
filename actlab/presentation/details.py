"""Run details: where and how fast a cell ran, out of the reader's way.

What a cell ran on and how long it took matters to someone checking a measurement, not
to someone reading the chapter: :func:`run_details` shows it in a collapsed "Run
details" note (plain text where HTML is not rendered) instead of printing it.
"""

from __future__ import annotations

import html


class RunDetails:
    """Lines of build information, displayed as a collapsed HTML ``<details>`` note."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines)
        return (
            '<details class="actlab-run-details"><summary>Run details</summary>'
            f"<ul>{items}</ul></details>"
        )

    def __repr__(self) -> str:
        return "\n".join(f"run details: {line}" for line in self.lines)


def run_details(*lines: str, display: bool = True) -> RunDetails | None:
    """Show ``lines`` (e.g. the device, a training time) in one collapsed note."""
    if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
        raise ValueError("run_details needs at least one non-empty line of text")
    note = RunDetails([" ".join(line.split()) for line in lines])
    if not display:
        return note
    from IPython.display import display as ipy_display

    ipy_display(note)
    return None


__all__ = ["RunDetails", "run_details"]
