"""The activation zoo of chapter 2: functions, closed-form derivatives and a registry by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import special
from torch import nn

ArrayFn = Callable[[np.ndarray], np.ndarray]
TensorFn = Callable[[torch.Tensor], torch.Tensor]

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)  # constant of the tanh approximation of GELU
_GELU_K = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _as_float(z: np.ndarray | float) -> np.ndarray:
    """``z`` as a floating array; float32 and float64 inputs keep their dtype."""
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


# --------------------------------------------------------------------------- NumPy forms
# Every function below is vectorised, keeps the input's shape and float dtype, and
# never overflows: no branch evaluates exp() of a large positive number.


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """Stable logistic sigmoid 1 / (1 + e^{-z}) (chapter 2).

    Both branches use ``e = exp(-|z|) <= 1``: for z >= 0, sigma = 1 / (1 + e); for
    z < 0, sigma = e / (1 + e). The naive formula overflows for z below about -710.
    """
    z = _as_float(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def dsigmoid(z: np.ndarray | float) -> np.ndarray:
    """sigma'(z) = sigma(z)(1 - sigma(z)), written sigma(z) sigma(-z) to avoid cancellation."""
    z = _as_float(z)
    return sigmoid(z) * sigmoid(-z)


def tanh(z: np.ndarray | float) -> np.ndarray:
    """Hyperbolic tangent, equal to 2 sigma(2z) - 1 (chapter 2)."""
    return np.tanh(_as_float(z))


def dtanh(z: np.ndarray | float) -> np.ndarray:
    """tanh'(z) = 1 - tanh(z)^2."""
    t = np.tanh(_as_float(z))
    return 1.0 - t * t


def relu(z: np.ndarray | float) -> np.ndarray:
    """ReLU max(z, 0) (chapter 2)."""
    z = _as_float(z)
    return np.maximum(z, 0).astype(z.dtype, copy=False)


def drelu(z: np.ndarray | float) -> np.ndarray:
    """ReLU'(z): 1 for z > 0, else 0 (PyTorch's choice at exactly 0 is also 0)."""
    z = _as_float(z)
    return (z > 0).astype(z.dtype)


def leaky_relu(z: np.ndarray | float, slope: float = LEAKY_SLOPE) -> np.ndarray:
    """Leaky ReLU: z for z > 0, ``slope * z`` otherwise (chapter 2)."""
    z = _as_float(z)
    return np.where(z > 0, z, slope * z).astype(z.dtype, copy=False)


def dleaky_relu(z: np.ndarray | float, slope: float = LEAKY_SLOPE) -> np.ndarray:
    """Leaky ReLU'(z): 1 for z > 0, ``slope`` otherwise (PyTorch also uses ``slope`` at 0)."""
    z = _as_float(z)
    return np.where(z > 0, 1.0, slope).astype(z.dtype, copy=False)


def elu(z: np.ndarray | float, alpha: float = ELU_ALPHA) -> np.ndarray:
    """ELU: z for z > 0, alpha (e^z - 1) otherwise (chapter 2)."""
    z = _as_float(z)
    neg = alpha * np.expm1(np.minimum(z, 0))  # exp only ever sees z <= 0
    return np.where(z > 0, z, neg).astype(z.dtype, copy=False)


def delu(z: np.ndarray | float, alpha: float = ELU_ALPHA) -> np.ndarray:
    """ELU'(z): 1 for z > 0, alpha e^z = ELU(z) + alpha otherwise."""
    z = _as_float(z)
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0))).astype(z.dtype, copy=False)


def softplus(z: np.ndarray | float) -> np.ndarray:
    """Stable softplus log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}) (chapter 2)."""
    z = _as_float(z)
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def dsoftplus(z: np.ndarray | float) -> np.ndarray:
    """softplus'(z) = sigma(z)."""
    return sigmoid(z)


