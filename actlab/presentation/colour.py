"""How the palette looks to readers with a colour-vision deficiency.

:func:`simulate` applies Machado, Oliveira and Fernandes's (2009) model of
protanopia, deuteranopia and tritanopia (full severity) to an sRGB colour, and
:func:`distance` measures the difference a reader sees (CIE76 ΔE in CIELAB). The
tests use them to require that any two activations whose colours come close under
a simulation also differ in line style and marker.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb

#: Machado et al. (2009), severity 1.0, acting on linear RGB.
DEFICIENCIES: dict[str, np.ndarray] = {
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ]
    ),
    "tritanopia": np.array(
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.303900],
        ]
    ),
}

#: Below this CIE76 ΔE two colours are "close": told apart with effort at best.
CLOSE = 20.0


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def simulate(colour: str, deficiency: str | None) -> np.ndarray:
    """The sRGB triple (0–1) that ``colour`` looks like under ``deficiency`` (None: as is)."""
    rgb = np.array(to_rgb(colour))
    if deficiency is None:
        return rgb
    if deficiency not in DEFICIENCIES:
        raise ValueError(f"unknown deficiency {deficiency!r}; one of {sorted(DEFICIENCIES)}")
    return _srgb(DEFICIENCIES[deficiency] @ _linear(rgb))


def _lab(rgb: np.ndarray) -> np.ndarray:
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = m @ _linear(rgb) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def distance(a: str, b: str, deficiency: str | None = None) -> float:
    """CIE76 ΔE between colours ``a`` and ``b`` as seen under ``deficiency``."""
    return float(np.linalg.norm(_lab(simulate(a, deficiency)) - _lab(simulate(b, deficiency))))


def worst_distance(a: str, b: str) -> float:
    """The smallest ΔE between ``a`` and ``b`` over normal vision and every deficiency."""
    return min(distance(a, b, d) for d in (None, *DEFICIENCIES))


__all__ = ["CLOSE", "DEFICIENCIES", "distance", "simulate", "worst_distance"]
