"""The formula grader: equivalent forms accepted, plausible mistakes rejected with a point."""

from __future__ import annotations

import math
import time

import pytest
import sympy as sp

from autograder import symbolic as S

z, alpha = sp.symbols("z alpha", real=True)
x, y, w1, w2, w3, b1, b2, b3 = sp.symbols("x y w1 w2 w3 b1 b2 b3", real=True)
CHAIN = ("x", "y", "w1", "w2", "w3", "b1", "b2", "b3")


def _sig(u: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-u))


def _Phi(u: sp.Expr) -> sp.Expr:  # noqa: N802
    return (1 + sp.erf(u / sp.sqrt(2))) / 2


# The references, each by SymPy differentiating the activation (not from the module).
SOFTPLUS = sp.diff(sp.log(1 + sp.exp(z)), z)
TANH = sp.diff(sp.tanh(z), z)
GELU = sp.diff(z * _Phi(z), z)
SILU = sp.diff(z * _sig(z), z)
# ELU'(z): 1 for z > 0 and alpha e^z for z <= 0 (the left slope at the kink, as PyTorch).
ELU = sp.Piecewise((sp.diff(z, z), z > 0), (sp.diff(alpha * (sp.exp(z) - 1), z), True))
RELU = sp.Piecewise((1, z > 0), (0, True))

_a1 = _sig(w1 * x + b1)
_a2 = _sig(w2 * _a1 + b2)
_a3 = _sig(w3 * _a2 + b3)
CHAIN_W1 = sp.diff((_a3 - y) ** 2 / 2, w1)
CHAIN_DEFS = {"a1": _a1, "a2": _a2, "a3": _a3}

Z_POINTS = [0, -3, 3, -40, 40, -700, 0.5]
KW = {
    "softplus": {"reference": SOFTPLUS, "names": ("z",), "points": Z_POINTS},
    "tanh": {"reference": TANH, "names": ("z",), "points": Z_POINTS},
    "gelu": {"reference": GELU, "names": ("z",), "points": [0, -3, 3, -30, 30, 1.5]},
    "silu": {"reference": SILU, "names": ("z",), "points": Z_POINTS},
    "elu": {
        "reference": ELU,
        "names": ("z", "alpha"),
        "points": [(0, 0.5), (0, 2), (-3, 1.5), (3, 0.7), (-40, 1.2), (1e-9, 2)],
        "domain": {"z": (-6, 6), "alpha": (0.1, 3)},
    },
    "relu": {"reference": RELU, "names": ("z",), "points": [0, -1, 1, 1e-12, -1e-12]},
    "chain": {
        "reference": CHAIN_W1,
        "names": CHAIN,
        "definitions": CHAIN_DEFS,
        "points": [(1.5, 0, 0.8, -1.2, 1.1, 0.1, 0.4, -0.3), (-2, 1, 3, 2, -4, 1, -1, 2)],
        "domain": {
            "x": (-3, 3),
            "y": (0, 1),
            **{n: (-2, 2) for n in ("w1", "w2", "w3")},
            **{n: (-1, 1) for n in ("b1", "b2", "b3")},
        },
    },
}

