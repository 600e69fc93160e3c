"""Grade a derived formula: is a student's SymPy expression equivalent to the reference?

Chapters 2 and 3 ask for derivatives written as formulas. :func:`check_equivalent`
decides *equivalent*, *not equivalent* (with a point, the student's value there and the
expected one) or *undecided*, the way a mathematician would judge a hand-in:

1. the answer is validated: a SymPy expression or a string, built only from the
   exercise's variables, numbers and a whitelist of functions (sigma, Phi, phi, exp,
   log, tanh, erf, Piecewise, ...); anything else gets a message saying what was wrong;
2. the answer is *rebuilt* from that whitelist: symbols by name (real, whatever
   assumptions the student declared), sigma / Phi / phi by name as their definitions
   1/(1+e^-u), (1+erf(u/sqrt 2))/2 and e^(-u^2/2)/sqrt(2 pi). Nothing a student's cell
   defined (a subclass, a patched method, a positive symbol) survives into the check;
3. both are evaluated exactly at the test's points (kinks, large |z|, negative z) and at
   random points, to 50 significant digits with mpmath (through SymPy's evalf). A point
   where they differ beyond 1e-30 (relative, or absolute below 1) is a counterexample;
   looking for one first is cheap, and it would overrule a symbolic "0" anyway;
4. SymPy simplifies the difference from the reference, under a time limit: 0 is a
   proof. Agreement at every point without a proof is accepted as numerically
   equivalent (as WeBWorK does), and said so.

A time limit (SIGALRM, so only in the main thread, which is where a Jupyter kernel and
pytest run test code) bounds the whole check: running out of it gives "undecided",
never a crash or a stalled grader. Off the main thread the symbolic step is skipped and
expressions that are too large are refused up front.

Graded notebooks import this module afresh in each test cell (dropping it from
``sys.modules`` first), so a student's earlier cells cannot replace the function that
decides the grade, and build the reference there.
"""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

# The formula half comes afresh with this module (see above): nothing a student's cell
# did to an already loaded copy of it survives into a check.
sys.modules.pop("autograder.formula", None)
from autograder.formula import (  # noqa: E402
    COURSE_FUNCTIONS,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_NODES,
    MAX_STRING,
    STRING_NAMES,
    InvalidAnswer,
    Phi,
    parse_answer,
    phi,
    sigma,
    to_formula,
    variables,
)

__all__ = [
    "COURSE_FUNCTIONS",
    "DIGITS",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_NODES",
    "MAX_STRING",
    "STRING_NAMES",
    "TOLERANCE",
    "InvalidAnswer",
    "Phi",
    "Verdict",
    "assert_equivalent",
    "can_interrupt",
    "check_equivalent",
    "parse_answer",
    "phi",
    "sigma",
    "time_limit",
    "to_formula",
    "variables",
]

DIGITS = 50  # significant digits of every evaluation
TOLERANCE = sp.Float("1e-30", DIGITS)  # relative, or absolute where |expected| < 1


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Verdict:
    """The outcome of one check.

    ``status`` is "equivalent", "not_equivalent", "undecided" or "invalid" (the answer is
    not a usable formula). ``method`` says how equivalence was established: "symbolic"
    (the difference simplified to 0) or "numeric" (agreement at every point). For
    "not_equivalent", ``point`` holds the counterexample and ``got`` / ``expected`` the
    two values there.
    """

    status: str
    message: str
    method: str = ""
    point: dict[str, str] | None = None
    got: str | None = None
    expected: str | None = None
    points_checked: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def equivalent(self) -> bool:
        return self.status == "equivalent"


