"""Build a small nbgrader course and student submissions (good, wrong and hostile) for the tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ASSIGNMENT = "ps1"
NOTEBOOK = "squares"
HIDDEN_LINE = 'assert square(7) == 49, "square(7) should be 49"'
HIDDEN_MARK = "square(7) == 49"


def _nbg(gid: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": gid,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
    """An nbgrader source notebook: two answers, two graded test cells (one with hidden tests)."""
    cells = [
        new_markdown_cell("# Squares\nAnswer below.", metadata=_nbg("intro", locked=True)),
        new_code_cell("import numpy as np", metadata=_nbg("imports", locked=True)),
        new_code_cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            metadata=_nbg("square_solution", solution=True),
        ),
        new_code_cell(
            '"""Check that square() squares."""\nassert square(3) == 9, "square(3) should be 9"\n'
            f"### BEGIN HIDDEN TESTS\n{HIDDEN_LINE}\nassert square(-2) == 4\n### END HIDDEN TESTS",
            metadata=_nbg("square_works", grade=True, locked=True, points=3),
        ),
        new_code_cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            metadata=_nbg("double_solution", solution=True),
        ),
        new_code_cell(
            '"""Check that double() doubles."""\nassert double(np.int64(4)) == 8, "double(4) should be 8"',
            metadata=_nbg("double_works", grade=True, locked=True, points=1),
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def make_course(root: Path) -> Path:
    """A course folder with solutions/ps1/squares.ipynb and an nbgrader_config.py."""
    (root / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        'c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}\n'
    )
    return root


def released(course: Path) -> nbformat.NotebookNode:
    """The student version, made by the autograder's own release command."""
    from autograder.release import release

    out = release(course, [ASSIGNMENT], dest="release_check")
    return nbformat.read(out[0] / f"{NOTEBOOK}.ipynb", as_version=4)


def _cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def answered(
    release_nb: nbformat.NotebookNode, square: str | None = None, double: str | None = None
) -> nbformat.NotebookNode:
    """The released notebook with answers filled in (correct ones by default)."""
    nb = copy.deepcopy(release_nb)
    _cell(nb, "square_solution").source = (
        square if square is not None else "def square(x):\n    return x * x"
    )
    _cell(nb, "double_solution").source = (
        double if double is not None else "def double(x):\n    return 2 * x"
    )
    return nb


def bad_kinds(
    release_nb: nbformat.NotebookNode, course: Path, port: int
) -> dict[str, bytes | nbformat.NotebookNode]:
    """Every hostile or broken submission the tests grade, by student name."""
    ok = "def square(x):\n    return x * x\n"
    solutions = course / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    gradebook = course / "grading" / "gradebook.db"
    subs: dict[str, bytes | nbformat.NotebookNode] = {}
    subs["correct"] = answered(release_nb)
    subs["wrong"] = answered(
        release_nb, square="def square(x):\n    return x * 3 if x == 3 else x + x"
    )
    subs["infinite_loop"] = answered(release_nb, square="while True:\n    pass")
    subs["memory_bomb"] = answered(
        release_nb,
        square="blocks = []\nwhile True:\n    blocks.append(np.empty(2**28, dtype=np.uint8))",
    )
    subs["fork_bomb"] = answered(
        release_nb,
        # Fork until the limit stops it, then clean up so the rest of the notebook can run.
        square=ok + "import os, signal\npids = []\ntry:\n    while True:\n        pid = os.fork()\n"
        "        if pid == 0:\n            signal.pause()\n        pids.append(pid)\nfinally:\n"
        "    print(f'forked {len(pids)} processes')\n    for p in pids:\n"
        "        os.kill(p, signal.SIGKILL)\n        os.waitpid(p, 0)",
    )
    subs["os_exit"] = answered(release_nb, square=ok + "import os\nos._exit(0)")
    subs["sys_exit"] = answered(release_nb, square=ok + "import sys\nsys.exit(3)")
    text = nbformat.writes(answered(release_nb))
    subs["corrupted_json"] = text[: len(text) // 2].encode()
    subs["empty_file"] = b""
    deleted = answered(release_nb)
    deleted.cells = [
        c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "square_works"
    ]
    subs["deleted_grade_cell"] = deleted
    edited = answered(release_nb)
    _cell(edited, "square_works").source = "# tests? what tests\npass"
    subs["edited_test_cell"] = edited
    retyped = answered(release_nb)
    _cell(retyped, "square_works").cell_type = "markdown"
    _cell(retyped, "square_works").pop("outputs", None)
    _cell(retyped, "square_works").pop("execution_count", None)
    subs["retyped_grade_cell"] = retyped
    subs["huge_output"] = answered(
        release_nb, square=ok + "for _ in range(40):\n    print('x' * 1_000_000)"
    )
    subs["reads_solutions"] = answered(
        release_nb, square=ok + f"print(open({str(solutions)!r}).read())"
    )
    subs["reads_gradebook"] = answered(
        release_nb,
        square=ok + "import sqlite3\n"
        f"con = sqlite3.connect('file:{gradebook}?mode=rw', uri=True)\n"
        "con.execute('delete from grade'); con.commit()",
    )
    subs["writes_outside"] = answered(
        release_nb,
        square=ok + f"open({str(course / 'pwned.txt')!r}, 'w').write('pwned')",
    )
    subs["writes_system"] = answered(
        release_nb, square=ok + "open('/etc/pwned', 'w').write('pwned')"
    )
    subs["opens_socket"] = answered(
        release_nb,
        square=ok
        + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'hi')",
    )
    # 2 GiB in 32 MiB files, half in the working folder and half in /tmp.
    subs["disk_bomb"] = answered(
        release_nb,
        square=ok + "block = b'x' * (32 << 20)\nfor i in range(64):\n"
        "    with open(f'/tmp/f{i}' if i % 2 else f'f{i}', 'wb') as f:\n"
        "        f.write(block)",
    )
    # One file larger than the per-file cap (64 MiB).
    subs["big_file"] = answered(
        release_nb,
        square=ok + "with open('/tmp/big', 'wb') as f:\n"
        "    for _ in range(20):\n        f.write(b'y' * (8 << 20))",
    )
    # A fork bomb that hides its error and holds the processes for a second.
    subs["quiet_fork_bomb"] = answered(
        release_nb,
        square=ok + "import os, signal, time\npids = []\ntry:\n    while True:\n"
        "        pid = os.fork()\n        if pid == 0:\n            signal.pause()\n"
        "        pids.append(pid)\nexcept OSError:\n    time.sleep(1.5)\n"
        "for p in pids:\n    os.kill(p, signal.SIGKILL)\n    os.waitpid(p, 0)",
    )
    subs["nbformat3"] = nbformat.writes(
        nbformat.convert(answered(release_nb), 3), version=3
    ).encode()
    return subs


def write_submissions(folder: Path, subs: dict[str, bytes | nbformat.NotebookNode]) -> Path:
    """A flat folder of STUDENT.ipynb files."""
    folder.mkdir(parents=True, exist_ok=True)
    for student, content in subs.items():
        path = folder / f"{student}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(json.dumps(content, indent=1))
    return folder
