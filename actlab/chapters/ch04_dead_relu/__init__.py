"""Dead, sparse and saturated units (chapter 4): probes, their bookkeeping and the sweep tables.

A hidden unit is *dead on a data set* when its pre-activation ``z`` is ``<= 0`` for every
example (for ReLU every weight feeding it then gets exactly zero gradient), and
*gradient-dead* when ``phi'(z) == 0`` for every example. For ReLU the two coincide; a
never-positive Leaky ReLU unit still passes a gradient, and so does a GELU unit above a
threshold that depends on the backend (:func:`zero_slope_threshold`).

The probes count, per member, layer and unit, the examples with ``z > 0`` and with
``phi'(z) != 0``: ``E x depth x width`` integers, cheap to record at several epochs of
:func:`actlab.ensemble.train_ensemble` (``probe=count_units``).

The modules:

* :mod:`~actlab.chapters.ch04_dead_relu.counts`: the probes and the first-layer hinge rule;
* :mod:`~actlab.chapters.ch04_dead_relu.history`: divergence, dead units over training, the
  sweep's tables and the book's rule applied to two settings, in words;
* :mod:`~actlab.chapters.ch04_dead_relu.inputs`: a d-dimensional input and the ray rule of a
  network without biases on one input (what the scalar input does to deeper layers);
* :mod:`~actlab.chapters.ch04_dead_relu.revival`: the constructed revival example;
* :mod:`~actlab.chapters.ch04_dead_relu.plots`: activation maps, plots and the explorer.
"""

from actlab.chapters.ch04_dead_relu.counts import (
    UnitCounts,
    backward_backend,
    count_units,
    dead_masks,
    first_layer_dead_on_interval,
    network_unit_counts,
    pre_activations,
    unit_hinges,
    unit_probe,
    zero_slope_threshold,
)
from actlab.chapters.ch04_dead_relu.history import (
    DeadHistory,
    diverged,
    format_mean_std,
    format_rate,
    kept_mean_std,
    layer_groups,
    left_out,
    rate_phrase,
    sweep_table,
    verdicts,
    versus,
)
from actlab.chapters.ch04_dead_relu.inputs import dead_at_ends, gaussian_sine
from actlab.chapters.ch04_dead_relu.plots import (
    activation_map,
    dead_units_explorer,
    plot_dead_vs_lr,
)
from actlab.chapters.ch04_dead_relu.revival import RevivalTrace, revival_demo, revival_network

__all__ = [
    "DeadHistory",
    "RevivalTrace",
    "UnitCounts",
    "activation_map",
    "backward_backend",
    "count_units",
    "dead_at_ends",
    "dead_masks",
    "dead_units_explorer",
    "diverged",
    "first_layer_dead_on_interval",
    "format_mean_std",
    "format_rate",
    "gaussian_sine",
    "kept_mean_std",
    "layer_groups",
    "left_out",
    "network_unit_counts",
    "plot_dead_vs_lr",
    "pre_activations",
    "rate_phrase",
    "revival_demo",
    "revival_network",
    "sweep_table",
    "unit_hinges",
    "unit_probe",
    "verdicts",
    "versus",
    "zero_slope_threshold",
]
