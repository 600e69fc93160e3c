"""nbgrader's Execute preprocessor, run in the sandbox kernel and made robust.

It replaces ``Execute`` in ``Autograde.autograde_preprocessors`` and adds what the
batch needs: a kernel reached over ``ipc`` (the sandbox has no network), a wall-clock
limit per notebook, a cap on the bytes of output kept, and, when the kernel dies or
stops answering, an error output in every cell that did not run, so that an
unexecuted grade cell can never pass. What happened is written to ``events_path``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer, Unicode

from autograder.sandbox import KERNEL_NAME, TMP_SUBDIR

OUTPUT_TYPES = {"stream", "display_data", "execute_result", "update_display_data"}


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


def _content_size(content: dict[str, Any]) -> int:
    if "text" in content:
        return len(content["text"])
    return sum(len(str(v)) for v in content.get("data", {}).values())


MIB = 1024 * 1024
BLOCK = 4096  # every file or folder counts as at least one block: no quota-free inodes


def disk_usage(path: str) -> int:
    """Bytes a folder tree takes (allocated blocks, at least one block per entry; no links followed)."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(st.st_blocks * 512, BLOCK)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


def tasks_of_uid(uid: int) -> int:
    """Processes and threads owned by ``uid`` (what RLIMIT_NPROC counts)."""
    n = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return n


def describe_exit(code: int | None) -> tuple[str, str]:
    """Status and reason for a kernel process that ended with ``code`` (a Popen returncode)."""
    if code is None:
        return "kernel_died", "the kernel stopped responding"
    sig = -code if code < 0 else code - 128 if code > 128 else 0
    if sig == signal.SIGXCPU:
        return "timeout", "the kernel used up its CPU-time limit and was stopped"
    if sig:
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        hint = (
            " (often a failed memory allocation)" if sig in (signal.SIGABRT, signal.SIGSEGV) else ""
        )
        return "kernel_died", f"the kernel was killed by {name}{hint}"
    return "kernel_died", f"the kernel exited with code {code} (os._exit, exit() or a crash)"


