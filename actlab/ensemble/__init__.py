"""Batched ensemble training (introduced in chapter 3): many small MLPs trained at once.

Experiments in this course repeat one small network over seeds, activations and
learning rates. Trained one after another in a Python loop, a 64-unit network
spends most of its time in interpreter and kernel-launch overhead. Here the E
members are stacked into one model: layer ``k`` holds a weight tensor of shape
``(E, fan_in, fan_out)`` and the forward pass is one ``torch.baddbmm`` per layer
for all members together. The members' losses are summed before the backward
pass; since no parameter is shared, each member receives the gradient of its own
loss, so a member trains as it would alone, to rounding: the arithmetic is the same,
but a vectorised kernel may round a last bit differently where a member's numbers sit
at another position in the stacked tensors, and where training is chaotic (chapter
4's learning rate 0.1) that decides the run. For members without a
norm, :func:`train_ensemble` runs that forward and backward pass written out by hand
(:class:`~actlab.ensemble.step.HandStep`: weight and bias packed in one tensor per
layer, buffers kept between steps), which the tests check against autograd and
against the network alone.

Members may differ in seed, activation, learning rate, initialisation, hidden
bias and normalisation, and may train on data of their own. The
optimisers (Adam and SGD with momentum) are written for stacked tensors so that
each member can keep its own learning rate; they follow ``torch.optim``'s update
formulas step for step.

The modules:

* :mod:`~actlab.ensemble.members`: what a member is (:class:`Member`,
  :func:`members_grid`) and the plain network it equals (:func:`build_member`);
* :mod:`~actlab.ensemble.model`: the stacked network, :class:`EnsembleMLP`;
* :mod:`~actlab.ensemble.blocks`: the stacked residual and gated networks of chapter 7,
  :class:`EnsembleResidual` (members with ``block="residual"`` or ``"gated"``, trained
  by the same :func:`train_ensemble`, with autograd);
* :mod:`~actlab.ensemble.kernels`: each activation's ATen kernels, and the autograd
  node that applies them run by run;
* :mod:`~actlab.ensemble.step`: the training step written out by hand, member chunks
  that fit the cache (:func:`chunk_members`);
* :mod:`~actlab.ensemble.loss`: each member's loss and its gradient;
* :mod:`~actlab.ensemble.optim`: Adam and SGD over stacked parameters;
* :mod:`~actlab.ensemble.train`: :func:`train_ensemble`, :func:`train_single` and
  :class:`EnsembleResult`;
* :mod:`~actlab.ensemble.probes`: looking into the networks at initialisation
  (:func:`gradient_norms_at_init`, :func:`hidden_variances`, and for chapter 7
  :func:`block_gradient_norms_at_init`, :func:`stream_variances`) and during training.
"""

from .blocks import EnsembleResidual
from .members import Member, build_member, members_grid
from .model import EnsembleMLP
from .probes import (
    Probe,
    block_gradient_norms_at_init,
    gradient_norms_at_init,
    hidden_variances,
    stream_variances,
)
from .step import chunk_members
from .train import EnsembleResult, epoch_batches, train_ensemble, train_single

__all__ = [
    "EnsembleMLP",
    "EnsembleResidual",
    "EnsembleResult",
    "Member",
    "Probe",
    "block_gradient_norms_at_init",
    "build_member",
    "chunk_members",
    "epoch_batches",
    "gradient_norms_at_init",
    "hidden_variances",
    "members_grid",
    "stream_variances",
    "train_ensemble",
    "train_single",
]
