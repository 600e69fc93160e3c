"""Looking into an ensemble: at initialisation, and during training through probes.

A probe is a function ``probe(model, X)`` that :func:`~actlab.ensemble.train_ensemble`
calls under ``torch.no_grad()`` at the epochs it is given (``probe_epochs``), with
the stacked model (:class:`~actlab.ensemble.model.EnsembleMLP`, or
:class:`~actlab.ensemble.blocks.EnsembleResidual` for residual and gated members) and the training
inputs; what it returns is kept in ``result.probes[epoch]``. Probes that any chapter
may use belong here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from actlab.engine.device import cpu_threads as limit_cpu_threads
from actlab.engine.device import get_device

from .blocks import EnsembleResidual
from .loss import loss_per_member
from .members import Member
from .model import EnsembleMLP

Probe = Callable[[EnsembleMLP | EnsembleResidual, torch.Tensor], Any]


def gradient_norms_at_init(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Per-layer weight-gradient norms of the MSE loss at initialisation, shape ``(E, depth + 1)``.

    One forward and backward pass of the stacked members, no update (chapter 3's explorer).
    """
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=device)
    model = EnsembleMLP(members, X_t.shape[1], width, depth, y_t.shape[1]).to(device)
    loss_per_member(model(X_t), y_t, "mse").sum().backward()
    norms = torch.stack([w.grad.flatten(1).norm(dim=1) for w in model.weights], dim=1)
    return norms.cpu().numpy()


@torch.no_grad()
def hidden_variances(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    out_dim: int = 1,
) -> np.ndarray:
    """Variance of each hidden layer's activations at initialisation, shape ``(E, depth)``.

    The variance is taken over examples and units together (chapter 3, initialisation).
    """
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    model = EnsembleMLP(members, X_t.shape[1], width, depth, out_dim)
    _, hidden = model(X_t, return_hidden=True)
    return torch.stack([h.flatten(1).var(dim=1) for h in hidden], dim=1).numpy()


def stacked(
    members: Sequence[Member],
    in_dim: int,
    depth: int,
    width: int,
    out_dim: int,
    branch_width: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> EnsembleMLP | EnsembleResidual:
    """The stacked network of ``members``: an :class:`EnsembleMLP` for plain members, an
    :class:`EnsembleResidual` for residual or gated ones (``depth`` blocks, stream width
    ``width``, branch width ``branch_width``, default ``width``)."""
    if all(m.block == "plain" for m in members):
        return EnsembleMLP(members, in_dim, width, depth, out_dim, dtype=dtype)
    return EnsembleResidual(members, in_dim, width, depth, out_dim, branch_width, dtype=dtype)


def block_gradient_norms_at_init(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    branch_width: int | None = None,
    loss: str = "mse",
    device: torch.device | str | None = None,
    cpu_threads: int | str | None = "auto",
) -> np.ndarray:
    """Root mean square weight gradient of each block at initialisation, shape ``(E, depth)``.

    For block ``k`` (column ``k``, nearest the input first): the norm of the gradient of
    the loss with respect to the block's weights divided by the square root of their
    number. A plain member's block is hidden layer ``k``'s weight (column 0 the first
    hidden layer, which reads the input); a residual member's, its branch's ``W1`` and
    ``W2``, and a gated member's ``W1``, ``V`` and ``W2`` (biases and norms left out).
    One forward and backward pass of the stacked members, no update.

    Args:
        members: all plain, or all of one residual kind.
        X: inputs ``(N, in_dim)``.
        y: targets ``(N, out_dim)`` for ``"mse"``, class indices ``(N,)`` for ``"ce"``.
        depth, width: hidden layers (or blocks) and their width (the stream's).
        branch_width: residual and gated members' branch width (default ``width``).
        loss: ``"mse"`` or ``"ce"``.
        device: defaults to :func:`actlab.engine.device.get_device`.
        cpu_threads: intra-op threads on the CPU, as for
            :func:`~actlab.ensemble.train.train_ensemble` (``"auto"``: the cores not busy).
    """
    device = torch.device(device) if device is not None else get_device()
    with limit_cpu_threads(cpu_threads, device):
        return _block_rms(members, X, y, depth, width, branch_width, loss, device)


def _block_rms(members, X, y, depth, width, branch_width, loss, device) -> np.ndarray:
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    y_dtype = torch.long if loss == "ce" else torch.float32
    y_t = torch.as_tensor(np.asarray(y), dtype=y_dtype, device=device)
    out_dim = int(y_t.max().cpu().item()) + 1 if loss == "ce" else y_t.shape[-1]
    model = stacked(members, X_t.shape[1], depth, width, out_dim, branch_width).to(device)
    weights = {id(w) for w in model.weights}
    for p in model.params:  # the other parameters' gradients are not needed
        p.requires_grad_(id(p) in weights)
    loss_per_member(model(X_t), y_t, loss).sum().backward()
    if isinstance(model, EnsembleMLP):
        groups = [[k] for k in range(depth)]
    else:
        groups = [model.block_layers(k) for k in range(depth)]
    rms = []
    for group in groups:
        grads = [model.weights[j].grad.flatten(1) for j in group]
        squares = sum(g.square().sum(dim=1) for g in grads)
        rms.append((squares / sum(g.shape[1] for g in grads)).sqrt())
    return torch.stack(rms, dim=1).cpu().numpy()


@torch.no_grad()
def stream_variances(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    branch_width: int | None = None,
    out_dim: int = 1,
    cpu_threads: int | str | None = "auto",
) -> np.ndarray:
    """Variance of the stream at initialisation, over examples and units together.

    For residual and gated members, of ``h_0, ..., h_L`` (the input projection, then each
    block's output), shape ``(E, depth + 1)``. Plain members have no stream: for them it
    is :func:`hidden_variances`, each hidden layer's activations, shape ``(E, depth)``
    with column 0 the first hidden layer. On the CPU, with ``cpu_threads`` intra-op
    threads (as for :func:`~actlab.ensemble.train.train_ensemble`).
    """
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    with limit_cpu_threads(cpu_threads, "cpu"):
        model = stacked(members, X_t.shape[1], depth, width, out_dim, branch_width)
        if isinstance(model, EnsembleMLP):
            _, hidden = model(X_t, return_hidden=True)
        else:
            _, hidden = model.trace(X_t)
    return torch.stack([h.flatten(1).var(dim=1) for h in hidden], dim=1).cpu().numpy()
