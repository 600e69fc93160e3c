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

import io
import math
import random
import signal
import threading
import time
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication,
    parse_expr,
    standard_transformations,
)

DIGITS = 50  # significant digits of every evaluation
TOLERANCE = sp.Float("1e-30", DIGITS)  # relative, or absolute where |expected| < 1
MAX_NODES = 3000  # larger answers are refused (a pathological expression)
MAX_EXPONENT = 1000  # integer powers beyond this are refused (exact evaluation would stall)
MAX_DIGITS = 200  # integers longer than this are refused
MAX_STRING = 2000


# ----------------------------------------------------------------- the course's functions
class sigma(sp.Function):  # noqa: N801  (the name a formula prints with)
    """The logistic sigmoid sigma(u) = 1 / (1 + e^-u) (chapter 2)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u = self.args[0]
        return sigma(u) * (1 - sigma(u))

    def _eval_rewrite_as_exp(self, u: sp.Expr, **kwargs: Any) -> sp.Expr:
        return 1 / (1 + sp.exp(-u))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)


class Phi(sp.Function):
    """The standard normal distribution function Phi(u) = (1 + erf(u / sqrt 2)) / 2 (chapter 2)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return phi(self.args[0])

    def _eval_rewrite_as_erf(self, u: sp.Expr, **kwargs: Any) -> sp.Expr:
        return (1 + sp.erf(u / sp.sqrt(2))) / 2

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return ((1 + sp.erf(self.args[0] / sp.sqrt(2))) / 2)._eval_evalf(prec)


