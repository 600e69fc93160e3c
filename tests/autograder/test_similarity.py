"""`autograder similarity` on a class of honest variants of ch05_hinges and planted copies.

Each exercise's answer is built from stages (convert the inputs, compute, tidy up, return),
each with several genuinely different correct versions written by hand (loops or
vectorised, a helper function or not). Every honest student draws one version per stage
with a seeded RNG, so honest students share short idioms (``np.asarray(w, dtype=float)``)
but hardly ever a whole answer. A planted copy is another student's notebook with
renamed variables, its helper functions moved, comments added, literals and layout
changed: every planted pair must rank above every honest pair.
"""

from __future__ import annotations

import copy
import csv
import json
import random
import re
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from autograder import similarity as sim
from autograder import similarity_report
from autograder.cli import main as cli

COURSE = ROOT
ASSIGNMENT = "ch05_hinges"
RELEASE_NB = COURSE / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
N_HONEST = 34

HEADS = {
    "hinge_points": 'def hinge_points(w, b):\n    """Sorted distinct hinges -b_i / w_i of the units with w_i != 0."""\n',
    "interval_formulas": "def interval_formulas(w, b, v, c=0.0):\n"
    '    """(slopes, intercepts) of f on each interval between consecutive distinct hinges."""\n',
    "count_plane_regions": "def count_plane_regions(W, b):\n"
    '    """Number of regions into which the lines w_i . x + b_i = 0 cut the plane."""\n',
    "activation_pattern": "def activation_pattern(layers, x):\n"
    '    """Booleans z > 0 of every hidden unit at the point x, first hidden layer first."""\n',
}