def std_normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Phi(z), the standard normal CDF (accurate in both tails)."""
    z = _as_float(z)
    return special.ndtr(z).astype(z.dtype, copy=False)


def std_normal_pdf(z: np.ndarray | float) -> np.ndarray:
    """phi(z) = e^{-z^2/2} / sqrt(2 pi)."""
    z = _as_float(z)
    return (_INV_SQRT_2PI * np.exp(-0.5 * z * z)).astype(z.dtype, copy=False)


def gelu(z: np.ndarray | float) -> np.ndarray:
    """Exact GELU z Phi(z) (chapter 2; Hendrycks and Gimpel 2016)."""
    z = _as_float(z)
    return z * std_normal_cdf(z)


def dgelu(z: np.ndarray | float) -> np.ndarray:
    """GELU'(z) = Phi(z) + z phi(z) (product rule, with Phi' = phi)."""
    z = _as_float(z)
    return std_normal_cdf(z) + z * std_normal_pdf(z)


def gelu_tanh(z: np.ndarray | float) -> np.ndarray:
    """The tanh approximation of GELU: z/2 (1 + tanh(sqrt(2/pi)(z + 0.044715 z^3)))."""
    z = _as_float(z)
    u = _GELU_C * (z + _GELU_K * z**3)
    return 0.5 * z * (1.0 + np.tanh(u))


def dgelu_tanh(z: np.ndarray | float) -> np.ndarray:
    """Derivative of the tanh approximation: (1 + t)/2 + z/2 (1 - t^2) u'(z), t = tanh(u)."""
    z = _as_float(z)
    t = np.tanh(_GELU_C * (z + _GELU_K * z**3))
    du = _GELU_C * (1.0 + 3.0 * _GELU_K * z * z)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du


def silu(z: np.ndarray | float) -> np.ndarray:
    """SiLU / Swish z sigma(z) (chapter 2; Ramachandran et al. 2017)."""
    z = _as_float(z)
    return z * sigmoid(z)


def dsilu(z: np.ndarray | float) -> np.ndarray:
    """SiLU'(z) = sigma(z)(1 + z(1 - sigma(z))), with 1 - sigma(z) computed as sigma(-z)."""
    z = _as_float(z)
    return sigmoid(z) * (1.0 + z * sigmoid(-z))


# --------------------------------------------------------------------------- PyTorch forms
# Forward: PyTorch's own functions (what a model built with actlab.engine.models runs).
# Derivative: the closed forms above, written with tensor operations.


def _t_dsigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(z) * torch.sigmoid(-z)


def _t_dtanh(z: torch.Tensor) -> torch.Tensor:
    return 1 - torch.tanh(z) ** 2


def _t_drelu(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _t_dleaky(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE))


def _t_delu(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, torch.ones_like(z), ELU_ALPHA * torch.exp(torch.clamp(z, max=0)))


def _t_dgelu(z: torch.Tensor) -> torch.Tensor:
    cdf = 0.5 * torch.erfc(-z / math.sqrt(2.0))
    return cdf + z * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)


