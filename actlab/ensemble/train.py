"""Training: :func:`train_ensemble` for many members at once, :func:`train_single` for one alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from actlab.engine.device import Stopwatch, describe_device, get_device
from actlab.engine.device import cpu_threads as limit_cpu_threads

from .blocks import EnsembleResidual
from .loss import check_loss, loss_per_member, shared_dims
from .members import Member, build_member
from .model import EnsembleMLP
from .optim import StackedOptimizer
from .probes import Probe, stacked
from .step import HandStep


@dataclass
class EnsembleResult:
    """What :func:`train_ensemble` measured.

    Attributes:
        members: the members, in the order of every member axis below.
        losses: training loss per epoch and member, shape ``(num_epochs, E)``; the
            mean loss of the epoch's steps, computed before each step's update.
        grad_epochs: the epochs at which gradient norms were recorded.
        grad_norms: Frobenius norm of each linear layer's weight gradient, shape
            ``(len(grad_epochs), E, n_layers)``, layer 0 nearest the input; taken
            at the first step of the epoch (before its update), so epoch 0 is the
            gradient at initialisation. For residual and gated members the layers are
            those of ``model.weights``: the input projection, per block ``W1``, (``V``,)
            ``W2``, then the head (:meth:`EnsembleResidual.block_layers` gives block
            ``k``'s columns).
        model: the trained ensemble.
        seconds: wall time of the training loop (probes included).
        device: where it ran, in words.
        probes: what the ``probe`` of :func:`train_ensemble` returned, by epoch (the
            weights after that many epochs of updates; 0 is the initialisation).
        nonfinite_steps: per member, the number of steps whose loss was not finite
            (``inf`` or ``nan``), shape ``(E,)``; 0 where none.
    """

    members: list[Member]
    losses: np.ndarray
    grad_epochs: np.ndarray
    grad_norms: np.ndarray
    model: EnsembleMLP | EnsembleResidual
    seconds: float
    device: str
    probes: dict[int, Any] = field(default_factory=dict)
    nonfinite_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def where(self, **attrs: object) -> np.ndarray:
        """Indices of the members whose fields equal ``attrs``, e.g. ``where(activation="relu")``."""
        return np.array(
            [
                i
                for i, m in enumerate(self.members)
                if all(getattr(m, k) == v for k, v in attrs.items())
            ],
            dtype=int,
        )


def epoch_batches(
    n: int, batch_size: int | None, epoch: int, data_seed: int
) -> list[torch.Tensor] | None:
    """Index batches of one epoch (``None`` for full batch); the same for every member.

    The order is drawn from ``data_seed`` and the epoch number, so a network trained
    alone with the same arguments sees the same batches.
    """
    if batch_size is None or batch_size >= n:
        return None
    gen = torch.Generator().manual_seed(data_seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


class _Data(NamedTuple):
    """Training data on its device, and the output width it calls for."""

    device: torch.device
    X: torch.Tensor
    y: torch.Tensor
    out_dim: int


def _prepare(
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    loss: str,
    dtype: torch.dtype,
    device: torch.device | str | None,
    members: int | None = None,
) -> _Data:
    """``X`` and ``y`` as tensors on ``device`` (default :func:`get_device`), checked.

    Inputs take ``dtype``, and so do the targets of ``"mse"``; class indices are
    ``torch.long``. Where ``members`` is given, ``X`` and ``y`` may each also hold one
    set per member (a leading dim of that size). The output width is the targets' last
    dim for ``"mse"`` and the number of classes for ``"ce"``.
    """
    check_loss(loss)
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(
        np.asarray(X) if not torch.is_tensor(X) else X, dtype=dtype, device=device
    )
    y_dtype = torch.long if loss == "ce" else dtype
    # Where it was given (the CPU for arrays): the number of classes is read there.
    y_t = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=y_dtype)
    out_dim = int(y_t.max().cpu().item()) + 1 if loss == "ce" else y_t.shape[-1]
    y_t = y_t.to(device)
    for name, t in (("X", X_t), ("y", y_t)):
        dims = shared_dims(name, loss)
        if members is not None and t.dim() == dims + 1:
            if t.shape[0] != members:
                raise ValueError(f"per-member {name} has {t.shape[0]} sets for {members} members")
        elif t.dim() != dims:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; see the docstring")
    if X_t.shape[-2] != y_t.shape[-1 if loss == "ce" else -2]:
        raise ValueError(f"X and y hold different numbers of examples: {X_t.shape}, {y_t.shape}")
    return _Data(device, X_t, y_t, out_dim)


class Trainer:
    """The steps of :func:`train_ensemble`: gradients, then the optimiser's update.

    The gradients come from :class:`~actlab.ensemble.step.HandStep` where it applies
    (plain members without norms, no ``autocast``) and from autograd otherwise; both
    give each member the gradient of its own loss. With ``autocast`` (a dtype) the
    forward pass runs under ``torch.autocast`` in that dtype, the parameters and their
    gradients staying in theirs.
    """

    def __init__(
        self,
        model: EnsembleMLP | EnsembleResidual,
        lrs: torch.Tensor,
        optimizer: str = "adam",
        momentum: float = 0.0,
        loss: str = "mse",
        autocast: torch.dtype | None = None,
    ) -> None:
        self.model, self.loss, self.autocast = model, loss, autocast
        hand = isinstance(model, EnsembleMLP) and autocast is None and HandStep.supports(model)
        self.hand = HandStep(model) if hand else None
        params = self.hand.layers if self.hand is not None else model.params
        self.opt = StackedOptimizer(params, lrs, kind=optimizer, momentum=momentum)

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Every parameter's gradient on ``(x, y)``; returns each member's loss, shape ``(E,)``."""
        if self.hand is not None:
            return self.hand(x, y, self.loss)
        for p in self.model.params:
            p.grad = None
        if self.autocast is None:
            context: contextlib.AbstractContextManager = contextlib.nullcontext()
        else:
            context = torch.autocast(x.device.type, dtype=self.autocast)
        with context:
            out = self.model(x)
        per_member = loss_per_member(out.to(self.model.weights[0].dtype), y, self.loss)
        per_member.sum().backward()
        return per_member.detach()

    @torch.no_grad()
    def weight_grad_norms(self) -> torch.Tensor:
        """Frobenius norm of each layer's weight gradient, shape ``(E, n_layers)``."""
        if self.hand is not None:
            grads = self.hand.weight_grads
        else:
            grads = [w.grad for w in self.model.weights]
        return torch.stack([torch.linalg.vector_norm(g, dim=(1, 2)) for g in grads], dim=1)

    def update(self) -> None:
        """One step of the optimiser with the gradients of the last :meth:`gradients`."""
        self.opt.step()


def _run_epochs(
    trainer: Trainer,
    X_t: torch.Tensor,
    y_t: torch.Tensor,
    batch_size: int | None,
    data_seed: int,
    num_epochs: int,
    progress: bool,
    losses: torch.Tensor,
    norms: torch.Tensor,
    slot: dict[int, int],
    probe: Probe | None = None,
    probe_at: frozenset[int] = frozenset(),
    probes: dict[int, Any] | None = None,
    nonfinite: torch.Tensor | None = None,
) -> None:
    """The epochs of :func:`train_ensemble`; fills ``losses``, ``norms``, ``probes`` and
    ``nonfinite`` (steps with a loss that is not finite, per member) in place."""
    model = trainer.model
    E, device = model.size, X_t.device
    n = X_t.shape[-2]
    # The example axis: the one before the features, or the last one of class labels.
    y_axis = y_t.dim() - (1 if trainer.loss == "ce" else 2)

    def run_probe(epoch: int) -> None:
        if probe is not None and epoch in probe_at and probes is not None:
            with torch.no_grad():
                probes[epoch] = probe(model, X_t)

    for epoch in tqdm(range(num_epochs), disable=not progress, desc=f"{E} nets", leave=False):
        run_probe(epoch)
        batches = epoch_batches(n, batch_size, epoch, data_seed)
        for b, idx in enumerate(batches if batches is not None else [None]):
            if idx is None:
                xb, yb = X_t, y_t
            else:
                idx = idx.to(device)
                xb, yb = X_t.index_select(X_t.dim() - 2, idx), y_t.index_select(y_axis, idx)
            per_member = trainer.gradients(xb, yb)
            losses[epoch] += per_member
            if nonfinite is not None:
                nonfinite += ~torch.isfinite(per_member)
            if b == 0 and epoch in slot:
                norms[slot[epoch]] = trainer.weight_grad_norms()
            trainer.update()
        if batches is not None:
            losses[epoch] /= len(batches)
    run_probe(num_epochs)


def train_ensemble(
    members: Sequence[Member],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    num_epochs: int,
    optimizer: str = "adam",
    loss: str = "mse",
    batch_size: int | None = None,
    momentum: float = 0.0,
    grad_epochs: Iterable[int] | None = None,
    data_seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    cpu_threads: int | str | None = "auto",
    probe: Probe | None = None,
    probe_epochs: Iterable[int] = (),
    branch_width: int | None = None,
    autocast: torch.dtype | None = None,
) -> EnsembleResult:
    """Train every member on ``(X, y)`` at once and record losses and per-layer gradient norms.

    Args:
        members: the networks to train (see :class:`Member`, :func:`members_grid`): all
            plain (an :class:`EnsembleMLP`), or all residual or all gated (an
            :class:`EnsembleResidual`, trained with autograd).
        X: inputs ``(N, in_dim)`` shared by every member, or ``(E, N, in_dim)``, one set
            per member.
        y: targets ``(N, out_dim)`` (or ``(E, N, out_dim)``, one set per member) for
            ``loss="mse"``; class indices ``(N,)`` (or ``(E, N)``) for ``"ce"``.
        depth, width: hidden layers and units per hidden layer; for residual and gated
            members, blocks and the stream's width.
        num_epochs: passes over the data.
        optimizer: ``"adam"`` (default betas) or ``"sgd"`` (with ``momentum``).
        loss: ``"mse"`` (mean squared error) or ``"ce"`` (cross-entropy on logits).
        batch_size: ``None`` for full-batch steps (one step per epoch).
        grad_epochs: epochs at which to record gradient norms (default: every epoch).
        data_seed: seeds the batch order when ``batch_size`` is set.
        device: defaults to :func:`actlab.engine.device.get_device`.
        dtype: parameter dtype (``torch.float64`` for exact comparisons in tests).
        progress: show a tqdm progress bar.
        cpu_threads: intra-op threads while training on the CPU (restored afterwards,
            see :func:`actlab.engine.device.cpu_threads`): a number, ``"auto"`` (the default:
            one thread per usable core that other work is not already using, from the
            process's CPU affinity and the machine's load, see
            :func:`actlab.engine.device.auto_threads`) or ``None`` to leave PyTorch's setting
            alone. Busy cores get no thread: when the cores are busy with other work,
            OpenMP threads waiting for each other made training 5 to 10 times slower in
            our measurements (benchmarks/ENSEMBLE.md). The results do not depend on it:
            a step's kernels give the same numbers on one thread or several.
        probe: ``probe(model, X)`` is called under ``torch.no_grad()`` at the start of each
            epoch in ``probe_epochs`` (the weights after that many epochs of updates) and,
            for ``num_epochs`` itself, after training; what it returns is kept in
            ``result.probes[epoch]``. Use :meth:`EnsembleMLP.trace` in it to see
            pre-activations (:meth:`EnsembleResidual.trace`: the stream). Its cost counts
            in ``result.seconds``.
        probe_epochs: the epochs at which to call ``probe`` (``0 <= e <= num_epochs``).
        branch_width: residual and gated members' branch width (default ``width``).
        autocast: a dtype (``torch.bfloat16``) for mixed precision: each step's forward
            pass runs under ``torch.autocast(device.type, dtype=autocast)``, the
            parameters (master weights), the loss and the gradients staying in ``dtype``;
            always through autograd. Loss scaling (for ``torch.float16``) is not done.

    Returns:
        An :class:`EnsembleResult`.
    """
    E = len(members)
    device, X_t, y_t, out_dim = _prepare(X, y, loss, dtype, device, members=E)
    model = stacked(members, X_t.shape[-1], depth, width, out_dim, branch_width, dtype)
    model = model.to(device)
    lrs = torch.tensor([m.lr for m in model.members], dtype=dtype)  # the optimiser moves them
    trainer = Trainer(model, lrs, optimizer, momentum, loss, autocast)

    record = set(range(num_epochs)) if grad_epochs is None else {int(e) for e in grad_epochs}
    record_sorted = sorted(e for e in record if 0 <= e < num_epochs)
    n_layers = model.n_layers
    losses = torch.zeros(num_epochs, E, dtype=dtype, device=device)
    norms = torch.zeros(len(record_sorted), E, n_layers, dtype=dtype, device=device)
    slot = {e: i for i, e in enumerate(record_sorted)}
    probe_at = frozenset(int(e) for e in probe_epochs if 0 <= int(e) <= num_epochs)
    probes: dict[int, Any] = {}
    nonfinite = torch.zeros(E, dtype=torch.long, device=device)

    with limit_cpu_threads(cpu_threads, device), Stopwatch(device) as watch:
        where = describe_device(device)  # as trained, with the thread count in force
        _run_epochs(
            trainer, X_t, y_t, batch_size, data_seed, num_epochs, progress, losses, norms,
            slot, probe, probe_at, probes, nonfinite,
        )  # fmt: skip

    return EnsembleResult(
        members=list(model.members),
        losses=losses.cpu().numpy(),
        grad_epochs=np.array(record_sorted, dtype=int),
        grad_norms=norms.cpu().numpy(),
        model=model,
        seconds=watch.seconds,
        device=where,
        probes=dict(sorted(probes.items())),
        nonfinite_steps=nonfinite.cpu().numpy(),
    )


def train_single(
    member: Member,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    depth: int,
    width: int,
    num_epochs: int,
    loss: str = "mse",
    optimizer: str = "adam",
    momentum: float = 0.0,
    batch_size: int | None = None,
    data_seed: int = 0,
    device: torch.device | str | None = None,
    branch_width: int | None = None,
) -> np.ndarray:
    """Train one member alone with ``torch.optim``: the ordinary loop, the baseline.

    ``benchmarks/bench_ensemble.py`` times a Python loop of these against
    :func:`train_ensemble`, and chapter 6 times one network per activation with it.
    The batches are those of :func:`epoch_batches`, as in the ensemble. ``X`` and ``y``
    are as for :func:`train_ensemble`, one set for the one network.

    Returns:
        The loss per epoch (mean over the epoch's steps), shape ``(num_epochs,)``.
    """
    device, X_t, y_t, out_dim = _prepare(X, y, loss, torch.float32, device)
    loss_fn = {"mse": F.mse_loss, "ce": F.cross_entropy}[loss]
    net = build_member(member, X_t.shape[1], width, depth, out_dim, branch_width=branch_width)
    net = net.to(device)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=member.lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=member.lr, momentum=momentum)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam' or 'sgd'")
    losses = torch.zeros(num_epochs, device=device)
    for epoch in range(num_epochs):
        batches = epoch_batches(X_t.shape[0], batch_size, epoch, data_seed)
        for idx in batches if batches is not None else [None]:
            xb, yb = (X_t, y_t) if idx is None else (X_t[idx.to(device)], y_t[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            step_loss = loss_fn(net(xb), yb)
            step_loss.backward()
            opt.step()
            losses[epoch] += step_loss.detach()
        if batches is not None:
            losses[epoch] /= len(batches)
    return losses.cpu().numpy()