# Per exercise: stages; per stage: alternatives (helper code before the def, body lines).
CONVERT_WB = [
    ("", "w = np.asarray(w, dtype=float).ravel()\nb = np.asarray(b, dtype=float).ravel()\n"),
    ("", "w = np.array(w, dtype=float).flatten()\nb = np.array(b, dtype=float).flatten()\n"),
    ("", "w, b = (np.ravel(np.asarray(t, float)) for t in (w, b))\n"),
    (
        "",
        "w = np.atleast_1d(np.squeeze(np.asarray(w, dtype=np.float64)))\n"
        "b = np.atleast_1d(np.squeeze(np.asarray(b, dtype=np.float64)))\n",
    ),
]
STAGES: dict[str, list[list[tuple[str, str]]]] = {
    "hinge_points": [
        CONVERT_WB,
        [
            ("", "live = w != 0\nh = -b[live] / w[live]\n"),
            (
                "",
                "h = []\nfor wi, bi in zip(w, b):\n    if wi != 0:\n        h.append(-bi / wi)\nh = np.array(h)\n",
            ),
            ("", "idx = np.nonzero(w)[0]\nh = np.array([-b[i] / w[i] for i in idx])\n"),
            ("", "h = np.divide(-b, w, out=np.zeros_like(b), where=w != 0)[w != 0]\n"),
        ],
        [
            (
                "",
                "h = np.sort(h)\nkeep = []\nfor value in h:\n    if not keep or value - keep[-1] > 1e-9:\n"
                "        keep.append(value)\nreturn np.array(keep, dtype=float)\n",
            ),
            ("", "return np.unique(np.round(h, 9))\n"),
            (
                "",
                "h = np.sort(h)\nif h.size == 0:\n    return h\nreturn h[np.concatenate([[True], np.diff(h) > 1e-9])]\n",
            ),
            (
                "def _dedupe(values, tol=1e-9):\n    out = []\n    for x in sorted(values):\n"
                "        if len(out) == 0 or abs(x - out[-1]) > tol:\n            out.append(x)\n"
                "    return out\n\n\n",
                "return np.asarray(_dedupe(h), dtype=float)\n",
            ),
        ],
    ],
    "interval_formulas": [
        [(h, body + "v = np.asarray(v, dtype=float).ravel()\n") for h, body in CONVERT_WB[:2]]
        + [("", "w, b, v = (np.ravel(np.asarray(t, float)) for t in (w, b, v))\n")],
        [
            ("", "h = hinge_points(w, b)\n"),
            ("", "h = np.unique(-b[w != 0] / w[w != 0])\n"),
            ("", "h = np.asarray(hinge_points(w, b))\n"),
        ],
        [
            (
                "",
                "if h.size == 0:\n    probes = np.array([0.0])\nelse:\n"
                "    probes = np.concatenate([[h[0] - 1.0], (h[:-1] + h[1:]) / 2, [h[-1] + 1.0]])\n",
            ),
            (
                "",
                "if len(h) == 0:\n    probes = [0.0]\nelse:\n    probes = [h[0] - 1]\n"
                "    for i in range(len(h) - 1):\n        probes.append((h[i] + h[i + 1]) / 2)\n"
                "    probes.append(h[-1] + 1)\nprobes = np.array(probes)\n",
            ),
            (
                "",
                "edges = np.r_[h[0] - 1, h, h[-1] + 1] if len(h) else np.array([-1.0, 1.0])\n"
                "probes = 0.5 * (edges[:-1] + edges[1:])\n",
            ),
        ],
        [
            (
                "",
                "active = (probes[:, None] * w + b) > 0\nslopes = (active * (v * w)).sum(axis=1)\n"
                "intercepts = (active * (v * b)).sum(axis=1) + float(c)\nreturn slopes, intercepts\n",
            ),
            (
                "",
                "slopes, intercepts = [], []\nfor p in probes:\n    on = p * w + b > 0\n"
                "    slopes.append(np.sum(v[on] * w[on]))\n    intercepts.append(np.sum(v[on] * b[on]) + c)\n"
                "return np.array(slopes), np.array(intercepts)\n",
            ),
            (
                "",
                "act = np.where(np.outer(probes, w) + b > 0, 1.0, 0.0)\n"
                "return act @ (v * w), act @ (v * b) + c\n",
            ),
            (
                "def _piece(p, w, b, v, c):\n    mask = (p * w + b) > 0\n"
                "    return float(v[mask] @ w[mask]), float(v[mask] @ b[mask] + c)\n\n\n",
                "pieces = [_piece(p, w, b, v, c) for p in probes]\n"
                "return np.array([s for s, _ in pieces]), np.array([t for _, t in pieces])\n",
            ),
        ],
    ],
    "count_plane_regions": [
        [
            (
                "",
                "W = np.asarray(W, dtype=float).reshape(-1, 2)\nb = np.asarray(b, dtype=float).ravel()\n",
            ),
            ("", "W = np.array(W, dtype=float).reshape(len(b), 2)\nb = np.array(b, dtype=float)\n"),
        ],
        [
            (
                "",
                "lines = []\nfor w_i, b_i in zip(W, b):\n    norm = np.hypot(*w_i)\n    if norm < 1e-12:\n"
                "        continue\n    row = np.array([w_i[0], w_i[1], b_i]) / norm\n"
                "    if row[0] < -1e-12 or (abs(row[0]) <= 1e-12 and row[1] < 0):\n        row = -row\n"
                "    if not any(np.abs(row - other).max() < 1e-9 for other in lines):\n"
                "        lines.append(row)\n",
            ),
            (
                "",
                "n = np.linalg.norm(W, axis=1)\nok = n > 1e-12\nrows = np.column_stack([W, b])[ok] / n[ok, None]\n"
                "flip = (rows[:, 0] < -1e-12) | ((np.abs(rows[:, 0]) <= 1e-12) & (rows[:, 1] < 0))\n"
                "rows[flip] *= -1\nlines = []\nfor r in rows:\n"
                "    if all(np.linalg.norm(r - q) > 1e-9 for q in lines):\n        lines.append(r)\n",
            ),
            (
                "def _canonical(w_i, b_i):\n    row = np.append(w_i, b_i) / np.linalg.norm(w_i)\n"
                "    first = row[0] if abs(row[0]) > 1e-12 else row[1]\n    return row if first > 0 else -row\n\n\n",
                "lines = []\nfor k in range(len(b)):\n    if np.linalg.norm(W[k]) < 1e-12:\n        continue\n"
                "    r = _canonical(W[k], b[k])\n    if not any(np.allclose(r, q, atol=1e-9) for q in lines):\n"
                "        lines.append(r)\n",
            ),
        ],
        [
            (
                "",
                "vertices = {}\nfor i in range(len(lines)):\n    for j in range(i + 1, len(lines)):\n"
                "        M = np.array([lines[i][:2], lines[j][:2]])\n        if abs(np.linalg.det(M)) < 1e-9:\n"
                "            continue\n        p = np.linalg.solve(M, -np.array([lines[i][2], lines[j][2]]))\n"
                "        through = frozenset(k for k, row in enumerate(lines) if abs(row[:2] @ p + row[2]) < 1e-7)\n"
                "        vertices[through | {i, j}] = p\nreturn 1 + len(lines) + sum(len(s) - 1 for s in vertices)\n",
            ),
            (
                "",
                "from itertools import combinations\n\npoints = []\nfor a, c in combinations(lines, 2):\n"
                "    A = np.vstack([a[:2], c[:2]])\n    if abs(A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]) < 1e-9:\n"
                "        continue\n    q = np.linalg.solve(A, [-a[2], -c[2]])\n"
                "    if not any(np.allclose(q, r, atol=1e-7) for r in points):\n        points.append(q)\n"
                "total = 1 + len(lines)\nfor q in points:\n"
                "    k = sum(1 for row in lines if abs(row[0] * q[0] + row[1] * q[1] + row[2]) < 1e-7)\n"
                "    total += k - 1\nreturn total\n",
            ),
            (
                "def _meet(l1, l2):\n    d = l1[0] * l2[1] - l1[1] * l2[0]\n    if abs(d) < 1e-9:\n        return None\n"
                "    return np.array([(l1[1] * l2[2] - l2[1] * l1[2]) / d, (l2[0] * l1[2] - l1[0] * l2[2]) / d])\n\n\n",
                "seen = []\nregions = 1 + len(lines)\nfor i, li in enumerate(lines):\n    for lj in lines[i + 1 :]:\n"
                "        p = _meet(li, lj)\n        if p is None or any(np.linalg.norm(p - s) < 1e-7 for s in seen):\n"
                "            continue\n        seen.append(p)\n"
                "        regions += sum(abs(l[:2] @ p + l[2]) < 1e-7 for l in lines) - 1\nreturn int(regions)\n",
            ),
        ],
    ],
    "activation_pattern": [
        [
            ("", "a = np.asarray(x, dtype=float).ravel()\n"),
            ("", "a = np.array(x, dtype=float).reshape(-1)\n"),
        ],
        [
            (
                "",
                "pattern = []\nfor W, b in layers[:-1]:\n    z = np.asarray(W, dtype=float) @ a + np.asarray(b, dtype=float)\n"
                "    pattern.append(z > 0)\n    a = np.maximum(z, 0.0)\n"
                "return np.concatenate(pattern) if pattern else np.zeros(0, dtype=bool)\n",
            ),
            (
                "",
                "bits = []\nfor k in range(len(layers) - 1):\n    W, b = layers[k]\n    z = np.dot(W, a) + b\n"
                "    on = z > 0\n    bits.extend(on.tolist())\n    a = np.where(on, z, 0.0)\nreturn np.array(bits, dtype=bool)\n",
            ),
            (
                "def _relu(z):\n    return z * (z > 0)\n\n\n",
                "out = np.zeros(0, dtype=bool)\nfor W, b in layers[:-1]:\n    z = W @ a + b\n"
                "    out = np.hstack([out, z > 0])\n    a = _relu(z)\nreturn out\n",
            ),
        ],
    ],
}