def _t_dgelu_tanh(z: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(_GELU_C * (z + _GELU_K * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_K * z * z)


def _t_dsilu(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(z) * (1 + z * torch.sigmoid(-z))


# --------------------------------------------------------------------------- registry


# --------------------------------------------------------------------------- SymPy forms
# Each takes a SymPy symbol z. SymPy is imported when one is called, not with the module.


def _sp():  # noqa: ANN202
    import sympy

    return sympy


def _sym_sigma(z):  # noqa: ANN001, ANN202
    return 1 / (1 + _sp().exp(-z))


def _sym_Phi(z):  # noqa: ANN001, ANN202, N802
    sp = _sp()
    return (1 + sp.erf(z / sp.sqrt(2))) / 2


def _sym_u(z):  # noqa: ANN001, ANN202
    sp = _sp()
    return sp.sqrt(2 / sp.pi) * (z + sp.Rational(44715, 10**6) * z**3)


def _sym_piecewise(right, left):  # noqa: ANN001, ANN202
    """z -> right(z) for z > 0, left(z) for z <= 0."""
    return lambda z: _sp().Piecewise((right(z), z > 0), (left(z), True))


def _sym_leaky(z):  # noqa: ANN001, ANN202
    return _sp().Rational(1, 100) * z


def _sym_dgelu(z):  # noqa: ANN001, ANN202
    sp = _sp()
    return _sym_Phi(z) + z * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)


def _sym_dgelu_tanh(z):  # noqa: ANN001, ANN202
    sp = _sp()
    t = sp.tanh(_sym_u(z))
    du = sp.sqrt(2 / sp.pi) * (1 + 3 * sp.Rational(44715, 10**6) * z**2)
    return (1 + t) / 2 + z / 2 * (1 - t**2) * du


@dataclass(frozen=True)
class Activation:
    """One activation function with everything the course needs to know about it.

    Args:
        name: registry key, also used by ``actlab.engine.models.activation_module``.
        label: full display name (chapter 2's tables: "Leaky ReLU (0.01)").
        short: the name in legends and in every later chapter's tables ("Leaky ReLU").
        colour, dash, marker: the activation's line in every figure: a colour of the
            course palette by name (``actlab.presentation.figures.OKABE_ITO``), a dash
            pattern and a marker, so that no two activations differ by colour alone.
        np_fn, np_dfn: vectorised NumPy function and closed-form derivative.
        torch_fn, torch_dfn: PyTorch function (differentiable) and closed-form derivative.
        module: factory for the matching ``torch.nn`` module.
        formula, dformula: LaTeX of phi(z) and phi'(z).
        kinks: points where phi is not differentiable (finite differences skip them).
        cite: bibliography key of the paper that introduced it, if any.
        sym_fn, sym_dfn: SymPy forms of phi and of the hand-derived phi' (a SymPy symbol
            in, an expression out); at a kink both take the z <= 0 branch, PyTorch's value.
    """

    name: str
    label: str
    np_fn: ArrayFn
    np_dfn: ArrayFn
    torch_fn: TensorFn
    torch_dfn: TensorFn
    module: Callable[[], nn.Module]
    formula: str
    dformula: str
    kinks: tuple[float, ...] = field(default=())
    cite: str | None = None
    sym_fn: Callable[[Any], Any] | None = None
    sym_dfn: Callable[[Any], Any] | None = None
    short: str = ""
    colour: str = "black"
    dash: str | tuple = "-"
    marker: str = "o"

    def __call__(self, z: np.ndarray | float) -> np.ndarray:
        return self.np_fn(z)

    def grad(self, z: np.ndarray | float) -> np.ndarray:
        """The closed-form derivative phi'(z) (NumPy)."""
        return self.np_dfn(z)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "sigmoid", "sigmoid", sigmoid, dsigmoid, torch.sigmoid, _t_dsigmoid, nn.Sigmoid,
            r"\sigma(z) = \frac{1}{1+e^{-z}}", r"\sigma(z)\,(1-\sigma(z))",
            sym_fn=_sym_sigma, sym_dfn=lambda z: _sym_sigma(z) * (1 - _sym_sigma(z)),
            short="sigmoid", colour="black", dash=":", marker="x",
        ),
        Activation(
            "tanh", "tanh", tanh, dtanh, torch.tanh, _t_dtanh, nn.Tanh,
            r"\tanh z = 2\sigma(2z) - 1", r"1 - \tanh^2 z",
            sym_fn=lambda z: _sp().tanh(z), sym_dfn=lambda z: 1 - _sp().tanh(z) ** 2,
            short="tanh", colour="orange", dash="--", marker="o",
        ),
        Activation(
            "relu", "ReLU", relu, drelu, torch.relu, _t_drelu, nn.ReLU,
            r"\max(z, 0)", r"\mathbb{1}[z > 0]", kinks=(0.0,), cite="nair2010rectified",
            sym_fn=_sym_piecewise(lambda z: z, lambda z: 0),
            sym_dfn=_sym_piecewise(lambda z: 1, lambda z: 0),
            short="ReLU", colour="sky blue", dash="-", marker="s",
        ),
        Activation(
            "leaky_relu", "Leaky ReLU (0.01)", leaky_relu, dleaky_relu,
            lambda z: F.leaky_relu(z, LEAKY_SLOPE), _t_dleaky,
            lambda: nn.LeakyReLU(LEAKY_SLOPE),
            r"\max(z, 0.01 z)", r"1 \text{ if } z > 0 \text{ else } 0.01",
            kinks=(0.0,), cite="maas2013rectifier",
            sym_fn=_sym_piecewise(lambda z: z, _sym_leaky),
            sym_dfn=_sym_piecewise(lambda z: 1, lambda z: _sp().Rational(1, 100)),
            short="Leaky ReLU", colour="bluish green", dash="-.", marker="^",
        ),
        Activation(
            "elu", "ELU", elu, delu, lambda z: F.elu(z, ELU_ALPHA), _t_delu,
            lambda: nn.ELU(ELU_ALPHA),
            r"z \text{ if } z > 0 \text{ else } e^{z} - 1", r"1 \text{ if } z > 0 \text{ else } e^{z}",
            kinks=(0.0,), cite="clevert2015fast",
            sym_fn=_sym_piecewise(lambda z: z, lambda z: _sp().exp(z) - 1),
            sym_dfn=_sym_piecewise(lambda z: 1, lambda z: _sp().exp(z)),
            short="ELU", colour="vermillion", dash=(0, (5, 1)), marker="v",
        ),
        Activation(
            "gelu", "GELU", gelu, dgelu, F.gelu, _t_dgelu, nn.GELU,
            r"z\,\ncdf(z)", r"\ncdf(z) + z\,\npdf(z)", cite="hendrycks2016gaussian",
            sym_fn=lambda z: z * _sym_Phi(z), sym_dfn=_sym_dgelu,
            short="GELU", colour="blue", dash=(0, (3, 1, 1, 1)), marker="D",
        ),
        Activation(
            "gelu_tanh", "GELU (tanh approx.)", gelu_tanh, dgelu_tanh,
            lambda z: F.gelu(z, approximate="tanh"), _t_dgelu_tanh,
            lambda: nn.GELU(approximate="tanh"),
            r"\tfrac{z}{2}\bigl(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3))\bigr)",
            r"\tfrac{1+t}{2} + \tfrac{z}{2}(1 - t^2)\,u'(z)", cite="hendrycks2016gaussian",
            sym_fn=lambda z: z / 2 * (1 + _sp().tanh(_sym_u(z))), sym_dfn=_sym_dgelu_tanh,
            short="GELU (tanh)", colour="orange", dash=(0, (8, 2)), marker="*",
        ),
        Activation(
            "softplus", "Softplus", softplus, dsoftplus, F.softplus, torch.sigmoid, nn.Softplus,
            r"\log(1 + e^{z})", r"\sigma(z)",
            sym_fn=lambda z: _sp().log(1 + _sp().exp(z)), sym_dfn=_sym_sigma,
            short="Softplus", colour="grey", dash=(0, (5, 1, 1, 1, 1, 1)), marker="h",
        ),
        Activation(
            "silu", "SiLU / Swish", silu, dsilu, F.silu, _t_dsilu, nn.SiLU,
            r"z\,\sigma(z)", r"\sigma(z)\,(1 + z(1 - \sigma(z)))", cite="ramachandran2017searching",
            sym_fn=lambda z: z * _sym_sigma(z),
            sym_dfn=lambda z: _sym_sigma(z) * (1 + z * (1 - _sym_sigma(z))),
            short="SiLU", colour="reddish purple", dash=(0, (1, 1)), marker="P",
        ),
    ]
}  # fmt: skip


