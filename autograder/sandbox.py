"""The sandbox a student kernel runs in: bubblewrap, an unprivileged uid and resource limits."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KERNEL_NAME = "autograder-sandbox"
PRIVATE_TMP = "/tmp"  # the launcher binds an empty folder of the kernel's own here
TMP_SUBDIR = "tmp"  # ... the folder ``tmp`` in the kernel's socket folder, on disk
LAUNCHER = Path(__file__).with_name("_launcher.py")


class SandboxUnavailable(RuntimeError):
    """The system lacks what the sandbox needs (bubblewrap, setpriv, root)."""


@dataclass
class Limits:
    """Per-submission limits. Times in seconds, sizes in MiB."""

    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 4096
    cpu_seconds: int = 600
    max_processes: int = 256
    file_size_mb: int = 64
    output_mb: float = 4.0
    disk_mb: int = 256  # all a submission writes, its working folder and /tmp together


def add_limit_arguments(parser: Any) -> None:
    """The limits every grading command takes (``grade``, ``gradescope``), with their defaults."""
    defaults = Limits()
    for flag, field_name, what in (
        ("--cell-timeout", "cell_timeout", "seconds per cell"),
        ("--notebook-timeout", "notebook_timeout", "seconds per notebook"),
        ("--memory", "memory_mb", "address space per kernel, MiB"),
        ("--max-processes", "max_processes", "processes/threads per kernel"),
    ):
        default = getattr(defaults, field_name)
        parser.add_argument(flag, type=int, default=default, help=f"{what} (default {default})")


@dataclass
class SandboxSpec:
    """What the launcher needs to start a kernel: tools, limits and the folders to hide."""

    python: str
    limits: Limits
    sandbox: bool = True
    bwrap: str = ""
    setpriv: str = ""
    hide: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def launcher_config(self) -> dict:
        """The JSON the launcher reads."""
        cfg = asdict(self)
        lim = cfg.pop("limits")
        cfg.update(
            memory_mb=lim["memory_mb"],
            cpu_seconds=lim["cpu_seconds"],
            max_processes=lim["max_processes"],
            # One file can never be larger than the whole quota.
            file_size_mb=min(lim["file_size_mb"], lim["disk_mb"]) or lim["file_size_mb"],
        )
        return cfg


def find_tools() -> tuple[str, str]:
    """Paths of ``bwrap`` and ``setpriv``, or :class:`SandboxUnavailable` saying what is missing."""
    bwrap = shutil.which("bwrap")
    setpriv = shutil.which("setpriv")
    missing = [name for name, path in (("bwrap", bwrap), ("setpriv", setpriv)) if not path]
    if missing:
        raise SandboxUnavailable(
            f"the sandbox needs {' and '.join(missing)} on PATH, which this system lacks. "
            "Install them (Debian/Ubuntu: `apt-get install bubblewrap util-linux`, or "
            "`make system`), or pass --unsafe to run student code with the grader's "
            "full rights (never on submissions you do not trust)."
        )
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the sandbox runs each kernel as its own unprivileged uid, which needs root "
            "(run the grader as root, e.g. in a container), or pass --unsafe."
        )
    assert bwrap and setpriv
    _try_sandbox(bwrap, setpriv)
    return bwrap, setpriv


@functools.lru_cache(maxsize=8)
def _try_sandbox(bwrap: str, setpriv: str) -> None:
    """Run the sandbox's namespaces and uid switch once, with nothing inside.

    A container that forbids them (Docker's and Kubernetes' default profiles do) would
    otherwise fail every kernel, and grade every submission as ``kernel_died``.
    """
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    cmd += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    cmd += ["--unshare-cgroup-try", "--die-with-parent"]
    cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--", setpriv, "--reuid=100000", "--regid=100000", "--clear-groups"]
    cmd += ["--no-new-privs", "--", sys.executable, "-I", "-S", "-c", ""]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(
            f"bwrap could not be run here ({exc}), or pass --unsafe."
        ) from None
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise SandboxUnavailable(
            f"bwrap cannot build the sandbox on this system ({said}). In a container, run "
            "it privileged, or grant CAP_SYS_ADMIN and CAP_NET_ADMIN with unconfined seccomp "
            "and AppArmor profiles (docs/INSTRUCTOR.md, section 3); or pass --unsafe to run "
            "student code with the grader's full rights (never on submissions you do not trust)."
        )


def make_spec(
    limits: Limits, hide: list[Path], unsafe: bool = False, env: dict[str, str] | None = None
) -> SandboxSpec:
    """Build the sandbox description for this grading run.

    Args:
        limits: the resource limits.
        hide: folders the kernel must not see (course, submissions, output, scratch).
        unsafe: run without bubblewrap (limits still apply).
        env: extra environment variables for the kernel.
    """
    python = sys.executable
    spec = SandboxSpec(python=python, limits=limits, sandbox=not unsafe, env=dict(env or {}))
    if unsafe:
        return spec
    spec.bwrap, spec.setpriv = find_tools()
    hidden = {str(Path(p).resolve()) for p in hide}
    home = os.path.expanduser("~")
    hidden |= {p for p in (home, "/root", "/home") if p != "/"}
    spec.hide = sorted(hidden)
    # The interpreter and its packages may live inside a hidden folder (a venv in the
    # course root, pyenv under /root) or under /tmp, which the kernel gets a private,
    # empty copy of (a course cloned into /tmp): bind them back read-only.
    needed = {sys.prefix, sys.base_prefix, str(Path(os.path.realpath(python)).parent.parent)}
    # Graded notebooks import the formula checker (autograder.symbolic): an editable
    # install keeps this package inside the hidden course folder, so bind it back too.
    needed.add(str(Path(__file__).resolve().parent))
    masked = [*spec.hide, PRIVATE_TMP]
    spec.keep = sorted(p for p in needed if any(_under(p, h) for h in masked))
    return spec


def _under(path: str, parent: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), parent]) == parent


def write_kernel_spec(spec: SandboxSpec, where: Path) -> Path:
    """Write the kernel spec (and the launcher's config) under ``where``; return the kernels dir."""
    kernels = where / "kernels"
    kdir = kernels / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    cfg_path = where / "launcher.json"
    cfg_path.write_text(json.dumps(spec.launcher_config(), indent=1))
    kernel_json = {
        "argv": [spec.python, "-I", "-S", str(LAUNCHER), str(cfg_path), "{connection_file}"],
        "display_name": "Python 3 (autograder sandbox)",
        "language": "python",
        # Interrupt by message: SIGINT to the launcher's process group does not reach a
        # kernel behind bwrap's pid namespace monitor.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (kdir / "kernel.json").write_text(json.dumps(kernel_json, indent=1))
    return kernels
