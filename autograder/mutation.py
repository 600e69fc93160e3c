"""Mutation testing of graded notebooks: do the tests take points from plausible wrong answers?

For every answer cell of an assignment's source notebook, wrong answers are derived
from the solution itself, one change each, the kind of slip a student makes:

* ``sign``: a number negated, ``+`` for ``-`` and back, a unary minus dropped;
* ``off_by_one``: an integer one more or one less, ``range(n)`` one longer or shorter;
* ``boundary``: ``<`` for ``<=``, ``>`` for ``>=`` and back;
* ``axis``: a reduction along the other axis (``axis=``/``dim=`` or a ``.sum(0)``), or along all;
* ``exact``: a small tolerance set to 0, ``isclose``/``allclose`` replaced by exact equality;
* ``list``: the arrays or tensors a function returns handed back as Python lists;
* ``hardcode``: the answer to the first call (the visible example) returned for every call;
* ``stub``: the released stub, untouched;
* ``test_helper``: the answer delegated to a function that the release's test cells define
  (when its arity fits): a visible test must never be an oracle.

Each wrong answer ("mutant") is run the way grading runs it: in a kernel that has run the
notebook with its hidden tests, the answer cell is replaced and every cell after it runs
again in order. The mutant is *killed* when a graded cell fails (an error or a timeout),
and *survives* when every graded cell still passes. A ``list`` mutant whose function never
returned an array, or a mutant whose cell does not even define its function, is
``not_applicable``; a wrapper whose answer cell raised is ``broken``. Survivors are
either killed by a new hidden case or listed, each with why it is acceptable, in an accepted-survivors file; ``python -m autograder.mutation``
writes the report.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from autograder.checks import nbgrader_meta
from autograder.mutants import KINDS, Mutant, notebook_mutants
from autograder.testcode import is_answer_cell, is_test_cell


@dataclass
class Outcome:
    """What running one mutant gave."""

    key: str
    exercise: str
    kind: str
    before: str
    after: str
    status: str  # killed, survived, not_applicable, broken
    cell: str = ""  # the graded cell that killed it
    message: str = ""
    seconds: float = 0.0
    accepted: str = ""  # why a survivor is acceptable (from the accepted-survivors file)


@dataclass
class Report:
    """All mutants of one notebook."""

    assignment: str
    notebook: str
    outcomes: list[Outcome] = field(default_factory=list)
    baseline_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def unexplained(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "survived" and not o.accepted]


# Defined in the kernel before any mutant runs; the names cannot clash with a notebook's.
KERNEL_SUPPORT = """
import copy as __mutation_copy
import functools as __mutation_functools
__mutation_applied = [0]


def __mutation_as_list(value):
    if hasattr(value, "tolist") and hasattr(value, "shape") and len(getattr(value, "shape", ())) > 0:
        __mutation_applied[0] += 1
        return value.tolist()
    if isinstance(value, list):
        return [__mutation_as_list(v) for v in value]
    if isinstance(value, tuple):
        return tuple(__mutation_as_list(v) for v in value)
    if isinstance(value, dict):
        return {k: __mutation_as_list(v) for k, v in value.items()}
    return value


def __mutation_listify(fn):
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return __mutation_as_list(fn(*args, **kwargs))
    return wrapped


def __mutation_first_answer(fn):
    memo = []
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if not memo:
            memo.append(fn(*args, **kwargs))
        __mutation_applied[0] += 1
        return __mutation_copy.deepcopy(memo[0])
    return wrapped


def __mutation_delegate(fn, helper):
    @__mutation_functools.wraps(fn)
    def wrapped(*args, **kwargs):
        __mutation_applied[0] += 1
        return globals()[helper](*args, **kwargs)
    return wrapped
