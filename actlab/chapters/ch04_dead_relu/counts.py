"""Chapter 4's probes: which units are positive, and which pass a gradient, on a data set.

A hidden unit is *dead on a data set* when its pre-activation ``z`` is ``<= 0`` for every
example, and *gradient-dead* when ``phi'(z) == 0`` for every example (see the package's
docstring). The probes count both, per member, layer and unit, for an ensemble
(:func:`count_units`) or a plain ``nn.Sequential`` (:func:`network_unit_counts`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actlab.engine.activations import LABELS, is_activation
from actlab.engine.device import get_device
from actlab.engine.models import activation_module
from actlab.ensemble import EnsembleMLP

# --------------------------------------------------------------------------- counts


@dataclass
class UnitCounts:
    """Per-unit counts over a data set, for ``E`` networks of ``depth`` hidden layers.

    Attributes:
        positive: ``(E, depth, width)`` number of examples with ``z > 0``.
        passing: ``(E, depth, width)`` number of examples with ``phi'(z) != 0`` (the
            unit passes some gradient back for that example).
        n_examples: number of examples the counts are taken over.
        hist: optional ``(E, depth, bins)`` histogram of the activations ``a = phi(z)``
            over ``edges`` (values outside the edges are counted in the end bins).
        edges: the histogram's bin edges, ``(bins + 1,)``.
    """

    positive: np.ndarray
    passing: np.ndarray
    n_examples: int
    hist: np.ndarray | None = None
    edges: np.ndarray | None = None

    @property
    def dead(self) -> np.ndarray:
        """``(E, depth, width)`` True where the unit is positive for no example."""
        return self.positive == 0

    @property
    def grad_dead(self) -> np.ndarray:
        """``(E, depth, width)`` True where ``phi'(z) == 0`` for every example."""
        return self.passing == 0

    def dead_fraction(self, per_layer: bool = False, gradient: bool = False) -> np.ndarray:
        """Fraction of dead units per network ``(E,)``, or per network and layer ``(E, depth)``.

        Args:
            per_layer: one fraction per hidden layer instead of one for the whole network.
            gradient: count gradient-dead units instead of never-positive ones.
        """
        mask = self.grad_dead if gradient else self.dead
        return mask.mean(axis=2) if per_layer else mask.mean(axis=(1, 2))

    def active_fraction(self) -> np.ndarray:
        """``(E, depth, width)`` fraction of examples for which each unit is positive (1 - sparsity)."""
        return self.positive / self.n_examples


def _slopes(activation: str | nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``phi'(z)`` elementwise, as PyTorch's backward pass computes it (what training sees).

    Not chapter 2's closed form, nor the same on every backend: float32 GELU's slope is 0
    below about z = -6.2 through oneDNN on a CPU, -14.3 in PyTorch's own CPU and CUDA
    kernels (:func:`zero_slope_threshold`). Counts follow the gradient training applies.
    """
    phi = activation_module(activation) if isinstance(activation, str) else activation
    leaf = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(phi(leaf).sum(), leaf)
    return slope


def backward_backend(activation: str, device: torch.device | str, dtype: torch.dtype) -> str:
    """Which kernel computes ``activation``'s backward pass, in words.

    For example ``"float32 GELU on the CPU with oneDNN"``: on a CPU, PyTorch computes
    float32 GELU with oneDNN when its build has it (``torch.backends.mkldnn.is_available()``)
    and it is switched on (``torch.backends.mkldnn.enabled``), elsewhere with its own kernels.
    """
    device, mkldnn = torch.device(device), torch.backends.mkldnn
    head = f"{str(dtype).removeprefix('torch.')} {LABELS.get(activation, activation)}"
    if device.type == "cpu" and activation == "gelu" and dtype == torch.float32:
        onednn = mkldnn.is_available() and bool(mkldnn.enabled)
        return f"{head} on the CPU {'with' if onednn else 'without'} oneDNN"
    if device.type == "cuda":
        return f"{head} on CUDA ({torch.cuda.get_device_name(device)})"
    where = {"cpu": "the CPU", "mps": "MPS (Apple silicon)"}
    return f"{head} on {where.get(device.type, device.type)}"


def zero_slope_threshold(
    activation: str, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
    lo: float = -30.0, hi: float = 0.0, n: int = 30001, onednn: bool | None = None,
) -> float:  # fmt: skip
    """The lowest ``z`` of ``n`` points on ``[lo, hi]`` where ``activation``'s slope is not 0.

    The slopes are the probes' (:func:`_slopes`, the module's backward) on ``device``
    (default :func:`get_device`) in ``dtype``: below that ``z`` each is exactly 0.
    ``onednn`` switches oneDNN on or off for the call (``None``: as set). ``-inf`` when
    the slope is not 0 even at ``lo``, NaN when it is 0 at every point.
    """
    z = torch.linspace(lo, hi, n, device=device or get_device(), dtype=dtype)
    if onednn is None:
        slope = _slopes(activation, z)
    else:
        with warnings.catch_warnings():  # the flags also set TF32, which warns without an Intel GPU
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=onednn):
                slope = _slopes(activation, z)
    nonzero = torch.nonzero(slope != 0).flatten()
    if len(nonzero) == 0:
        return math.nan
    return -math.inf if int(nonzero[0]) == 0 else float(z[int(nonzero[0])])


def _histogram(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Counts of ``values`` ``(E, N, width)`` in the bins of ``edges``, per member: ``(E, bins)``."""
    bins = len(edges) - 1
    idx = (torch.bucketize(values.flatten(1), edges, right=True) - 1).clamp_(0, bins - 1)
    offset = torch.arange(values.shape[0], device=values.device)[:, None] * bins
    flat = torch.bincount((idx + offset).flatten(), minlength=values.shape[0] * bins)
    return flat.view(values.shape[0], bins)


