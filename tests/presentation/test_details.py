"""Run details are collapsed and escaped; empty notes are refused."""

import pytest

from actlab.presentation.details import run_details


def test_run_details_are_a_collapsed_escaped_list() -> None:
    note = run_details("running on cpu (2 threads)", "18 <frames> in 1.7 s", display=False)
    page = note._repr_html_()
    assert page.startswith('<details class="actlab-run-details"><summary>Run details</summary>')
    assert "<li>running on cpu (2 threads)</li>" in page
    assert "&lt;frames&gt;" in page and "open" not in page
    assert repr(note).splitlines()[0] == "run details: running on cpu (2 threads)"


def test_run_details_refuse_an_empty_note() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        run_details(display=False)
    with pytest.raises(ValueError, match="non-empty"):
        run_details("  ", display=False)