def _indent(body: str) -> str:
    return "".join(("    " + line if line.strip() else line) for line in body.splitlines(True))


def answer(gid: str, choice: list[int]) -> str:
    """The source of one answer cell from a choice of alternative per stage."""
    helpers, body = "", ""
    for stage, i in zip(STAGES[gid], choice):
        helper, code = stage[i]
        helpers += helper
        body += code
    return helpers + HEADS[gid] + _indent(body)


# Small equivalent idioms: each honest student uses each one or not, as people do.
IDIOMS = [
    (r"np\.asarray\(", "np.array("),
    (r"dtype=float\b", "dtype=np.float64"),
    (r"\.ravel\(\)", ".reshape(-1)"),
    (r"(?<!\.)\babs\(", "np.abs("),
    (r"< (1e-\d+)", r"<= \1"),
    (r"(?<=[(,=] )z > 0\b|(?<=\()z > 0\b", "0 < z"),
    (r"\(h\[:-1\] \+ h\[1:\]\) / 2", "0.5 * (h[:-1] + h[1:])"),
    (r"np\.sort\((\w+)\)", r"np.sort(\1, kind='stable')"),
    (r"\.sum\(axis=1\)", ".sum(1)"),
    (r"np\.concatenate\(", "np.hstack("),
    (r"float\(c\)", "c"),
    (r"range\((\w+) \+ 1, len\((\w+)\)\)", r"range(\1 + 1, len(\2), 1)"),
    (r"(\w+) \+= ", r"\1 = \1 + "),
    (r"layers\[:-1\]", "list(layers)[:-1]"),
    (r"np\.zeros\(0, dtype=bool\)", "np.array([], dtype=bool)"),
    (r"len\((\w+)\) == 0", r"not len(\1)"),
    (r"\bif not any\(", "if True not in ("),
    (r"\.tolist\(\)", ""),
]