class _OutOfTime(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`_OutOfTime` in the block after ``seconds`` (main thread, POSIX only).

    Elsewhere the block runs unbounded: callers check :func:`can_interrupt` first.
    """
    if not can_interrupt():
        yield
        return
    if seconds <= 0:
        raise _OutOfTime

    active = [True]

    def _ring(signum: int, frame: Any) -> None:
        if active[0]:
            raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, _ring)
    # The alarm repeats every 50 ms until the block ends: an exception raised where
    # Python only reports it (a finaliser, a weakref callback inside SymPy's caches)
    # would otherwise be lost and leave the computation running for ever.
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        while True:  # a last alarm may ring while this cleans up: finish the cleaning
            try:
                active[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                if old_delay:  # an outer timer was running: give it back what is left
                    signal.setitimer(
                        signal.ITIMER_REAL, max(old_delay - seconds, 1e-3), old_interval
                    )
                break
            except _OutOfTime:
                continue


def can_interrupt() -> bool:
    """Whether :func:`time_limit` can stop a computation here."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


# ------------------------------------------------------------------------ evaluation
def _exact(value: object) -> sp.Rational:
    """A point coordinate as an exact rational (floats through their shortest repr)."""
    if isinstance(value, sp.Rational):
        return value
    if isinstance(value, int):
        return sp.Integer(value)
    return sp.Rational(repr(float(value)))


def _value(expr: sp.Expr, point: Mapping[sp.Symbol, sp.Rational]) -> sp.Expr | None:
    """``expr`` at ``point`` to :data:`DIGITS` digits, or ``None`` where not a finite real."""
    try:
        v = sp.N(expr.xreplace(dict(point)), DIGITS, maxn=400)
    except (ZeroDivisionError, ValueError, TypeError, OverflowError, ArithmeticError):
        return None
    if v.free_symbols or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    re, im = v.as_real_imag()
    if not re.is_Number or not im.is_Number:
        return None
    if im != 0 and abs(im) > TOLERANCE * max(1, abs(re)):
        return None
    return sp.Float(re, DIGITS)


def _show(v: sp.Expr | None) -> str:
    if v is None:
        return "undefined (not a finite real number)"
    return f"{float(v):.15g}" if abs(v) > sp.Float("1e-300") or v == 0 else sp.N(v, 15).__str__()


def _fmt_point(point: Mapping[sp.Symbol, sp.Rational]) -> dict[str, str]:
    out = {}
    for s, v in point.items():
        out[s.name] = str(v) if v.q == 1 else f"{float(v):.10g}"
    return out


def _points(
    syms: Sequence[sp.Symbol],
    points: Iterable[object],
    domain: Mapping[str, tuple[float, float]] | tuple[float, float],
    n_random: int,
    seed: int | None,
) -> list[dict[sp.Symbol, sp.Rational]]:
    out: list[dict[sp.Symbol, sp.Rational]] = []
    for p in points:
        if isinstance(p, Mapping):
            out.append({s: _exact(p[s.name]) for s in syms})
        elif isinstance(p, (tuple, list)):
            out.append({s: _exact(v) for s, v in zip(syms, p, strict=True)})
        else:
            out.append({syms[0]: _exact(p)})
    rng = random.Random(seed)
    for _ in range(n_random):
        pt = {}
        for s in syms:
            lo, hi = domain[s.name] if isinstance(domain, Mapping) else domain
            pt[s] = sp.Rational(round(rng.uniform(lo, hi) * 10**6), 10**6)
        out.append(pt)
    return out


def _simplifies_to_zero(diff: sp.Expr) -> bool:
    """Whether SymPy proves ``diff == 0`` (cheap rewrites first, then simplify)."""
    if diff == 0:
        return True
    for step in (
        sp.expand,
        lambda e: sp.simplify(sp.piecewise_fold(e)),
        lambda e: sp.simplify(e.rewrite(sp.exp)),
    ):
        if step(diff) == 0:
            return True
    return False


def check_equivalent(
    answer: object,
    reference: sp.Expr,
    names: Sequence[str] = ("z",),
    *,
    points: Iterable[object] = (),
    domain: Mapping[str, tuple[float, float]] | tuple[float, float] = (-6.0, 6.0),
    n_random: int = 12,
    seed: int | None = 0,
    timeout: float = 10.0,
    symbolic: bool = True,
    symbolic_share: float = 0.5,
    definitions: Mapping[str, sp.Expr] | None = None,
) -> Verdict:
    """Decide whether ``answer`` equals ``reference`` as a function of ``names``.

    Args:
        answer: the student's formula (SymPy expression or string).
        reference: the expected formula, built by the caller (never the student).
        names: the variables the formula may use.
        points: points the check must include (a number for one variable, else a tuple
            or a mapping by name): kinks, large |z|, negative z.
        domain: the interval random points are drawn from, one for all variables or one
            per name.
        n_random: how many random points are added.
        seed: the random points' seed (a test keeps its own hidden).
        timeout: seconds for the whole check; running out gives "undecided".
        symbolic: try to prove the difference is 0 before evaluating.
        symbolic_share: the fraction of ``timeout`` the proof may take.
        definitions: shorthand names the answer may also use, each with its formula in
            ``names`` (chapter 3: ``a1`` for sigma(w1 x + b1)); they are substituted
            before anything is compared.
    """
    start = time.perf_counter()
    names = list(names)

    def done(status: str, message: str, **kw: Any) -> Verdict:
        return Verdict(status, message, seconds=time.perf_counter() - start, **kw)

    defs = dict(definitions or {})
    try:
        with time_limit(timeout):
            student = to_formula(answer, [*names, *defs])
            if defs:
                full = {s: to_formula(defs[s.name], names) for s in variables(*defs)}
                student = student.xreplace(full)
    except InvalidAnswer as exc:
        return done("invalid", str(exc))
    except _OutOfTime:
        return done("undecided", f"could not read the formula within {timeout:g} s")
    try:
        expected = to_formula(reference, names)
    except InvalidAnswer as exc:  # a broken test, not the student's fault
        raise ValueError(f"the reference formula is not valid: {exc}") from None
    syms = variables(*names)
    pts = _points(syms, points, domain, n_random, seed)
    decimals = student.atoms(sp.Float) - {sp.Float(0.5), sp.Float(1), sp.Float(2)}
    hint = (
        "; your formula contains the decimal number(s) "
        + ", ".join(f"{float(f):.10g}" for f in sorted(decimals)[:3])
        + ": write exact constants instead (sympy.pi, sympy.sqrt(2), sympy.Rational(1, 2))"
        if decimals
        else ""
    )

    # The points first: a counterexample overrules any proof, and finding one is cheap.
    # Each point gets at most a quarter of the time: one that needs thousands of digits
    # (Phi at z = -1000) is skipped, not allowed to use up the whole check.
    checked = skipped = 0
    for pt in pts:
        left = timeout - (time.perf_counter() - start)
        if left <= 0:
            return done(
                "undecided",
                f"could not decide within {timeout:g} s (the formula may be too complicated "
                "to check); write it more simply",
                points_checked=checked,
            )
        try:
            with time_limit(min(left, timeout / 4)):
                want = _value(expected, pt)
                got = None if want is None else _value(student, pt)
        except _OutOfTime:
            skipped += 1
            continue
        if want is None:
            continue  # outside the reference's domain: not a test point
        checked += 1
        if got is None or abs(got - want) > TOLERANCE * max(1, abs(want)):
            where = _fmt_point(pt)
            at = ", ".join(f"{k} = {v}" for k, v in where.items())
            return done(
                "not_equivalent",
                f"not equivalent to the expected formula: at {at} your formula gives "
                f"{_show(got)}, the expected value is {_show(want)}{hint}",
                point=where,
                got=_show(got),
                expected=_show(want),
                points_checked=checked,
            )
    # Then the proof, with what is left of the time (bounded by symbolic_share of it).
    proved = False
    left = timeout - (time.perf_counter() - start)
    if symbolic and can_interrupt() and left > 0:
        try:
            with time_limit(min(left, timeout * symbolic_share)):
                proved = _simplifies_to_zero(student - expected)
        except _OutOfTime:
            proved = False
        except Exception:  # noqa: BLE001  (SymPy gives up in many ways)
            proved = False
    if proved:
        return done(
            "equivalent",
            "equivalent: the difference from the expected formula simplifies to 0",
            method="symbolic",
            points_checked=checked,
        )
    if checked < max(3, len(pts) // 2):
        slow = f" ({skipped} took too long to evaluate)" if skipped else ""
        return done(
            "undecided",
            f"could not decide: the formulas could be compared at only {checked} points{slow}",
            points_checked=checked,
        )
    return done(
        "equivalent",
        f"equivalent: agrees with the expected formula at all {checked} points "
        f"to {int(-math.log10(float(TOLERANCE)))} digits",
        method="numeric",
        points_checked=checked,
    )


def assert_equivalent(
    answer: object, reference: sp.Expr, names: Sequence[str] = ("z",), *, label: str, **kw: Any
) -> Verdict:
    """:func:`check_equivalent`, raising ``AssertionError("label: why")`` unless equivalent."""
    verdict = check_equivalent(answer, reference, names, **kw)
    if not verdict.equivalent:
        raise AssertionError(f"{label}: {verdict.message}")
    return verdict
