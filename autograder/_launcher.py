"""Start one student kernel inside the sandbox (the kernel spec's argv runs this file).

Run as ``python -I -S _launcher.py CONFIG.json CONNECTION_FILE [kernel args...]`` from
the notebook's working copy (nbgrader starts kernels there). Standard library only:
it runs before anything of the grader is importable. It sets the resource limits,
hands the working copy and the socket folder to an unprivileged uid, and replaces
itself with ``bwrap … setpriv … python -c KERNEL_MAIN`` (ipykernel's launcher without the
debugger).
"""

from __future__ import annotations

import json
import os
import resource
import sys

# What ``python -m ipykernel_launcher`` runs, less the debugger: ipykernel imports debugpy
# when it can (about 0.1 s of CPU in every kernel's start on the course's machine), and nobody debugs a
# kernel under grading. It is blocked only while ipykernel looks for it: student code
# that imports debugpy itself still can.
KERNEL_MAIN = """\
import sys
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]  # the working copy goes back on the path when the kernel starts
sys.modules["debugpy"] = None
import ipykernel.debugger
del sys.modules["debugpy"]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


def _chown_tree(path: str, uid: int) -> None:
    os.chown(path, uid, uid, follow_symlinks=False)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def _limits(cfg: dict) -> None:
    mb = 1024 * 1024
    if cfg.get("memory_mb"):
        size = int(cfg["memory_mb"]) * mb
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if cfg.get("cpu_seconds"):
        soft = int(cfg["cpu_seconds"])
        # SIGXCPU at the soft limit (the kernel dies with it), SIGKILL a little later.
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
    if cfg.get("max_processes"):
        n = int(cfg["max_processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
    if cfg.get("file_size_mb"):
        size = int(cfg["file_size_mb"]) * mb
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    cfg_path, connection_file, *kernel_args = argv
    with open(cfg_path) as f:
        cfg = json.load(f)
    cwd = os.getcwd()
    sockdir = os.path.dirname(os.path.abspath(connection_file))
    kernel = [cfg["python"], "-c", KERNEL_MAIN, "-f", connection_file, *kernel_args]
    env = {
        "PATH": os.path.dirname(cfg["python"]) + ":/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "NBGRADER_EXECUTION": "autograde",
        "PYTHONNOUSERSITE": "1",
        "JPY_PARENT_PID": "1",
        **cfg.get("env", {}),
    }
    # The kernel's /tmp: a folder on disk inside its socket folder, which the grader
    # measures with the working copy against the disk quota and deletes afterwards.
    tmpdir = os.path.join(sockdir, "tmp")
    os.makedirs(tmpdir, mode=0o700, exist_ok=True)
    if not cfg.get("sandbox", True):
        # --unsafe: limits only, the kernel keeps the grader's rights.
        env.update(IPYTHONDIR=os.path.join(sockdir, "ipython"), MPLCONFIGDIR=sockdir, HOME=sockdir)
        env.update(TMPDIR=tmpdir)
        env.pop("JPY_PARENT_PID")
        _limits(cfg)
        os.execve(kernel[0], kernel, env)

    # A uid of its own per kernel (this process's pid stays the kernel's, through bwrap):
    # RLIMIT_NPROC counts per uid, so concurrent kernels never share one budget, the
    # grader can count the kernel's processes by uid, and the kernel owns nothing outside.
    uid = 100000 + os.getpid()
    _chown_tree(cwd, uid)
    _chown_tree(sockdir, uid)
    env.update(HOME="/tmp", IPYTHONDIR="/tmp/.ipython", MPLCONFIGDIR="/tmp/.mpl")

    args = [cfg["bwrap"], "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Not a tmpfs: what a kernel writes there would sit in the machine's memory.
    args += ["--bind", tmpdir, "/tmp"]
    for path in cfg.get("hide", []):
        if os.path.isdir(path):
            args += ["--tmpfs", path]
    tmpfs = ["/tmp"] + [p for p in cfg.get("hide", []) if os.path.isdir(p)]
    made: set[str] = set()

    def parents(dest: str) -> list[str]:
        # bwrap creates missing mount points 0700 (root's): make them traversable.
        out, cur = [], os.path.dirname(dest)
        while cur not in ("/", ""):
            if cur not in made and any(cur.startswith(t + "/") for t in tmpfs):
                out.insert(0, cur)
                made.add(cur)
            cur = os.path.dirname(cur)
        return [x for d in out for x in ("--perms", "0755", "--dir", d)]

    for path in cfg.get("keep", []):
        if os.path.exists(path):
            args += parents(path) + ["--ro-bind", path, path]
    for path in (cwd, sockdir):
        args += parents(path) + ["--bind", path, path]
    # The notebook under grading (with its hidden tests) stays out of the kernel's reach.
    for name in sorted(os.listdir(cwd)):
        if name.endswith(".ipynb"):
            args += ["--ro-bind", "/dev/null", os.path.join(cwd, name)]
    args += ["--chdir", cwd, "--unshare-net", "--unshare-pid", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--die-with-parent"]
    args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--", cfg["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    args += ["--no-new-privs", "--", *kernel]
    _limits(cfg)
    os.execv(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
