"""actlab: the tested library behind the activation-functions course.

Importing it installs the course's figure style (:func:`actlab.presentation.figures.use_style`:
Okabe–Ito colours with distinct line styles), so every chapter and notebook draws
with the same colour-blind-safe palette.
"""

from actlab.engine.device import Stopwatch, describe_device, get_device, set_seed
from actlab.presentation.explorer import Explorer
from actlab.presentation.figures import use_style

use_style()

__all__ = ["Explorer", "Stopwatch", "describe_device", "get_device", "set_seed"]
