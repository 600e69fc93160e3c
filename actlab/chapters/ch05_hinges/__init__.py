"""Hinge points and linear regions of piecewise-linear (ReLU, Leaky ReLU) networks (chapter 5).

A network built from affine layers and ReLU or Leaky ReLU activations is affine on
each set of inputs that share one *activation pattern* (which units are active).
This module computes those pieces exactly:

* on a line, for a network of any depth, by following the breakpoints layer by
  layer (:func:`line_partition`): the input of each layer is affine on every
  current piece, so each unit's pre-activation has at most one zero per piece;
* in the plane, for one hidden layer, from the arrangement of the units' lines
  (:func:`arrangement_regions`, or inside a box, :func:`box_regions`), and for any depth by sampling patterns on a grid
  (:func:`activation_patterns`, a lower bound);
* and the theoretical maxima of the literature (:func:`montufar_lower_bound`,
  :func:`serra_upper_bound`).

On the texture experiment's networks, :func:`slope_probe` measures each hidden layer's
slopes (how many units sit in a flat tail) and how much its units vary with the input.

The chapter's explorer (:func:`three_unit_explorer`) shows three units on the plane:
their hinges on a line and the regions their lines cut.

The networks are ``nn.Sequential`` models (for example an ensemble member,
``result.model.member_module(i)``) or lists of ``(W, b)`` pairs.
"""

from actlab.chapters.ch05_hinges.explorer import (
    three_unit_explorer,
    three_units,
    three_units_figure,
)
from actlab.chapters.ch05_hinges.lines import (
    IntervalFormulas,
    LinePartition,
    Stage,
    count_line_regions,
    hinge_points,
    interval_formulas,
    line_partition,
    region_count_probe,
    stages_from_weights,
)
from actlab.chapters.ch05_hinges.plane import (
    activation_patterns,
    arrangement_box,
    arrangement_regions,
    arrangement_vertices,
    box_regions,
    count_grid_regions,
    general_position_regions,
    montufar_lower_bound,
    pattern_ids,
    plane_grid,
    plot_partition,
    serra_upper_bound,
    view_box,
)
from actlab.chapters.ch05_hinges.texture import LayerSlopes, slope_probe

__all__ = [
    "IntervalFormulas",
    "LayerSlopes",
    "LinePartition",
    "Stage",
    "activation_patterns",
    "arrangement_box",
    "arrangement_regions",
    "arrangement_vertices",
    "box_regions",
    "count_grid_regions",
    "count_line_regions",
    "general_position_regions",
    "hinge_points",
    "interval_formulas",
    "line_partition",
    "montufar_lower_bound",
    "pattern_ids",
    "plane_grid",
    "plot_partition",
    "region_count_probe",
    "serra_upper_bound",
    "slope_probe",
    "stages_from_weights",
    "three_unit_explorer",
    "three_units",
    "three_units_figure",
    "view_box",
]
