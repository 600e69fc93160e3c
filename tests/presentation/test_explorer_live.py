"""A live explorer in a real kernel: frames drawn in the background, between cells only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import tool_env

pytestmark = pytest.mark.slow

SETUP = """
import random, time
import ipywidgets as widgets
import numpy as np
import matplotlib.pyplot as plt
from actlab.presentation.explorer import Control, Explorer

def draw(a, b):
    time.sleep(0.2)
    np.random.seed(a)  # a drawing function that reseeds must not move the reader's stream
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [a, b])
    return fig

ex = Explorer(draw, [Control("a", [0, 1, 2]), Control("b", [0, 1], kind="buttons")])
np.random.seed(123)
expected_next = np.random.RandomState(123).random_sample()
view = ex.live()
slider = next(c for c in view.children if isinstance(c, widgets.HBox)).children[0]
print("drawn in the cell:", len(ex._cache))
"""


@pytest.fixture
def kernel() -> Iterator[object]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=tool_env())
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["evalue"])

    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    text = "".join(out)
    assert reply["content"]["status"] == "ok", text
    return text


def wait_until(kc, condition: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(kc, f"print({condition})").strip() == "True":
            return
        time.sleep(0.5)
    raise AssertionError(f"not true after {timeout} s: {condition}")


def test_frames_are_drawn_between_cells_and_leave_the_random_state(kernel) -> None:
    assert "drawn in the cell: 1" in run(kernel, SETUP)
    # between cells the other frames are drawn, nearest first, until all are there
    wait_until(kernel, "len(ex._cache) == ex.n_frames")
    # the reader's random stream continues as if nothing had been drawn
    assert run(kernel, "print(np.random.random_sample() == expected_next)").strip() == "True"


def test_no_frame_is_drawn_while_a_cell_runs(kernel) -> None:
    run(kernel, SETUP)
    out = run(kernel, "n0 = len(ex._cache); time.sleep(1.5); print(n0, len(ex._cache))")
    before, after = out.split()
    assert before == after, "a frame was drawn while a cell was running"


def test_a_control_change_shows_its_frame_once_drawn(kernel) -> None:
    run(kernel, SETUP)
    run(kernel, "slider.index = 2")  # asked for inside a cell: drawn after it
    wait_until(kernel, "view.children[-2].value == ex.frame_html((2, 0))")
    assert (
        run(kernel, "print(view.children[-1].value == ex.frame_text_html((2, 0)))").strip()
        == "True"
    )
