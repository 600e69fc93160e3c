"""Generate the student notebooks in exercises/ from the nbgrader sources in solutions/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _env() -> dict[str, str]:
    # nbgrader shells out to `alembic`: make sure this interpreter's bin/ is on PATH.
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("NBGRADER_EXECUTION", "release")
    return env


def assignments(course_root: Path) -> list[str]:
    """Names of the assignments under ``solutions/`` (folders holding a notebook)."""
    src = course_root / "solutions"
    return sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def release(
    course_root: Path, names: list[str] | None = None, dest: str = "exercises"
) -> list[Path]:
    """Run ``nbgrader generate_assignment`` for each assignment into ``course_root/dest``.

    Args:
        course_root: the folder holding ``nbgrader_config.py`` and ``solutions/``.
        names: assignments to release (default: all).
        dest: release folder name, relative to ``course_root``.

    Returns:
        The released assignment folders.
    """
    course_root = Path(course_root).resolve()
    names = names or assignments(course_root)
    out = []
    for name in names:
        target = course_root / dest / name
        if target.exists():
            shutil.rmtree(target)
        cmd = [
            sys.executable,
            "-m",
            "nbgrader",
            "generate_assignment",
            name,
            "--force",
            "--no-db",
            "--log-level=WARN",
            f"--CourseDirectory.root={course_root}",
            "--CourseDirectory.source_directory=solutions",
            f"--CourseDirectory.release_directory={dest}",
        ]
        proc = subprocess.run(cmd, cwd=course_root, env=_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"nbgrader generate_assignment {name} failed:\n{proc.stdout}\n{proc.stderr}"
            )
        out.append(target)
    return out