_s, _t = S.sigma(z), sp.tanh(z / 2)
_A = "(a3 - y)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*a1*(1 - a1)"
EQUIVALENT = {
    "softplus": [
        "sigma(z)",
        "σ(z)",
        _s,
        "1/(1 + exp(-z))",
        "exp(z)/(1 + exp(z))",
        "1 - sigma(-z)",
        "(1 + tanh(z/2))/2",
        "1/2 + tanh(z/2)/2",
        "1/(1 + e^(-z))",
        "exp(z/2)/(exp(z/2) + exp(-z/2))",
        "exp(z - log(1 + exp(z)))",
        sp.Rational(1, 2) * (1 + _t),
    ],
    "tanh": [
        "1 - tanh(z)^2",
        "sech(z)^2",
        "1/cosh(z)^2",
        "4*sigma(2z)*(1 - sigma(2z))",
        "4*sigma(2*z)*sigma(-2*z)",
        "(1 - tanh(z))*(1 + tanh(z))",
        "4/(exp(z) + exp(-z))^2",
        "4*exp(2z)/(exp(2z) + 1)^2",
        "1 - (2*sigma(2*z) - 1)^2",
        "(cosh(z)^2 - sinh(z)^2)/cosh(z)^2",
        1 - sp.tanh(z) ** 2,
    ],
    "gelu": [
        "Phi(z) + z*phi(z)",
        "Φ(z) + z·φ(z)",
        S.Phi(z) + z * S.phi(z),
        "(1 + erf(z/sqrt(2)))/2 + z*exp(-z^2/2)/sqrt(2*pi)",
        "erfc(-z/sqrt(2))/2 + z*phi(z)",
        "1 - Phi(-z) + z*phi(z)",
        "Phi(z) + z*phi(-z)",
        "(1 + erf(z/sqrt(2)) + z*sqrt(2/pi)*exp(-z^2/2))/2",
        "Phi(z) + z/sqrt(2*pi*exp(z^2))",
        "1/2 + erf(sqrt(2)*z/2)/2 + z*phi(z)",
        "Phi(z)*(1 + z*phi(z)/Phi(z))",
    ],
    "silu": [
        "sigma(z)*(1 + z*(1 - sigma(z)))",
        "sigma(z) + z*sigma(z)*(1 - sigma(z))",
        "σ(z)(1 + z σ(-z))",
        "sigma(z) + z*sigma(z)*sigma(-z)",
        "(1 + exp(-z) + z*exp(-z))/(1 + exp(-z))^2",
        "sigma(z) + z*exp(-z)/(1 + exp(-z))^2",
        "(1 + tanh(z/2))/2 + z*(1 - tanh(z/2)^2)/4",
        "sigma(z) + z/(4*cosh(z/2)^2)",
        "sigma(z)*(1 + z - z*sigma(z))",
        "exp(z)*(exp(z) + 1 + z)/(exp(z) + 1)^2",
        _s + z * _s - z * _s**2,
    ],
    "elu": [
        "Piecewise((1, z > 0), (alpha*exp(z), True))",
        "Piecewise((alpha*exp(z), z <= 0), (1, True))",
        "Piecewise((1, 0 < z), (alpha*E^z, True))",
        "Piecewise((1, z > 0), (alpha/exp(-z), True))",
        "Piecewise((1, z > 0), (alpha*exp(z/2)^2, True))",
        "Piecewise((1, z > 0), (alpha*sigma(z)/sigma(-z), True))",
        "Piecewise((1, z > 0), (alpha*(1 + tanh(z/2))/(1 - tanh(z/2)), True))",
        "Piecewise((1, z > 0), (0, True)) + Piecewise((0, z > 0), (alpha*exp(z), True))",
        "Heaviside(z, 0) + Heaviside(-z, 1)*alpha*exp(z)",
        "Piecewise((1, z > 0), (alpha*(exp(z) - 1) + alpha, True))",
        sp.Piecewise((1, z > 0), (alpha * sp.exp(z), True)),
    ],
    "chain": [
        _A + "*x",
        "x*w2*w3*(a3 - y)*a1*a2*a3*(1 - a1)*(1 - a2)*(1 - a3)",
        "-(y - a3)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*a1*(1 - a1)*x",
        "(a3^2 - a3*y)*(1 - a3)*w3*(a2 - a2^2)*w2*(a1 - a1^2)*x",
        "(a3 - y)*a3*sigma(-w3*a2 - b3)*w3*a2*(1 - a2)*w2*a1*(1 - a1)*x",
        "(a3 - y)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*x*exp(-(w1*x + b1))/(1 + exp(-(w1*x + b1)))^2",
        "(sigma(w3*a2 + b3) - y)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*a1*(1 - a1)*x",
        "(a3 - y)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*sigma(w1*x + b1)*sigma(-w1*x - b1)*x",
        "x*w2*w3*(a3 - y)*a1*(1 - a1)*a2*(1 - a2)*a3*(1 - a3)",
        "(a3 - y)*a3*(1 - a3)*w3*w2*x*(a1*a2 - a1*a2^2 - a1^2*a2 + a1^2*a2^2)",
        "((a3 - y)*a3*(1 - a3)*w3)*(a2*(1 - a2)*w2)*(a1*(1 - a1)*x)",
    ],
}

