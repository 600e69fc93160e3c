"""The activation registry (actlab.engine.activations): functions and closed-form derivatives,
stability, the syllabus facts, labels and line styles, and what counts as an activation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from conftest import ACTIVATION_NAMES as NAMES
from conftest import Z_GRID as Z

from actlab.engine import activations as A


def _away_from_kinks(act: A.Activation, z: np.ndarray) -> np.ndarray:
    keep = np.ones_like(z, dtype=bool)
    for k in act.kinks:
        keep &= np.abs(z - k) > 1e-3
    return z[keep]


def test_registry_holds_the_course_names() -> None:
    assert list(A.ACTIVATIONS) == NAMES
    assert A.names() == NAMES
    for name in NAMES:
        assert A.get(name).name == name


def test_unknown_name_is_a_value_error_listing_known_names() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        A.get("swishy")


def test_numpy_forward_matches_torch_forward(act: A.Activation) -> None:
    expected = act.torch_fn(torch.tensor(Z, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(act.np_fn(Z), expected, rtol=1e-12, atol=1e-12)


def test_closed_form_matches_autograd(act: A.Activation) -> None:
    t = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(act.torch_fn(t).sum(), t)
    np.testing.assert_allclose(act.np_dfn(Z), auto.numpy(), rtol=1e-10, atol=1e-12)


def test_torch_closed_form_matches_autograd(act: A.Activation) -> None:
    t = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(act.torch_fn(t).sum(), t)
    closed = act.torch_dfn(t.detach())
    torch.testing.assert_close(closed, auto, rtol=1e-10, atol=1e-12)


def test_closed_form_matches_central_differences(act: A.Activation) -> None:
    z = _away_from_kinks(act, Z)
    h = 1e-6 * np.maximum(1.0, np.abs(z))
    fd = (act.np_fn(z + h) - act.np_fn(z - h)) / (2 * h)
    np.testing.assert_allclose(act.np_dfn(z), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "at_zero"), [("relu", 0.0), ("leaky_relu", 0.01), ("elu", 1.0)])
def test_value_at_the_kink_is_pytorchs(name: str, at_zero: float) -> None:
    act = A.get(name)
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(act.torch_fn(t).sum(), t)
    assert auto.item() == at_zero
    assert float(act.np_dfn(0.0)) == at_zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_without_warnings_up_to_1e4(act: A.Activation, dtype: type) -> None:
    z = np.array([[-1e4, -1e3, -100.0, -1.0, 0.0], [1.0, 100.0, 1e3, 1e4, -3.5]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        value, slope = act.np_fn(z), act.np_dfn(z)
    for out in (value, slope):
        assert out.shape == z.shape
        assert out.dtype == dtype
        assert np.all(np.isfinite(out))


def test_scalars_and_integers_are_accepted(act: A.Activation) -> None:
    assert np.isclose(act.np_fn(2), act.np_fn(2.0))
    assert np.asarray(act.np_fn(0)).dtype == np.float64


# --------------------------------------------------------------------- the syllabus facts


def test_fact_max_sigmoid_slope_is_a_quarter_at_zero() -> None:
    z = np.linspace(-10, 10, 20001)
    slopes = A.dsigmoid(z)
    assert slopes.max() == pytest.approx(0.25, abs=1e-15)
    assert z[np.argmax(slopes)] == pytest.approx(0.0, abs=1e-12)
    assert A.dsigmoid(3.0) == pytest.approx(0.045, abs=5e-4)


def test_fact_sigmoid_slope_at_minus_ten() -> None:
    assert float(A.dsigmoid(-10.0)) == pytest.approx(4.54e-5, rel=1e-3)
    assert float(A.dsigmoid(-10.0)) == pytest.approx(math.exp(-10) / (1 + math.exp(-10)) ** 2)


def test_fact_max_tanh_slope_is_one_at_zero() -> None:
    z = np.linspace(-10, 10, 20001)
    slopes = A.dtanh(z)
    assert slopes.max() == 1.0
    assert z[np.argmax(slopes)] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(A.tanh(z), 2 * A.sigmoid(2 * z) - 1, atol=1e-15)


def test_fact_softplus_slope_is_sigmoid() -> None:
    np.testing.assert_allclose(A.dsoftplus(Z), A.sigmoid(Z), rtol=0, atol=0)
    t = torch.tensor(Z, requires_grad=True)
    (auto,) = torch.autograd.grad(torch.nn.functional.softplus(t).sum(), t)
    np.testing.assert_allclose(auto.numpy(), A.sigmoid(Z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_fact_gelu_slope_at_zero_is_one_half(name: str) -> None:
    assert float(A.get(name).np_dfn(0.0)) == pytest.approx(0.5, abs=1e-15)


def test_gelu_tanh_is_close_to_exact_gelu() -> None:
    z = np.linspace(-8, 8, 1601)
    assert np.max(np.abs(A.gelu(z) - A.gelu_tanh(z))) < 1e-3


# --------------------------------------------------------------------- properties table


# --------------------------------------------------------------------- models use the registry


# --------------------------------------------------------------------- figures and explorer


def test_every_activation_has_a_look_of_its_own_from_the_palette() -> None:
    from actlab.engine.activations import ACTIVATIONS, LABELS
    from actlab.presentation.figures import OKABE_ITO, STYLES

    assert set(STYLES) == set(ACTIVATIONS) == set(LABELS) - {"none"}
    assert all(s["color"] in set(OKABE_ITO.values()) for s in STYLES.values()), "palette colours"
    assert len({str(s["ls"]) for s in STYLES.values()}) == len(STYLES), "each its own dash pattern"
    assert len({s["marker"] for s in STYLES.values()}) == len(STYLES), "and its own marker"
    assert LABELS["leaky_relu"] == "Leaky ReLU" and LABELS["silu"] == "SiLU"


def test_is_activation_is_the_registry_and_pytorchs_elementwise_modules() -> None:
    from torch import nn

    for name in A.names():
        assert A.is_activation(A.get(name).module()), name
    assert A.is_activation(nn.SELU()) and A.is_activation(nn.Hardtanh())
    for other in (
        nn.Linear(2, 2),
        nn.LayerNorm(2),
        nn.Dropout(),
        nn.Softmax(dim=-1),
        nn.Sequential(),
    ):
        assert not A.is_activation(other), type(other).__name__
    assert not A.is_activation(nn.Identity())
    assert A.is_activation(nn.Identity(), identity=True), "the linear networks' activation"
