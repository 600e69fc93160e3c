"""actlab: the tested library behind the activation-functions course."""

from actlab.device import Stopwatch, describe_device, get_device, set_seed
from actlab.explorer import Explorer

__all__ = ["Explorer", "Stopwatch", "describe_device", "get_device", "set_seed"]