class phi(sp.Function):  # noqa: N801
    """The standard normal density phi(u) = e^(-u^2/2) / sqrt(2 pi) (chapter 2)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u = self.args[0]
        return -u * phi(u)

    def _eval_rewrite_as_exp(self, u: sp.Expr, **kwargs: Any) -> sp.Expr:
        return sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return (sp.exp(-(self.args[0] ** 2) / 2) / sp.sqrt(2 * sp.pi))._eval_evalf(prec)


def _sigma_def(u: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-u))


def _Phi_def(u: sp.Expr) -> sp.Expr:  # noqa: N802
    return (1 + sp.erf(u / sp.sqrt(2))) / 2


def _phi_def(u: sp.Expr) -> sp.Expr:
    return sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)


# The course's own functions, recognised by name (a student may have built them from any
# class of that name), each replaced by its definition before anything is decided.
COURSE_FUNCTIONS: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "sigma": _sigma_def,
    "σ": _sigma_def,
    "Phi": _Phi_def,
    "Φ": _Phi_def,
    "phi": _phi_def,
    "φ": _phi_def,
    "varphi": _phi_def,
}

# SymPy classes a formula may be built from, rebuilt as these exact classes.
_ALLOWED_CLASSES: tuple[type, ...] = (
    sp.Add,
    sp.Mul,
    sp.Pow,
    sp.exp,
    sp.log,
    sp.tanh,
    sp.sinh,
    sp.cosh,
    sp.sech,
    sp.coth,
    sp.erf,
    sp.erfc,
    sp.Abs,
    sp.Max,
    sp.Min,
    sp.sign,
    sp.Heaviside,
    sp.Piecewise,
    sp.functions.elementary.piecewise.ExprCondPair,
    sp.StrictGreaterThan,
    sp.StrictLessThan,
    sp.GreaterThan,
    sp.LessThan,
    sp.Eq,
    sp.Ne,
    sp.And,
    sp.Or,
    sp.Not,
)

# Names a string answer may use, besides the exercise's variables.
STRING_NAMES: dict[str, Any] = {
    **{name: None for name in COURSE_FUNCTIONS},  # filled with the classes below
    "exp": sp.exp,
    "log": sp.log,
    "ln": sp.log,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "sech": sp.sech,
    "erf": sp.erf,
    "erfc": sp.erfc,
    "sqrt": sp.sqrt,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "Max": sp.Max,
    "max": sp.Max,
    "Min": sp.Min,
    "min": sp.Min,
    "sign": sp.sign,
    "Heaviside": sp.Heaviside,
    "Piecewise": sp.Piecewise,
    "pi": sp.pi,
    "π": sp.pi,
    "E": sp.E,
    "e": sp.E,
    "True": sp.true,
    "False": sp.false,
}
for _name, _cls in (("sigma", sigma), ("σ", sigma), ("Phi", Phi), ("Φ", Phi)):
    STRING_NAMES[_name] = _cls
for _name in ("phi", "φ", "varphi"):
    STRING_NAMES[_name] = phi

_STRING_OPS = {"+", "-", "*", "/", "**", "^", "(", ")", ",", "<", ">", "<=", ">=", "==", "!="}
_UNICODE = {"−": "-", "·": "*", "⋅": "*", "×": "*", "²": "**2", "³": "**3", "′": "'"}


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


class InvalidAnswer(ValueError):
    """The answer is not a formula this exercise can grade; the text says why."""


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


# ------------------------------------------------------------------------- the answer
def variables(*names: str) -> tuple[sp.Symbol, ...]:
    """Real SymPy symbols of these names, the ones every formula is rebuilt with."""
    return tuple(sp.Symbol(n, real=True) for n in names)


def _describe(answer: object) -> str:
    if answer is None:
        return "None (did you assign your formula to the variable?)"
    if isinstance(answer, bool):
        return f"the boolean {answer}"
    if isinstance(answer, (int, float, complex)) or type(answer).__module__ == "numpy":
        return f"the number {answer!r} ({type(answer).__name__})"
    return f"a {type(answer).__name__}"


def _example(names: Sequence[str]) -> str:
    return "sigma(z)*(1 - sigma(z))" if list(names) == ["z"] else "sigma(w1*x + b1)*(1 - y)"


def parse_answer(text: str, names: Sequence[str]) -> sp.Expr:
    """Parse a string formula using only ``names`` and :data:`STRING_NAMES`.

    Accepts ``^`` for powers, implicit products (``2z``, ``σ(z)(1 - σ(z))``) and the
    Unicode signs − · × ² ³. Raises :class:`InvalidAnswer` naming the first thing that
    is not allowed.
    """
    if len(text) > MAX_STRING:
        raise InvalidAnswer(f"the formula is {len(text)} characters long; at most {MAX_STRING}")
    for bad, good in _UNICODE.items():
        text = text.replace(bad, good)
    if not text.strip():
        raise InvalidAnswer("the formula is an empty string")
    allowed = set(names) | set(STRING_NAMES)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise InvalidAnswer(
            f"could not read {text!r} as a formula: unbalanced brackets or an unfinished "
            f"expression ({exc.args[0] if exc.args else exc})"
        ) from None
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string not in allowed:
            raise InvalidAnswer(
                f"the formula uses {tok.string!r}, which is not allowed here: use the "
                f"variables {', '.join(names)} and the functions "
                "sigma (σ), Phi (Φ), phi (φ), exp, log, tanh, erf, sqrt, Piecewise, ..."
            )
        if tok.type == tokenize.OP and tok.string not in _STRING_OPS:
            raise InvalidAnswer(f"the formula contains {tok.string!r}, which is not allowed")
        if tok.type in (tokenize.STRING, tokenize.ERRORTOKEN) and tok.string.strip():
            raise InvalidAnswer(f"the formula contains {tok.string!r}, which is not allowed")
    local = {name: STRING_NAMES[name] for name in STRING_NAMES}
    local.update({s.name: s for s in variables(*names)})
    safe_globals = {
        "Integer": sp.Integer,
        "Float": sp.Float,
        "Rational": sp.Rational,
        "Symbol": sp.Symbol,
        # what evaluate=False turns operators into
        "Add": sp.Add,
        "Mul": sp.Mul,
        "Pow": sp.Pow,
        "Gt": sp.Gt,
        "Lt": sp.Lt,
        "Ge": sp.Ge,
        "Le": sp.Le,
        "Eq": sp.Eq,
        "Ne": sp.Ne,
        "__builtins__": {},
    }
    try:
        expr = parse_expr(
            text,
            local_dict=local,
            global_dict=safe_globals,
            transformations=(*standard_transformations, implicit_multiplication, convert_xor),
            evaluate=False,  # 9^9^9 must reach the exponent check, not be computed here
        )
    except Exception as exc:  # noqa: BLE001  (the parser raises many kinds)
        raise InvalidAnswer(f"could not read {text!r} as a formula: {exc}") from None
    return expr


def _rebuild(node: Any, names: Mapping[str, sp.Symbol], budget: list[int]) -> sp.Basic:
    """``node`` rebuilt from the whitelist; :class:`InvalidAnswer` on anything else."""
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidAnswer(f"the formula has more than {MAX_NODES} parts; simplify it first")
    if isinstance(node, sp.Symbol):
        if node.name not in names:
            raise InvalidAnswer(
                f"the formula uses the symbol {node.name!r}, but it must be written in "
                f"{', '.join(names)} only"
            )
        return names[node.name]
    if isinstance(node, (sp.Integer, sp.Rational)):
        if max(len(str(abs(node.p))), len(str(node.q))) > MAX_DIGITS:
            raise InvalidAnswer(f"a number in the formula has more than {MAX_DIGITS} digits")
        return sp.Rational(int(node.p), int(node.q))
    if isinstance(node, sp.Float):
        return sp.Float(node, max(node._prec * 3 // 10, 15))
    if node in (sp.pi, sp.E, sp.true, sp.false):
        return node
    if isinstance(node, sp.Number) or node in (sp.oo, -sp.oo, sp.zoo, sp.nan):
        raise InvalidAnswer(f"the formula contains {node}, which is not a finite real number")
    if isinstance(node, sp.core.function.AppliedUndef) or (
        isinstance(node, sp.Function) and type(node).__name__ in COURSE_FUNCTIONS
    ):
        fname = type(node).__name__
        if fname not in COURSE_FUNCTIONS:
            raise InvalidAnswer(
                f"the formula uses the unknown function {fname!r}; allowed are sigma (σ), "
                "Phi (Φ), phi (φ) and SymPy's exp, log, tanh, erf, ..."
            )
        if len(node.args) != 1:
            raise InvalidAnswer(f"{fname} takes one argument, got {len(node.args)}")
        return COURSE_FUNCTIONS[fname](_rebuild(node.args[0], names, budget))
    cls = type(node)
    if cls not in _ALLOWED_CLASSES:
        raise InvalidAnswer(
            f"the formula uses {cls.__name__}, which is not allowed here (allowed: sigma, "
            "Phi, phi, exp, log, tanh, sinh, cosh, erf, erfc, Abs, Max, Min, Heaviside, "
            "Piecewise and arithmetic)"
        )
    args = [_rebuild(a, names, budget) for a in node.args]
    if cls is sp.Pow and args[1].is_Integer and abs(int(args[1])) > MAX_EXPONENT:
        raise InvalidAnswer(f"the exponent {args[1]} is too large to check")
    return cls(*args)


def to_formula(answer: object, names: Sequence[str]) -> sp.Expr:
    """The answer as a whitelisted SymPy expression in ``names``, or :class:`InvalidAnswer`."""
    if isinstance(answer, str):
        answer = parse_answer(answer, names)
    elif isinstance(answer, sp.Lambda):
        raise InvalidAnswer(
            f"got a SymPy Lambda; hand in its body, the formula itself, e.g. {_example(names)}"
        )
    elif isinstance(answer, type) or (callable(answer) and not isinstance(answer, sp.Basic)):
        what = getattr(answer, "__name__", type(answer).__name__)
        raise InvalidAnswer(
            f"got a Python function ({what}), not a formula: write the expression itself "
            f"in {', '.join(names)}, as SymPy or as a string, e.g. {_example(names)}"
        )
    elif not isinstance(answer, sp.Basic):
        raise InvalidAnswer(
            f"expected a SymPy expression (or a string) in {', '.join(names)}, got "
            f"{_describe(answer)}; e.g. {_example(names)}"
        )
    if isinstance(answer, (sp.Eq, sp.Ne)) or not isinstance(answer, sp.Expr):
        raise InvalidAnswer(
            f"expected an expression, got {type(answer).__name__} ({str(answer)[:80]}): "
            "hand in the right-hand side only"
        )
    if isinstance(answer, sp.MatrixBase) or not answer.is_commutative:
        raise InvalidAnswer("expected a scalar formula")
    canonical = {s.name: s for s in variables(*names)}
    return _rebuild(answer, canonical, [MAX_NODES])


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