# Plausible mistakes: the wrong rule, a sign, a missing factor, an approximation, a kink.
WRONG = {
    "softplus": [
        "sigma(z)*(1 - sigma(z))",
        "sigma(-z)",
        "exp(z)",
        "log(1 + exp(z))",
        "1/(1 + exp(z))",
        "sigma(z)*(1 + sigma(z))",
        "(1 + tanh(z))/2",
        "1 - tanh(z/2)",
        "exp(-z)/(1 + exp(-z))^2",
        "sigma(z) + 1e-12",
        "1/(1 - exp(-z))",
    ],
    "tanh": [
        "1 - tanh(z)",
        "1 + tanh(z)^2",
        "tanh(z)*(1 - tanh(z))",
        "sigma(2z)*(1 - sigma(2z))",
        "2*sigma(2z)*(1 - sigma(2z))",
        "1 - tanh(z^2)",
        "cosh(z)^2",
        "sech(z)",
        "1 - 2*tanh(z)",
        "1/(1 + z^2)",
    ],
    "gelu": [
        "Phi(z)",
        "z*phi(z)",
        "Phi(z) - z*phi(z)",
        "phi(z) + z*Phi(z)",
        "Phi(z) + phi(z)",
        # the derivative of the tanh approximation, offered for the exact one
        sp.diff(
            z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + sp.Rational(44715, 10**6) * z**3))),
            z,
        ),
        "Phi(z) + z*exp(-z^2)/sqrt(2*pi)",
        "Phi(z) + z*exp(-z^2/2)/sqrt(pi)",
        "(1 + erf(z))/2 + z*phi(z)",
        "sigma(1.702*z)",
        "Phi(z) + z*phi(z)*Phi(z)",
    ],
    "silu": [
        "sigma(z)",
        "z*sigma(z)*(1 - sigma(z))",
        "sigma(z)*(1 + z*sigma(z))",
        "sigma(z)*(1 + z)",
        "sigma(z) - z*sigma(z)*(1 - sigma(z))",
        "sigma(z)*(1 - sigma(z))",
        "sigma(z) + z*sigma(z)*(1 + sigma(z))",
        "sigma(z) + z*sigma(-z)",
        "(1 + tanh(z))/2 + z*(1 - tanh(z)^2)/4",
        "sigma(z) + z/(4*cosh(z)^2)",
    ],
    "elu": [
        # right everywhere except at the kink z = 0, where the exercise says alpha
        "Piecewise((1, z >= 0), (alpha*exp(z), True))",
        "Heaviside(z) + Heaviside(-z)*alpha*exp(z)",
        "Piecewise((1, z > 0), (exp(z), True))",
        "Piecewise((1, z > 0), (alpha*(exp(z) - 1), True))",
        "Piecewise((1, z > 0), (alpha*exp(-z), True))",
        "Piecewise((0, z > 0), (alpha*exp(z), True))",
        "Piecewise((z, z > 0), (alpha*exp(z), True))",
        "alpha*exp(z)",
        "Piecewise((1, z > 0), (alpha*z*exp(z), True))",
        "1",
        "Piecewise((1, z > 0), (alpha, True))",
    ],
    "chain": [
        _A,  # the input x, the last chain factor, is missing
        _A + "*w1",
        "(a3 - y)*a3*(1 - a3)*w3*a2*(1 - a2)*a1*(1 - a1)*x",  # w2 missing
        "(a3 - y)*a3*(1 - a3)*a2*(1 - a2)*w2*a1*(1 - a1)*x",  # w3 missing
        "(y - a3)*a3*(1 - a3)*w3*a2*(1 - a2)*w2*a1*(1 - a1)*x",  # sign
        "(a3 - y)*a3*(1 + a3)*w3*a2*(1 + a2)*w2*a1*(1 + a1)*x",  # sigma(1 + sigma)
        "(a3 - y)*a3*(1 - a3)*a2*(1 - a2)*a1*(1 - a1)*x",  # no weights
        "(a3 - y)*a3*(1 - a3)*a2",  # dL/dw3
        "(a3 - y)*a3*(1 - a3)*w3*a2*(1 - a2)*a1",  # dL/dw2
        "(a3 - y)*x*a1*(1 - a1)*w2*w3",
        "(a3 - y)^2/2",  # the loss itself
    ],
}


