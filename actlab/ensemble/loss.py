"""Each member's loss, and its gradient with respect to the outputs.

The losses are ``"mse"`` (mean squared error, targets ``(N, out_dim)``) and ``"ce"``
(cross-entropy on logits, class indices ``(N,)``); either may also come one set per
member, with the member axis ``E`` in front.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("mse", "ce")


def check_loss(loss: str) -> None:
    """Raise ``ValueError`` unless ``loss`` is one of :data:`LOSSES`."""
    if loss not in LOSSES:
        raise _unknown(loss)


def _unknown(loss: str) -> ValueError:
    return ValueError(f"unknown loss {loss!r}; use 'mse' or 'ce'")


def shared_dims(name: str, loss: str) -> int:
    """The dims of inputs (``name == "X"``) or targets (``"y"``) shared by every member:
    ``(N, in_dim)``, ``(N, out_dim)`` for ``"mse"``, class indices ``(N,)`` for ``"ce"``.
    One set per member has one dim more in front, ``E``."""
    return 2 if name == "X" or loss != "ce" else 1


def squared_error(diff: torch.Tensor) -> torch.Tensor:
    """Each member's mean squared error from ``out - y``, shape ``(E,)``."""
    return (diff**2).mean(dim=(1, 2))


def loss_per_member(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Each member's loss on its outputs ``out`` ``(E, N, out_dim)``, shape ``(E,)``."""
    if loss == "mse":
        return squared_error(out - y)
    if loss == "ce":
        E, N, C = out.shape
        target = y.repeat(E) if y.dim() == 1 else y.reshape(E * N)
        per = F.cross_entropy(out.reshape(E * N, C), target, reduction="none")
        return per.view(E, N).mean(dim=1)
    raise _unknown(loss)


def loss_and_grad(
    out: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's loss, shape ``(E,)``, and the gradient of their sum with respect to ``out``.

    For the mean squared error the gradient is written out: ``(out - y) * (2 / n)``
    with ``n`` the numbers per member, which is bit for bit what autograd computes
    (tests/ensemble/test_ensemble_step.py checks it); other losses go through autograd.
    """
    if loss == "mse":
        diff = out - y
        per_member = squared_error(diff)
        return per_member, diff.mul_(2.0 / (out.shape[1] * out.shape[2]))
    with torch.enable_grad():
        out = out.detach().requires_grad_(True)
        per_member = loss_per_member(out, y, loss)
        (grad,) = torch.autograd.grad(per_member.sum(), out)
    return per_member.detach(), grad
