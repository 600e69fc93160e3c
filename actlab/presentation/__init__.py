"""How the course shows things: :mod:`~actlab.presentation.figures` (the one palette, each
activation's line style, figures shown with their description) and
:mod:`~actlab.presentation.explorer` (static frames in the book, live controls in Jupyter).

Imports the engine only; the chapters build on it.
"""
