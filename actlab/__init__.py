"""actlab: the tested library behind the activation-functions course.

Importing it installs the course's figure style (:func:`actlab.presentation.figures.use_style`:
Okabe–Ito colours with distinct line styles), so every chapter and notebook draws
with the same colour-blind-safe palette. In an IPython session it also gives styled pandas
tables a plain-text form (:func:`actlab.presentation.paper.install_text_tables`), the one
the PDF prints.
"""

from actlab.engine.device import Stopwatch, describe_device, get_device, set_seed
from actlab.presentation.explorer import Explorer
from actlab.presentation.figures import use_style
from actlab.presentation.paper import install_text_tables

use_style()
install_text_tables()

__all__ = ["Explorer", "Stopwatch", "describe_device", "get_device", "set_seed"]