"""


class Kernel:
    """A Jupyter kernel that runs cells with a time limit and says whether each raised."""

    def __init__(self, cwd: Path) -> None:
        import subprocess

        from jupyter_client.manager import KernelManager

        env = dict(os.environ)
        env.update(
            NBGRADER_EXECUTION="autograde",
            MPLBACKEND="Agg",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            PYTHONHASHSEED="0",
        )
        self.km = KernelManager(kernel_name="python3")
        # The kernel's own chatter (the TCP warning) is noise in a report.
        self.km.start_kernel(cwd=str(cwd), env=env, stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float) -> tuple[bool, str]:
        """(True, "") when the code ran; (False, "Ename: message") when it raised or timed out."""
        errors: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        try:
            reply = self.kc.execute_interactive(
                code, timeout=timeout, output_hook=hook, store_history=False, allow_stdin=False
            )
        except TimeoutError:
            self.km.interrupt_kernel()
            self._drain(30)
            return False, f"Timeout: the cell ran past {timeout:.0f} s"
        if reply["content"]["status"] != "ok":
            c = reply["content"]
            return False, errors[0] if errors else f"{c.get('ename')}: {c.get('evalue')}"
        return True, ""

    def _drain(self, timeout: float) -> None:
        """After an interrupt, wait for the kernel to be idle again (restart it if it is not)."""
        try:
            self.kc.execute_interactive("pass", timeout=timeout, store_history=False)
        except TimeoutError:
            self.km.restart_kernel(now=True)
            self.kc.wait_for_ready(timeout=120)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_notebook(
    source_path: Path,
    release_path: Path,
    accepted: dict[str, str] | None = None,
    only: set[str] | None = None,
    timeout_factor: float = 5.0,
    min_timeout: float = 20.0,
    log: Any = None,
) -> Report:
    """Run every mutant of one source notebook against its tests (hidden ones included).

    Args:
        source_path: the nbgrader source notebook (solutions and hidden tests).
        release_path: its release (for the stubs and the visible test helpers).
        accepted: mutant key -> why its survival is acceptable.
        only: mutant kinds to run (default: all).
        timeout_factor: a cell may take this many times its time in the solution's run.
        min_timeout: seconds a cell may take whatever the solution needed.
        log: a file to print progress to (default: none).
    """
    accepted = accepted or {}
    start = time.monotonic()
    source_nb = nbformat.read(source_path, as_version=4)
    release_nb = nbformat.read(release_path, as_version=4)
    report = Report(source_path.parent.name, source_path.name)
    cells = [c for c in source_nb.cells if c.cell_type == "code"]
    graded = {i: nbgrader_meta(c)["grade_id"] for i, c in enumerate(cells) if is_test_cell(c)}
    answer_at = {
        nbgrader_meta(c).get("grade_id"): i for i, c in enumerate(cells) if is_answer_cell(c)
    }
    mutants = [m for m in notebook_mutants(source_nb, release_nb) if not only or m.kind in only]

    # The kernel works in a copy of the notebook's folder: a mutant writes nowhere that matters.
    work = Path(tempfile.mkdtemp(prefix="mutants-"))
    shutil.copytree(source_path.parent, work / "nb", ignore=shutil.ignore_patterns("*.ipynb"))
    kernel = Kernel(work / "nb")
    try:
        ok, why = kernel.run(KERNEL_SUPPORT, 60)
        if not ok:
            raise RuntimeError(f"could not prepare the kernel: {why}")
        limit: dict[int, float] = {}
        for i, cell in enumerate(cells):
            t = time.monotonic()
            ok, why = kernel.run(cell.source, 600)
            limit[i] = max(min_timeout, timeout_factor * (time.monotonic() - t))
            if not ok and i in graded:
                report.baseline_failures.append(f"{graded[i]}: {_one_line(why)}")
        if report.baseline_failures:
            return report

        current: int | None = None
        for m in mutants:
            a = answer_at[m.exercise]
            if current is not None and current != a:
                _restore(kernel, cells, current, a, limit)
            current = a
            t = time.monotonic()
            outcome = _run_mutant(kernel, m, cells, a, graded, limit)
            outcome.seconds = round(time.monotonic() - t, 2)
            if outcome.status == "survived" and m.key in accepted:
                outcome.accepted = accepted[m.key]
            report.outcomes.append(outcome)
            if log:
                print(f"  {outcome.status:>14}  {m.key}", file=log, flush=True)
            kernel.run(cells[a].source, limit[a])
    finally:
        kernel.close()
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = round(time.monotonic() - start, 1)
    return report


def _restore(kernel: Kernel, cells: list, frm: int, to: int, limit: dict[int, float]) -> None:
    """Run the solution's cells from one answer cell up to the next: their state is the solution's."""
    for i in range(frm, to):
        kernel.run(cells[i].source, limit[i])


def _run_mutant(
    kernel: Kernel, m: Mutant, cells: list, a: int, graded: dict[int, str], limit: dict[int, float]
) -> Outcome:
    out = Outcome(m.key, m.exercise, m.kind, m.before, m.after, "killed")
    # What the solution's cell defined must not outlive it: a stub that raises before it
    # assigns its answer would otherwise leave the solution's value in place. Names that
    # earlier cells bind too (an import repeated) stay, as they would in grading.
    earlier = set().union(*(defined_names(c.source) for c in cells[:a]))
    names = sorted(defined_names(cells[a].source) - earlier)
    kernel.run(f"for __n in {names!r}:\n    globals().pop(__n, None)", 10)
    # A cell that raises (a stub of plain statements does) is what grading meets too: the
    # cells after it still run.
    ok, why = kernel.run(m.source, limit[a])
    if not ok and m.wrapper:
        out.status, out.message = "broken", f"the answer cell raised {_one_line(why)}"
        return out
    if m.wrapper:
        kernel.run("__mutation_applied[0] = 0", 10)
        ok, why = kernel.run(m.wrapper, 10)
        if not ok:
            out.status, out.message = "not_applicable", _one_line(why)
            return out
    for i in range(a + 1, len(cells)):
        ok, why = kernel.run(cells[i].source, limit[i])
        if i in graded and not ok:
            out.cell, out.message = graded[i], _one_line(why)
            return out
    out.status = "survived"
    # A wrapper that never changed a result (no array to list) made no mutant at all.
    if m.wrapper and kernel.run("assert __mutation_applied[0] == 0", 10)[0]:
        out.status = "not_applicable"
        out.message = (
            "the function never returned an array"
            if m.kind == "list"
            else "the function was never called"
        )
    return out


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [getattr(node, "target", None)]
                + [i.optional_vars for i in getattr(node, "items", [])]
            )
            for t in targets:
                if t is not None:
                    out.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return out


def load_accepted(path: Path) -> dict[str, str]:
    """Accepted survivors: ``[[survivor]]`` tables with ``key`` and ``why``."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    out = {}
    for entry in data.get("survivor", []):
        if not str(entry.get("why", "")).strip():
            raise ValueError(f"{path}: accepted survivor {entry.get('key')!r} gives no reason")
        out[entry["key"]] = entry["why"].strip()
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(reports: list[Report], command: str) -> str:
    """The report: kill rate per notebook, then every survivor and why, then every mutant."""
    lines = [
        "# Mutation testing of the graded notebooks",
        "",
        "Each answer cell's solution is changed in one plausible way (a flipped sign, an",
        "off-by-one, `<` for `<=`, another axis, an exact comparison instead of a tolerance,",
        "lists for arrays, the visible example's answer hard-coded, the stub, or a call to a",
        "function of the visible tests) and graded with the hidden tests. A mutant is killed",
        "when a graded cell fails. Generated by:",
        "",
        "```bash",
        command,
        "```",
        "",
        "The kill rate counts killed mutants among those that apply; a survivor is either",
        "killed by a new hidden case or listed below with why it is acceptable (most are",
        "equivalent to the solution), and `unexplained` must be 0.",
        "",
        "| notebook | mutants | killed | survived (accepted) | unexplained | not applicable "
        "| kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        applicable = r.count("killed") + r.count("survived")
        rate = f"{100 * r.count('killed') / applicable:.1f} %" if applicable else "n/a"
        accepted = sum(1 for o in r.outcomes if o.status == "survived" and o.accepted)
        lines.append(
            f"| {r.assignment} | {len(r.outcomes)} | {r.count('killed')} | "
            f"{r.count('survived')} ({accepted}) | {len(r.unexplained)} | "
            f"{r.count('not_applicable')} | {rate} |"
        )
    lines += ["", "## Survivors", ""]
    survivors = [(r, o) for r in reports for o in r.outcomes if o.status == "survived"]
    if not survivors:
        lines.append("None: every applicable mutant loses points.")
    for r, o in survivors:
        why = o.accepted or "**not explained: a hidden case must kill it**"
        lines.append(
            f"- {r.assignment}, `{o.exercise}` ({o.kind}): `{o.before}` → `{o.after}`. {why}"
        )
    broken = [(r, o) for r in reports for o in r.outcomes if o.status == "broken"]
    if broken:
        lines += ["", "## Mutants that did not run", ""]
        for r, o in broken:
            lines.append(f"- {r.assignment}, `{o.key}`: {o.message}")
    lines += ["", "## Every mutant", ""]
    for r in reports:
        lines += [
            f"### {r.assignment}",
            "",
            "| answer cell | kind | change | outcome | graded cell and message |",
            "| --- | --- | --- | --- | --- |",
        ]
        for o in r.outcomes:
            change = f"`{_md_cell(o.before)}` → `{_md_cell(o.after)}`"
            detail = f"{o.cell}: {_md_cell(o.message)}" if o.cell else _md_cell(o.message)
            lines.append(f"| {o.exercise} | {o.kind} | {change} | {o.status} | {detail} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.mutation",
        description="Grade plausible wrong answers to every exercise; report which lose points.",
    )
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course root (default: .)")
    parser.add_argument(
        "--accepted",
        type=Path,
        default=None,
        help="accepted survivors (TOML; default: COURSE/benchmarks/mutation_accepted.toml)",
    )
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome as JSON here")
    parser.add_argument("--kind", action="append", choices=KINDS, help="only these kinds")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    names = args.assignments or sorted(
        p.name for p in (course / "solutions").iterdir() if any(p.glob("*.ipynb"))
    )
    accepted = load_accepted(args.accepted or course / "benchmarks" / "mutation_accepted.toml")
    reports = []
    for name in names:
        for src in sorted((course / "solutions" / name).glob("*.ipynb")):
            rel = course / "exercises" / name / src.name
            if not args.quiet:
                print(f"{name}/{src.name}", file=sys.stderr, flush=True)
            reports.append(
                run_notebook(
                    src,
                    rel,
                    accepted,
                    set(args.kind) if args.kind else None,
                    log=None if args.quiet else sys.stderr,
                )
            )
    command = "python -m autograder.mutation --report benchmarks/MUTATION.md"
    if args.report:
        args.report.write_text(markdown(reports, command))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    bad = 0
    for r in reports:
        applicable = r.count("killed") + r.count("survived")
        print(
            f"{r.assignment}: {r.count('killed')}/{applicable} killed, "
            f"{len(r.unexplained)} unexplained survivors, {r.count('broken')} broken, "
            f"{r.seconds:.0f} s"
        )
        for f in r.baseline_failures:
            print(f"  the solution fails {f}")
        for o in r.unexplained:
            print(f"  survived: {o.key}")
        bad += len(r.unexplained) + len(r.baseline_failures) + r.count("broken")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
