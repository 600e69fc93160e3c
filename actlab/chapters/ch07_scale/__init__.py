"""Activations at scale (chapter 7): depth and residual streams, precision, cost, gated units.

The modules:

* :mod:`~actlab.chapters.ch07_scale.census`: every activation that real architectures apply;
* :mod:`~actlab.chapters.ch07_scale.precision`: each activation's error in each number format;
* :mod:`~actlab.chapters.ch07_scale.cost`: the activation's share of an MLP block's time.
"""
