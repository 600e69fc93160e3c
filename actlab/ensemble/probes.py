"""Looking into an ensemble: at initialisation, and during training through probes.

A probe is a function ``probe(model, X)`` that :func:`~actlab.ensemble.train_ensemble`
calls under ``torch.no_grad()`` at the epochs it is given (``probe_epochs``), with
the stacked model (:class:`~actlab.ensemble.model.EnsembleMLP`) and the training
inputs; what it returns is kept in ``result.probes[epoch]``. Probes that any chapter
may use belong here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from actlab.engine.device import get_device

from .loss import loss_per_member
from .members import Member
from .model import EnsembleMLP

Probe = Callable[[EnsembleMLP, torch.Tensor], Any]


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
