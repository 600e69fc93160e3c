"""Shared fixtures and helpers for the course's tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# pytest-xdist runs two workers on two cores: one thread each avoids oversubscription,
# for the workers and for the kernels and tools they start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool_env() -> dict[str, str]:
    """Environment for subprocesses: this venv's bin/ first (nbgrader shells out to alembic)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def controls(view) -> list:
    """An explorer view's control widgets (the row of controls under its optional title)."""
    import ipywidgets as widgets

    row = next(c for c in view.children if isinstance(c, widgets.HBox))
    return list(row.children)


def assignments() -> list[str]:
    src = ROOT / "solutions"
    return sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


@pytest.fixture
def root() -> Path:
    return ROOT


# The activation registry's names, in its order (tests/engine/test_activations.py checks
# that the registry holds exactly these).
ACTIVATION_NAMES = [
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "softplus", "silu",
]  # fmt: skip

# Points to check activations at: dense around the interesting region, plus large |z|
# where naive formulas break.
Z_LARGE = [-1e4, -1e3, -710.0, -100.0, -50.0, -20.0, 20.0, 50.0, 100.0, 710.0, 1e3, 1e4]
Z_GRID = np.concatenate([np.linspace(-12.0, 12.0, 2401), Z_LARGE])


@pytest.fixture(params=ACTIVATION_NAMES)
def act(request: pytest.FixtureRequest):
    """Each registry activation in turn."""
    from actlab.engine.activations import get

    return get(request.param)
