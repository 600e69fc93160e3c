"""Shared fixtures and helpers for the course's tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# pytest-xdist runs two workers on two cores: one thread each avoids oversubscription,
# for the workers and for the kernels and tools they start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

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