def _kw(name: str) -> dict:
    kw = dict(KW[name])
    return {**kw, "names": kw["names"], "timeout": 8.0}


def _check(answer: object, name: str, **extra) -> S.Verdict:
    kw = _kw(name)
    ref = kw.pop("reference")
    names = kw.pop("names")
    return S.check_equivalent(answer, ref, names, **{**kw, **extra})


def _cases(table: dict) -> list:
    return [
        pytest.param(name, a, id=f"{name}-{i}")
        for name, forms in table.items()
        for i, a in enumerate(forms)
    ]


@pytest.mark.parametrize("name", list(EQUIVALENT))
def test_at_least_ten_forms_of_each_exercise(name: str) -> None:
    assert len(EQUIVALENT[name]) >= 10 and len(WRONG[name]) >= 10


@pytest.mark.parametrize(("name", "answer"), _cases(EQUIVALENT))
def test_equivalent_forms_are_accepted(name: str, answer: object) -> None:
    verdict = _check(answer, name)
    assert verdict.status == "equivalent", f"{answer!r}: {verdict.message}"
    assert verdict.method in ("symbolic", "numeric")


@pytest.mark.parametrize(("name", "answer"), _cases(WRONG))
def test_wrong_forms_are_rejected_with_a_counterexample(name: str, answer: object) -> None:
    verdict = _check(answer, name)
    assert verdict.status == "not_equivalent", f"{answer!r}: {verdict.message}"
    assert verdict.point and verdict.got and verdict.expected
    assert "your formula gives" in verdict.message and "expected value is" in verdict.message
    # the counterexample is real: recompute both sides there with mpmath, independently
    pt = {sp.Symbol(k, real=True): sp.Rational(v) for k, v in verdict.point.items()}
    want = sp.N(KW[name]["reference"].xreplace(pt), 40)
    assert math.isclose(float(want), float(verdict.expected), rel_tol=1e-9, abs_tol=1e-300)


def test_the_kink_is_the_counterexample_of_a_derivative_wrong_only_there() -> None:
    verdict = _check("Piecewise((1, z >= 0), (0, True))", "relu")
    assert verdict.status == "not_equivalent" and verdict.point == {"z": "0"}
    assert (verdict.got, verdict.expected) == ("1", "0")
    half = _check("Heaviside(z)", "relu")  # SymPy's Heaviside(0) is 1/2
    assert half.point == {"z": "0"} and half.got == "0.5"
    assert _check("Heaviside(z, 0)", "relu").equivalent
    elu = _check("Piecewise((1, z >= 0), (alpha*exp(z), True))", "elu")
    assert elu.point is not None and elu.point["z"] == "0"


def test_the_tanh_approximation_differs_by_a_visible_amount() -> None:
    approx = WRONG["gelu"][5]
    verdict = _check(approx, "gelu")
    gap = abs(float(verdict.got) - float(verdict.expected))
    assert verdict.status == "not_equivalent" and 1e-6 < gap < 0.1