def count_units(model: EnsembleMLP, X: torch.Tensor, edges: np.ndarray | None = None) -> UnitCounts:
    """Probe for :func:`actlab.ensemble.train_ensemble`: per-unit counts of every member.

    Pass it as ``probe=count_units`` (or ``probe=unit_probe(edges)`` to add activation
    histograms). ``pre[k]`` of :meth:`EnsembleMLP.trace` is the input of layer ``k``'s
    activation (after the LayerNorm of members that have one).

    Args:
        model: the ensemble.
        X: the data, ``(N, in_dim)`` or ``(E, N, in_dim)``.
        edges: bin edges for a histogram of the activations, or ``None``.
    """
    with torch.no_grad():
        _, pre, hidden = model.trace(X)
        positive = torch.stack([(z > 0).sum(dim=1) for z in pre], dim=1)
        runs = model.activation_runs
        passing = torch.stack(
            [
                torch.cat([(_slopes(a, z[s:e]) != 0).sum(dim=1) for s, e, a in runs], dim=0)
                for z in pre
            ],
            dim=1,
        )
        hist = None
        if edges is not None:
            e_t = torch.as_tensor(np.asarray(edges), dtype=pre[0].dtype, device=pre[0].device)
            hist = torch.stack([_histogram(h, e_t) for h in hidden], dim=1).cpu().numpy()
    return UnitCounts(
        positive=positive.cpu().numpy(),
        passing=passing.cpu().numpy(),
        n_examples=int(pre[0].shape[1]),
        hist=hist,
        edges=None if edges is None else np.asarray(edges, dtype=float),
    )


def unit_probe(
    edges: np.ndarray | None = None,
) -> Callable[[EnsembleMLP, torch.Tensor], UnitCounts]:
    """A probe that also records activation histograms over ``edges`` (see :func:`count_units`)."""

    def probe(model: EnsembleMLP, X: torch.Tensor) -> UnitCounts:
        return count_units(model, X, edges)

    return probe


# --------------------------------------------------------------------------- plain networks


def pre_activations(net: nn.Sequential, X: torch.Tensor) -> list[tuple[torch.Tensor, nn.Module]]:
    """``(z, phi)`` for every activation module of an ``nn.Sequential``, input side first.

    ``z`` is the tensor the activation module receives (after a LayerNorm, if any).
    """
    out, h = [], X
    with torch.no_grad():
        for m in net:
            if is_activation(m, identity=True):
                out.append((h, m))
            h = m(h)
    return out


def network_unit_counts(
    net: nn.Sequential, X: torch.Tensor
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer counts of a plain network: examples with ``z > 0`` and with ``phi'(z) != 0``.

    The slopes are the backward pass of the network's own activation modules, on its
    device (:func:`count_units` does the same on the ensemble's stacked pre-activations).
    Returns ``(positive, passing)``: one ``(width_k,)`` integer array per hidden layer each.
    """
    positive, passing = [], []
    for z, phi in pre_activations(net, X):
        positive.append((z > 0).sum(dim=0).cpu().numpy())
        passing.append((_slopes(phi, z) != 0).sum(dim=0).cpu().numpy())
    return positive, passing


def dead_masks(net: nn.Sequential, X: torch.Tensor) -> list[np.ndarray]:
    """Per hidden layer, a boolean mask of the units dead on ``X`` (``z <= 0`` for every row)."""
    positive, _ = network_unit_counts(net, X)
    return [p == 0 for p in positive]


def unit_hinges(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Where each first-layer unit of a 1-D-input network switches: ``x = -b / w`` (inf when w = 0).

    One value per unit, in the units' order; :func:`actlab.chapters.ch05_hinges.hinge_points` gives
    the distinct hinges of a layer, sorted.
    """
    w = np.asarray(weight, dtype=float).reshape(-1)
    b = np.asarray(bias, dtype=float).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w != 0, -b / np.where(w != 0, w, 1.0), np.inf)


def first_layer_dead_on_interval(
    weight: np.ndarray, bias: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """Units ``z = w x + b`` of a 1-D input that are ``<= 0`` on all of ``[lo, hi]``.

    ``z`` is linear in ``x``, so it is non-positive on the interval exactly when it is
    at both ends: the hinge lies outside the data's range on the wrong side.
    """
    w = np.asarray(weight, dtype=float).reshape(-1)
    b = np.asarray(bias, dtype=float).reshape(-1)
    return (w * lo + b <= 0) & (w * hi + b <= 0)
