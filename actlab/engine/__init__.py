"""The engine: what every chapter and the ensemble trainer stand on.

* :mod:`actlab.engine.activations`: the activation registry (functions, derivatives,
  modules, labels and line styles; the one answer to "is this module an activation").
* :mod:`actlab.engine.models`: multilayer perceptrons and their initialisation.
* :mod:`actlab.engine.data`: the course's data sets, generated or shipped with a package.
* :mod:`actlab.engine.device`: device choice, seeds, CPU threads and timing.

Nothing here imports the ensemble trainer, a chapter module or the presentation layer.
"""