def test_large_negative_inputs_do_not_fake_a_difference() -> None:
    # 1 - sigma(700) cancels catastrophically in floats; the check still accepts it
    verdict = _check("1 - 1/(1 + exp(-z)) + exp(z)/(1 + exp(z)) - 1 + sigma(z)", "softplus")
    assert verdict.equivalent, verdict.message


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda z: 1 / (1 + math.exp(-z)), "Python function"),
        (S.sigma, "Python function"),
        (0.25, "the number 0.25"),
        (1, "the number 1"),
        (None, "None"),
        (True, "boolean"),
        ([z], "list"),
        ({"z": 1}, "dict"),
        (sp.Lambda(z, S.sigma(z)), "Lambda"),
        (sp.Eq(sp.Symbol("d"), S.sigma(z)), "right-hand side"),
        (sp.Matrix([z]), "expected"),
        ("", "empty"),
        ("sigma(t)", "'t'"),
        ("__import__('os').system('true')", "'__import__'"),
        ("z.func", "'.'"),
        ("sigma(z); 1", "';'"),
        ("[z]", "'['"),
        ("lambda z: z", "'lambda'"),
        ("open('x')", "'open'"),
        ("sigma(z", "could not read"),
        ("sigma(z, z)", "1 argument"),
        (S.sigma(sp.Symbol("t")), "'t'"),
        (sp.Function("g")(z), "unknown function 'g'"),
        (sp.sin(z), "sin"),
        (sp.oo * z, "not a finite real"),
        ("z^(10^9)", "too large"),
        ("9^9^9", "too large"),
        ("z" * 3000, "characters long"),
    ],
)
def test_what_is_not_a_formula_gets_a_message(answer: object, words: str) -> None:
    verdict = _check(answer, "softplus")
    assert verdict.status == "invalid", verdict
    assert words in verdict.message, verdict.message


def test_student_assumptions_and_classes_do_not_carry_into_the_check() -> None:
    zpos = sp.Symbol("z", positive=True)
    # a student's positive z is rebuilt as the exercise's real z, so nothing follows from z > 0
    (rebuilt,) = S.to_formula(sp.exp(zpos) + 1, ["z"]).free_symbols
    assert rebuilt == sp.Symbol("z", real=True) and rebuilt.is_positive is None
    assert _check(1 / (1 + sp.exp(-zpos)), "softplus").equivalent

    class sigma(sp.Function):  # noqa: N801  (a student's own sigma, evaluating to 1/2)
        @classmethod
        def eval(cls, u):
            return None

        def _eval_evalf(self, prec):
            return sp.Float(0.5)._eval_evalf(prec)

    # judged as the real sigma: sigma(z)(1 - sigma(z)) is wrong for softplus, sigma(z) right
    assert _check(sigma(z), "softplus").equivalent
    assert _check(sigma(z) * (1 - sigma(z)), "softplus").status == "not_equivalent"


def test_decimal_constants_are_named_in_the_message() -> None:
    verdict = _check(f"Phi(z) + z*exp(-z^2/2)*{1 / math.sqrt(2 * math.pi)!r}", "gelu")
    assert verdict.status == "not_equivalent"
    assert "decimal" in verdict.message and "0.3989422804" in verdict.message


def test_a_slow_proof_is_cut_off_and_the_points_decide() -> None:
    u = sp.sqrt(2 / sp.pi) * (z + sp.Rational(44715, 10**6) * z**3)
    ref = sp.diff(z / 2 * (1 + sp.tanh(u)), z)
    t = sp.tanh(u)
    by_hand = (1 + t) / 2 + z / 2 * (1 - t**2) * sp.diff(u, z)
    start = time.perf_counter()
    verdict = S.check_equivalent(by_hand.rewrite(sp.exp), ref, points=[0, 2, -2], timeout=2.0)
    assert time.perf_counter() - start < 30.0  # cut off, not run to the end (minutes)
    assert verdict.equivalent, verdict.message


