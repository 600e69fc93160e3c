"""What a formula may be built from, and how a student's answer becomes one.

:func:`to_formula` validates an answer (a SymPy expression or a string), built only
from the exercise's variables, numbers and a whitelist of functions (sigma, Phi, phi,
exp, log, tanh, erf, Piecewise, ...), and *rebuilds* it from that whitelist: symbols by
name (real, whatever assumptions the student declared), sigma / Phi / phi by name as
their definitions. Anything else raises :class:`InvalidAnswer` with a message saying
what was wrong. :mod:`autograder.symbolic` decides equivalence with what this returns
(and imports this module afresh each time it is imported itself).
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication,
    parse_expr,
    standard_transformations,
)

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


class InvalidAnswer(ValueError):
    """The answer is not a formula this exercise can grade; the text says why."""


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
