"""Activations at scale (chapter 7): depth and residual streams, precision, cost, gated units.

The modules:

* :mod:`~actlab.chapters.ch07_scale.depth`: plain against residual stacks at depth (the
  gradient per block at initialisation, trainability, the stream's variance, the same
  training in float32 and bfloat16) and the chapter's explorer;
* :mod:`~actlab.chapters.ch07_scale.precision`: each activation's error in each number format;
* :mod:`~actlab.chapters.ch07_scale.cost`: the activation's share of an MLP block's time, and
  time to a target loss;
* :mod:`~actlab.chapters.ch07_scale.gated`: gated feed-forward blocks against plain ones at a
  matched parameter count;
* :mod:`~actlab.chapters.ch07_scale.census`: every activation that real architectures apply.
"""