def idioms(source: str, rng: random.Random) -> str:
    """The same answer written with a student's own mix of small idioms."""
    for pattern, repl in IDIOMS:
        if rng.random() < 0.5:
            source = re.sub(pattern, repl, source)
    return source


def notebook(answers: dict[str, str]) -> dict:
    """The release with its answer cells replaced by ``answers``."""
    nb = json.loads(RELEASE_NB.read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution") and gid in answers:
            cell["source"] = answers[gid]
    return nb


def honest_class(n: int, seed: int = 5) -> dict[str, dict[str, list[int]]]:
    """Student -> per exercise the alternatives drawn; no two students draw the same set."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, dict[str, list[int]]] = {}
    while len(out) < n:
        pick = {gid: [rng.randrange(len(st)) for st in stages] for gid, stages in STAGES.items()}
        key = json.dumps(pick, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out[f"s{len(out):02d}"] = pick
    return out


RENAMES = {
    "h": "hinge_vals",
    "keep": "uniq",
    "value": "val",
    "probes": "xs",
    "lines": "lns",
    "vertices": "verts",
    "pattern": "acts",
    "row": "line_vec",
    "a": "act",
    "z": "pre",
    "slopes": "m",
    "intercepts": "q",
    "out": "result",
    "bits": "flags",
    "points": "pts",
}


def disguise(source: str, seed: int) -> str:
    """A copy made to look different: renamed, helpers moved, comments, literals, layout."""
    rng = random.Random(seed)
    src = re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group()], source)
    src = src.replace("1e-9", "1e-10").replace("1.0", "1.").replace("0.0", "0.")
    src = src.replace("1e-12", "0.000000000001").replace("1e-7", "2e-7")
    # helper functions after the graded function instead of before it
    blocks = re.split(r"\n\n\n", src)
    if len(blocks) > 1:
        src = "\n\n\n".join(blocks[1:] + blocks[:1]) + "\n"
    lines = []
    for line in src.splitlines():
        line = line.replace(", ", " ,  ").replace(" = ", "=")
        if line.strip() and rng.random() < 0.3:
            lines.append(line[: len(line) - len(line.lstrip())] + "# my own step, see the lecture")
        lines.append(line)
        if rng.random() < 0.2:
            lines.append("")
    return "\n".join(lines) + "\n"


PLANTED = {"s03": "copy_a", "s11": "copy_b", "s20": "copy_c"}
HELPERS = {"hinge_points": [0, 0, 3], "count_plane_regions": [0, 2, 2]}


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    """A flat folder: 34 honest students, 3 planted copies, 5 files to skip, the release."""
    root = tmp_path_factory.mktemp("class")
    picks = honest_class(N_HONEST)
    for origin in PLANTED:  # the copied students wrote helper functions, which the copy moves
        picks[origin].update(copy.deepcopy(HELPERS))
    rng = random.Random(7)
    sources = {
        s: {gid: idioms(answer(gid, choice), rng) for gid, choice in pick.items()}
        for s, pick in picks.items()
    }
    sources["s11"]["activation_pattern"] += '\n\nBANNER = "<script>alert(1)</script>"\n'
    for s, answers in sources.items():
        (root / f"{s}.ipynb").write_text(json.dumps(notebook(answers)))
    for k, (origin, name) in enumerate(PLANTED.items()):
        answers = {gid: disguise(src, k) for gid, src in sources[origin].items()}
        (root / f"{name}.ipynb").write_text(json.dumps(notebook(answers)))
    (root / "stub_a.ipynb").write_bytes(RELEASE_NB.read_bytes())
    (root / "stub_b.ipynb").write_bytes(RELEASE_NB.read_bytes())
    (root / "empty.ipynb").write_bytes(b"")
    (root / "broken.ipynb").write_text('{"cells": [ not json')
    (root / "notnb.ipynb").write_text('{"hello": "world"}')
    big = notebook({"hinge_points": HEADS["hinge_points"] + "    x = 1\n" * 300_000})
    (root / "huge.ipynb").write_text(json.dumps(big))
    return root


@pytest.fixture(scope="module")
def report(klass) -> sim.Report:
    return sim.similarity(COURSE, ASSIGNMENT, klass)


def test_planted_copies_rank_above_every_honest_pair(report):
    planted = {frozenset(p) for p in PLANTED.items()}
    scores = {frozenset((p.a, p.b)): p.score for p in report.pairs}
    copies = [scores.get(pair, 0.0) for pair in planted]
    honest = [
        p.score
        for p in report.pairs
        if frozenset((p.a, p.b)) not in planted
        and not ({p.a, p.b} & set(PLANTED.values()))  # a copy shares with its origin's peers too
    ]
    assert len(report.students) == N_HONEST + len(PLANTED)
    assert min(copies) > max(honest), (sorted(copies), sorted(honest)[-5:])
    assert min(copies) >= report.threshold > max(honest)
    top = {frozenset((p.a, p.b)) for p in report.pairs[: len(planted)]}
    assert top == planted


def test_release_and_bad_files_are_skipped_with_a_reason(report, klass):
    why = dict(report.skipped)
    assert "starter code" in why["stub_a"] and "starter code" in why["stub_b"]
    assert why["empty"] == "empty.ipynb: empty file"
    assert "not a notebook" in why["broken"] and "not a notebook" in why["notnb"]
    assert "too much answer code" in why["huge"]
    assert not {p.a for p in report.pairs} & set(why)


def test_release_alone_flags_nothing(tmp_path):
    for s in ("ann", "bob", "cat"):
        (tmp_path / f"{s}.ipynb").write_bytes(RELEASE_NB.read_bytes())
    # a student who only started: the release plus one line
    nb = notebook({"hinge_points": HEADS["hinge_points"] + "    w = np.asarray(w)\n"})
    (tmp_path / "dan.ipynb").write_text(json.dumps(nb))
    rep = sim.similarity(COURSE, ASSIGNMENT, tmp_path)
    assert not [p for p in rep.pairs if p.score >= rep.threshold]
    assert {s for s, _ in rep.skipped} == {"ann", "bob", "cat"}
    assert [s.student for s in rep.students] == ["dan"]


def test_tokens_ignore_names_literals_comments_and_layout():
    a = sim.tokens("y = np.where(x > 0, x, 0.5)  # relu\nreturn len(y)\n", "c")
    b = sim.tokens("out=np.where( inp>1 ,inp ,2 )\n\n\nreturn len(out)", "c")
    assert [t.kind for t in a] == [t.kind for t in b]
    assert "where" in [t.kind for t in a] and "V" in [t.kind for t in a]
    # code tokenize cannot read still gives tokens
    assert [t.kind for t in sim.tokens("    x = 1\n  y = 'a\n", "c")][:3] == ["V", "=", "N"]


def test_page_is_escaped_accessible_and_self_contained(report, tmp_path):
    paths = similarity_report.write(report, tmp_path, ASSIGNMENT, {"s11": "7.0 / 10.0"})
    page = paths["html"].read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page and "http" not in page
    assert "<h1>" in page and "<th scope='col'>" in page and "<mark>" in page
    assert "Legend" in page and "not a verdict" in page
    assert "7.0 / 10.0" in page
    rows = list(csv.DictReader(paths["csv"].open()))
    assert rows[0]["flagged"] == "yes" and float(rows[0]["score"]) >= report.threshold
    assert {r["student"] for r in csv.DictReader(paths["skipped"].open())} >= {"empty", "huge"}


def _grades(path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "score", "max_score", "status"])
        w.writerow(["s03", ASSIGNMENT, "9.0", "10.0", "ok"])
        w.writerow(["copy_a", ASSIGNMENT, "10.0", "10.0", "ok"])
    return path


def test_command_on_a_flat_folder(klass, tmp_path, capsys):
    grades = _grades(tmp_path / "grades.csv")
    out = tmp_path / "sim"
    args = ["--course", str(COURSE), "similarity", ASSIGNMENT, str(klass), "--out", str(out)]
    assert cli(args + ["--grades", str(grades)]) == 0
    text = capsys.readouterr().out
    assert "skipped broken: broken.ipynb: not a notebook" in text
    assert "not a verdict" in text
    rows = list(csv.DictReader((out / "similarity.csv").open()))
    row = next(r for r in rows if {r["student_a"], r["student_b"]} == {"s03", "copy_a"})
    assert {row["score_a"], row["score_b"]} == {"9.0 / 10.0", "10.0 / 10.0"}


def test_command_on_a_canvas_zip(klass, tmp_path, capsys):
    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i, p in enumerate(sorted(klass.glob("*.ipynb"))):
            login = p.stem.replace("_", "")  # Canvas logins have no underscore
            zf.write(p, f"{login}_{1000 + i}_{5000 + i}_{ASSIGNMENT}.ipynb")
    out = tmp_path / "sim"
    args = ["--course", str(COURSE), "similarity", ASSIGNMENT, str(zpath), "--out", str(out)]
    assert cli(args) == 0
    rows = list(csv.DictReader((out / "similarity.csv").open()))
    top = {frozenset((r["student_a"], r["student_b"])) for r in rows[:3]}
    assert top == {frozenset((a, b.replace("_", ""))) for a, b in PLANTED.items()}
    assert "huge" in (out / "skipped.csv").read_text()


def test_honest_answers_are_correct(klass):
    """Every honest student's answers agree with the solution on random inputs."""
    np = pytest.importorskip("numpy")
    source = json.loads((COURSE / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    ref: dict = {"np": np}
    for cell in source["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            exec("".join(cell["source"]), ref)
    rng = np.random.default_rng(0)
    w, b, v = rng.integers(-2, 3, (3, 5)).astype(float)
    layers = [(rng.normal(size=(3, 2)), rng.normal(size=3)), (rng.normal(size=(1, 3)), [0.0])]
    args = {
        "hinge_points": (w, b),
        "interval_formulas": (w, b, v, 0.5),
        "count_plane_regions": (rng.integers(-2, 3, (5, 2)).astype(float), b),
        "activation_pattern": (layers, rng.normal(size=2)),
    }
    for path in sorted(klass.glob("s[0-9]*.ipynb")):
        env = {"np": np}
        for cell in json.loads(path.read_text())["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                exec("".join(cell["source"]), env)
        for gid, a in args.items():
            got, want = env[gid](*a), ref[gid](*a)
            flat = [np.ravel(x) for x in (got if isinstance(got, tuple) else (got,))]
            ref_flat = [np.ravel(x) for x in (want if isinstance(want, tuple) else (want,))]
            assert np.allclose(np.concatenate(flat), np.concatenate(ref_flat)), (path.name, gid)


def test_odd_files_never_crash(tmp_path, capsys):
    nb = json.loads(RELEASE_NB.read_text())
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    odd = {
        "latin1": "é".encode("latin-1") * 10,
        "nested": b"[" * 100_000 + b"]" * 100_000,
        "list": b"[1, 2, 3]",
    }
    for name, data in odd.items():
        (tmp_path / f"{name}.ipynb").write_bytes(data)
    weird = copy.deepcopy(nb)
    answers_w = [c for c in weird["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    answers_w[0]["source"] = [1, 2]  # not text
    answers_w[1]["metadata"]["nbgrader"]["grade_id"] = ["not", "a", "name"]
    (tmp_path / "weird.ipynb").write_text(json.dumps(weird))
    nul = copy.deepcopy(nb)
    nul["cells"][nb["cells"].index(answers[0])]["source"] = "x = 1\x00\n" + "y = 'open\n" * 20
    (tmp_path / "nul.ipynb").write_text(json.dumps(nul))
    args = ["--course", str(COURSE), "similarity", ASSIGNMENT, str(tmp_path)]
    assert cli(args + ["--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    for name in ("latin1", "nested", "list", "weird"):
        assert f"skipped {name}: " in text
    assert "skipped weird: weird.ipynb: answer cell hinge_points: its source is not text" in text
    assert cli(args[:3] + ["no_such_assignment", str(tmp_path)]) == 2
    assert cli(args[:4] + [str(tmp_path / "missing.zip")]) == 2