class QuickReadyClient(AsyncKernelClient):
    """A kernel client that is ready as soon as the kernel answers, not 0.2 s of silence later.

    jupyter_client's ``wait_for_ready`` ends by reading IOPub until nothing has come for
    0.2 s: a fixed wait per kernel, so per submission. Here the kernel is ready when it has
    answered ``kernel_info`` and IOPub is seen to deliver; what IOPub already holds is
    dropped, and a status message that comes later answers no cell, which nbclient ignores.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # noqa: D102
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.005)
            except Empty:
                return


class SandboxKernelManager(AsyncKernelManager):
    """The kernel manager of a graded kernel, quick to see it gone.

    After a kill, jupyter_client looks every 0.1 s whether the process is gone; a killed
    kernel is gone in milliseconds, so look every 5 ms.
    """

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))


class SandboxedExecute(Execute):
    """Execute a notebook in the autograder's sandbox kernel."""

    kernel_dirs = Unicode("", help="folder holding the sandbox kernel spec").tag(config=True)
    socket_root = Unicode("", help="short folder for the kernel's ipc sockets").tag(config=True)
    events_path = Unicode("", help="JSON file that receives what happened").tag(config=True)
    notebook_timeout = Integer(600, help="wall-clock seconds for a whole notebook").tag(config=True)
    output_limit = Float(4.0, help="MiB of output kept per cell").tag(config=True)
    disk_limit = Integer(
        0, help="MiB the kernel may write in its working folder and /tmp together (0: no cap)"
    ).tag(config=True)
    max_processes = Integer(0, help="the kernel's limit on processes and threads").tag(config=True)
    sandboxed = Bool(True, help="the kernel runs as its own uid (100000 + its pid)").tag(
        config=True
    )
    watch_interval = Float(0.1, help="seconds between two looks at disk and processes").tag(
        config=True
    )

    def create_kernel_manager(self):  # noqa: D102  (nbclient API)
        self.kernel_name = KERNEL_NAME
        ksm = KernelSpecManager(kernel_dirs=[self.kernel_dirs])
        self._sockdir = tempfile.mkdtemp(prefix="k", dir=self.socket_root or None)
        self.km = SandboxKernelManager(
            kernel_name=KERNEL_NAME,
            client_factory=QuickReadyClient,
            kernel_spec_manager=ksm,
            config=self.config,
            transport="ipc",
            ip=os.path.join(self._sockdir, "s"),
        )
        self.km.connection_file = os.path.join(self._sockdir, "kernel.json")
        return self.km

    # -- the notebook --------------------------------------------------------------

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):  # noqa: D102
        self._fatal: dict[str, str] | None = None
        self._expired = False
        self._out_bytes, self._out_cell = 0, -1
        self._events: dict[str, Any] = {"timeouts": [], "truncated": [], "fatal": None}
        self._sockdir = ""
        self._disk_over = 0
        self._t0, self._t_first, self._t_cells = time.monotonic(), 0.0, 0.0
        timer = threading.Timer(self.notebook_timeout, self._expire)
        timer.daemon = True
        timer.start()
        cwd = ((resources or {}).get("metadata") or {}).get("path") or os.getcwd()
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(cwd, stop), daemon=True)
        watcher.start()
        try:
            try:
                super().preprocess(nb, resources, km)
            except Exception as exc:  # noqa: BLE001  (kernel failed to start or vanished)
                if self._fatal is None:
                    self._set_fatal(*self._diagnose(exc), cell="")
                for cell in nb.cells:
                    if cell.cell_type == "code" and not cell.get("outputs"):
                        cell.outputs = [self._not_run()]
            return nb, resources
        finally:
            timer.cancel()
            stop.set()
            watcher.join()
            if self._disk_over and self._fatal is None:
                # Over the quota with its last cell: the grade stands, the status says so.
                self._set_fatal(*self._diagnose(RuntimeError()), cell="")
            self._events["fatal"] = self._fatal
            total = time.monotonic() - self._t0
            start = (self._t_first - self._t0) if self._t_first else total
            self._events["seconds"] = {
                "kernel_start": round(start, 3),
                "cells": round(self._t_cells, 3),
                "kernel_stop": round(max(0.0, total - start - self._t_cells), 3),
            }
            self._write_events(resources)
            if self._sockdir:
                shutil.rmtree(self._sockdir, ignore_errors=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):  # noqa: D102
        if self._fatal is not None:
            if cell.cell_type == "code":
                cell.outputs = [self._not_run()]
            return cell, resources
        t = time.monotonic()
        if not self._t_first:
            self._t_first = t
        try:
            return super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # noqa: BLE001
            status, reason = self._diagnose(exc)
            self._set_fatal(status, reason, cell=_cell_name(cell, index))
            self._kill()
            cell.outputs = list(cell.get("outputs", [])) + [_error("GradingStopped", reason)]
            return cell, resources
        finally:
            self._t_cells += time.monotonic() - t

    # -- hooks into nbclient -------------------------------------------------------

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None):
        index = next((i for i, c in enumerate(self.nb.cells) if c is cell), -1)
        self._events["timeouts"].append(_cell_name(cell, index) if cell is not None else "")
        return await super()._async_handle_timeout(timeout, cell)

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int):
        if msg["msg_type"] in OUTPUT_TYPES:
            if cell_index != self._out_cell:
                self._out_cell, self._out_bytes = cell_index, 0
            self._out_bytes += _content_size(msg.get("content", {}))
            if self._out_bytes > self.output_limit * 1024 * 1024:
                name = _cell_name(cell, cell_index)
                if name not in self._events["truncated"]:
                    self._events["truncated"].append(name)
                    cell.outputs.append(
                        NotebookNode(
                            output_type="stream",
                            name="stderr",
                            text=f"[output truncated by the grader: more than "
                            f"{self.output_limit:g} MiB from this cell]\n",
                        )
                    )
                return None
        return super().process_message(msg, cell, cell_index)

    # -- helpers -------------------------------------------------------------------

    def _pid(self) -> int | None:
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        return proc.pid if proc is not None else None

    def _returncode(self) -> int | None:
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        if proc is None:
            return None
        try:
            return proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            return None

    def _kill(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _watch(self, cwd: str, stop: threading.Event) -> None:
        """Until ``stop``: stop the kernel when it writes more than the quota; count its tasks.

        What the kernel can write is its working copy and its /tmp (the folder ``tmp`` in
        its socket folder): both are summed every ``watch_interval`` seconds, less what the
        working copy held before the kernel started. A single file is capped by
        RLIMIT_FSIZE (never above the quota), so the overshoot is what it can write in one
        interval. The processes and threads of the kernel's uid are counted to tell a
        fork bomb that hit the process limit, even one that hides its errors.
        """
        base = disk_usage(cwd)
        limit = self.disk_limit * MIB
        peak_tasks = 0
        while not stop.wait(self.watch_interval):
            pid = self._pid()
            if pid is None or not self._sockdir:
                continue
            if limit:
                tmp = os.path.join(self._sockdir, TMP_SUBDIR)
                used = disk_usage(cwd) - base + disk_usage(tmp)
                if used > limit and not self._disk_over:
                    self._disk_over = used
                    self._kill()
            if self.sandboxed and self.max_processes:
                peak_tasks = max(peak_tasks, tasks_of_uid(100000 + pid))
                self._events["peak_tasks"] = peak_tasks

    def _expire(self) -> None:
        self._expired = True
        self._kill()

    def _diagnose(self, exc: BaseException) -> tuple[str, str]:
        if self._disk_over:
            return (
                "disk_limit",
                f"the kernel wrote at least {math.floor(self._disk_over / MIB * 10) / 10:.1f} "
                "MiB in its working "
                f"folder and /tmp, over the {self.disk_limit} MiB disk quota, and was stopped",
            )
        if self._expired:
            return (
                "timeout",
                f"the notebook ran longer than {self.notebook_timeout} s and was stopped",
            )
        name = type(exc).__name__
        if name == "CellTimeoutError":
            return (
                "timeout",
                f"a cell ran longer than {self.timeout} s and could not be interrupted",
            )
        if name == "DeadKernelError" or "died" in str(exc):
            return describe_exit(self._returncode())
        return (
            "kernel_died",
            f"the kernel failed: {name}: {str(exc).splitlines()[0] if str(exc) else ''}",
        )

    def _set_fatal(self, status: str, reason: str, cell: str) -> None:
        self._fatal = {"status": status, "reason": reason, "cell": cell}

    def _not_run(self) -> NotebookNode:
        reason = self._fatal["reason"] if self._fatal else "grading stopped"
        return _error("GradingStopped", f"this cell did not run: {reason}")

    def _write_events(self, resources: Any) -> None:
        if not self.events_path:
            return
        key = (resources or {}).get("unique_key", "notebook")
        data: dict[str, Any] = {}
        if os.path.exists(self.events_path):
            with open(self.events_path) as f:
                data = json.load(f)
        data[key] = self._events
        with open(self.events_path, "w") as f:
            json.dump(data, f)


def _cell_name(cell: NotebookNode, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or f"cell {index}"