def names() -> list[str]:
    """Registry keys in display order."""
    return list(ACTIVATIONS)


def get(name: str) -> Activation:
    """The activation called ``name``; raises ``ValueError`` listing the known names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {names()}") from None


#: Each activation's name in legends and tables, by registry key ("none" is the identity).
LABELS: dict[str, str] = {
    "none": "none",
    **{a.name: a.short or a.label for a in ACTIVATIONS.values()},
}

#: PyTorch's other elementwise activation modules: recognised in any network (chapter 6
#: swaps them), though the course draws none of them. Softmax, LogSoftmax and Softmin are
#: not here: they act on a whole vector (an output layer), not unit by unit.
OTHER_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU6, nn.PReLU, nn.RReLU, nn.CELU, nn.SELU, nn.Mish, nn.Softsign, nn.Hardtanh,
    nn.Hardsigmoid, nn.Hardswish, nn.LogSigmoid, nn.Tanhshrink,
)  # fmt: skip


def _module_types() -> tuple[type[nn.Module], ...]:
    return tuple(dict.fromkeys(type(a.module()) for a in ACTIVATIONS.values())) + OTHER_ELEMENTWISE


ELEMENTWISE: tuple[type[nn.Module], ...] = _module_types()


def is_activation(module: nn.Module, identity: bool = False) -> bool:
    """Whether ``module`` is an elementwise activation: a registry activation's module or
    another of PyTorch's (:data:`OTHER_ELEMENTWISE`).

    With ``identity=True`` an ``nn.Identity`` counts too: it is the activation of the
    course's linear networks (``activation="none"``, chapter 1).
    """
    return isinstance(module, ELEMENTWISE) or (identity and isinstance(module, nn.Identity))