def test_a_stalling_check_gives_undecided(monkeypatch: pytest.MonkeyPatch) -> None:
    def forever(*args, **kwargs):
        while True:
            sum(range(1000))

    monkeypatch.setattr(S, "_value", forever)
    start = time.perf_counter()
    verdict = _check("sigma(z)", "softplus", timeout=0.5)
    assert verdict.status == "undecided" and "could not decide" in verdict.message
    assert time.perf_counter() - start < 30.0  # cut off, not run to the end (minutes)


def test_a_stalling_proof_falls_back_to_the_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def forever(*args, **kwargs):
        while True:
            sum(range(1000))

    monkeypatch.setattr(S, "_simplifies_to_zero", forever)
    verdict = _check("sigma(z)", "softplus", timeout=1.0)
    assert verdict.equivalent and verdict.method == "numeric", verdict.message
    assert "agrees with the expected formula at all" in verdict.message


def test_a_huge_expression_is_refused_quickly() -> None:
    big = sp.Add(*[S.sigma(z + k) ** 2 for k in range(2000)])
    start = time.perf_counter()
    verdict = _check(big, "softplus")
    assert verdict.status == "invalid" and "parts" in verdict.message
    assert time.perf_counter() - start < 30.0  # cut off, not run to the end (minutes)


def test_the_alarm_leaves_no_timer_behind() -> None:
    import signal

    before = signal.getsignal(signal.SIGALRM)
    _check("sigma(z)", "softplus", timeout=1.0)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_assert_equivalent_raises_with_the_label() -> None:
    S.assert_equivalent("sigma(z)", SOFTPLUS, label="softplus'")
    with pytest.raises(AssertionError, match=r"softplus': not equivalent .* at z = "):
        S.assert_equivalent("sigma(-z)", SOFTPLUS, label="softplus'", points=[1])
    with pytest.raises(AssertionError, match="softplus': expected a SymPy expression"):
        S.assert_equivalent(0.5, SOFTPLUS, label="softplus'")


def test_course_functions_differentiate_and_evaluate() -> None:
    assert sp.simplify(sp.diff(S.sigma(z), z) - S.sigma(z) * (1 - S.sigma(z))) == 0
    assert sp.diff(S.Phi(z), z) == S.phi(z)
    assert sp.diff(S.phi(z), z) == -z * S.phi(z)
    assert math.isclose(float(sp.N(S.sigma(sp.Integer(2)))), 1 / (1 + math.exp(-2)))
    assert math.isclose(float(sp.N(S.Phi(sp.Integer(1)))), 0.5 * math.erfc(-1 / math.sqrt(2)))
    assert math.isclose(float(sp.N(S.phi(sp.Integer(0)))), 1 / math.sqrt(2 * math.pi))


def test_a_point_too_costly_to_evaluate_is_skipped() -> None:
    # Phi(-1000) to 50 digits needs hundreds of thousands: that point is dropped, not waited for
    start = time.perf_counter()
    verdict = _check("Phi(z) + z*phi(z)", "gelu", points=[-1000, 0, 1, 2], timeout=2.0)
    assert verdict.equivalent, verdict.message
    assert time.perf_counter() - start < 30.0  # cut off, not run to the end (minutes)


@pytest.mark.parametrize(
    "name",
    ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "softplus", "silu"],
)
def test_sympy_forms_of_the_registry_match_numpy(name: str) -> None:
    import numpy as np

    from actlab.chapters import ch02_derivatives as D
    from actlab.engine import activations as A

    act = A.get(name)
    grid = [-7.5, -1.25, 0.0, 0.5, 3.0]
    f = sp.lambdify(z, act.sym_fn(z), "mpmath")
    d = sp.lambdify(z, D.sympy_derivative(act, z), "mpmath")
    assert np.allclose(
        [float(f(v)) for v in grid], act.np_fn(np.array(grid)), rtol=1e-12, atol=1e-14
    )
    # SymPy's derivative at the kink takes the z <= 0 branch, PyTorch's value there
    assert np.allclose(
        [float(d(v)) for v in grid], act.np_dfn(np.array(grid)), rtol=1e-12, atol=1e-14
    )
    assert D.sympy_gap(act, grid) < 1e-40
