"""What grading needs from a course, wherever it runs: its configuration, its template,
a scratch folder, the sandbox's kernel spec and a grading process's settings.

The command (:mod:`autograder.grade`) and both runners (:mod:`autograder.runner_local`,
:mod:`autograder.runner_dask`) prepare a course the same way with these functions.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from autograder.sandbox import Limits, make_spec, write_kernel_spec

# The maths libraries' thread counts: one thread per kernel (and per grading process).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def tool_env() -> None:
    """nbgrader shells out to ``alembic``: put this interpreter's bin/ first on PATH.

    It does so only to read the newest migration's id when it creates a gradebook,
    which costs a whole interpreter start (seconds); read it in-process instead.
    """
    bindir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bindir):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head


@functools.lru_cache(maxsize=1)
def _alembic_head() -> str:
    """The id of nbgrader's newest gradebook migration (what ``alembic heads`` prints)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        return ScriptDirectory.from_config(AlembicConfig(ini)).get_current_head()


def init_worker() -> None:
    """Set up a grading process: nbgrader's tools, quiet warnings, one thread per library."""
    import warnings

    tool_env()
    # nbgrader's gradebook code trips SQLAlchemy's autoflush warnings; they are noise here.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    # One thread per kernel's maths libraries: the workers already use every core.
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")


def course_config(course_root: Path) -> dict[str, dict[str, Any]]:
    """The course's nbgrader_config.py as plain sections (only what matters to grading)."""
    path = course_root / "nbgrader_config.py"
    if not path.exists():
        return {}
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(path.name, path=str(course_root)).load_config()
    keep = ("ClearSolutions", "ClearHiddenTests", "LimitOutput", "IgnorePattern", "CourseDirectory")
    out: dict[str, dict[str, Any]] = {}
    for section in keep:
        if section in cfg:
            values = {
                k: v for k, v in cfg[section].items() if not k.endswith("directory") and k != "root"
            }
            if values:
                out[section] = values
    return out


def course_version(course_root: Path) -> str:
    """A hash of what decides a grade on a worker: ``solutions/``, the config, the grader."""
    course_root = Path(course_root)
    h = hashlib.sha256(b"autograder course version 1\n")
    files: list[tuple[str, Path]] = []
    sol = course_root / "solutions"
    if sol.is_dir():
        for p in sol.rglob("*"):
            rel = p.relative_to(course_root)
            if p.is_file() and not any(
                part in (".ipynb_checkpoints", "__pycache__") for part in rel.parts
            ):
                files.append((rel.as_posix(), p))
    config = course_root / "nbgrader_config.py"
    if config.is_file():
        files.append(("nbgrader_config.py", config))
    package = Path(__file__).resolve().parent
    for p in package.glob("*.py"):
        files.append((f"autograder/{p.name}", p))
    for name, p in sorted(files):
        h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def make_template(
    course_root: Path, assignment: str, dest: Path, config: dict, db_url: str | None = None
) -> None:
    """Generate the assignment into ``dest`` (source/, release/ and a gradebook) with nbgrader.

    With ``db_url`` the assignment is (also) recorded in that gradebook instead.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    src = course_root / "solutions" / assignment
    if not any(src.glob("*.ipynb")):
        raise FileNotFoundError(f"no assignment {assignment!r}: {src} holds no notebook")
    if (dest / "source" / assignment).exists():
        shutil.rmtree(dest / "source" / assignment)
    shutil.copytree(
        src,
        dest / "source" / assignment,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    cfg = Config()
    for section, values in config.items():
        for key, value in values.items():
            cfg[section][key] = value
    cfg.CourseDirectory.root = str(dest)
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.db_url = db_url or f"sqlite:///{dest / 'gradebook.db'}"
    cfg.CourseDirectory.assignment_id = assignment
    cfg.GenerateAssignment.force = True
    cfg.GenerateAssignment.create_assignment = True
    app = GenerateAssignment(coursedir=CourseDirectory(config=cfg), config=cfg)
    app.start()


def remove_stale_scratch() -> None:
    """Delete the scratch folders of grading runs that were killed (``kill -9``, a crash)."""
    for folder in Path(tempfile.gettempdir()).glob("ag-*"):
        try:
            pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def new_scratch() -> Path:
    """A scratch folder of this process's own (the template, the kernel spec, each job's copy).

    It names its owner, so that a later run deletes it if this one is killed; the
    stale folders of earlier runs go first.
    """
    remove_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix="ag-"))
    (scratch / "owner.pid").write_text(str(os.getpid()))
    return scratch


def kernel_spec(limits: Limits, hide: list[Path], unsafe: bool, where: Path) -> Path:
    """Write the sandbox's kernel spec under ``where``; return its kernels folder.

    Raises :class:`autograder.sandbox.SandboxUnavailable` when the system cannot build
    the sandbox (unless ``unsafe``).
    """
    # One thread per kernel for the maths libraries, whatever --workers is: the workers
    # fill the cores, and a grade never depends on how many ran side by side.
    env = {v: "1" for v in THREAD_VARS}
    spec = make_spec(limits, hide=hide, unsafe=unsafe, env=env)
    return write_kernel_spec(spec, where)
