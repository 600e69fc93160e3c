"""Drive the course in a real JupyterLab: a private server, Chromium through Playwright.

Used by ``tests/test_lab.py`` (the students' and readers' path) and by
``benchmarks/bench_explorer_latency.py`` (how fast a live explorer answers).

* :func:`course_copy` copies the course's notebooks and configuration into a
  temporary folder (the server writes checkpoints and saves notebooks there).
* :class:`LabServer` starts ``jupyter lab`` on a free 127.0.0.1 port with a
  random token, with its own configuration, settings, workspace and runtime
  folders, and stops its whole process group (and every kernel it started) at
  the end.
* :class:`Lab` is one browser page on that server: open a document with a
  given factory, Run All, read the cells' outputs from the notebook model,
  move an explorer's controls and time how long the new frame takes to appear.

Only 127.0.0.1 is reachable from the page: every other request is blocked and
recorded.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# What a student or reader gets in a clone: the graded notebooks, the chapters,
# the configuration the notebooks and nbgrader read. (The library is installed.)
COURSE_PARTS = ("solutions", "exercises", "book", "nbgrader_config.py", "_config.yml")


def course_copy(dest: Path) -> Path:
    """Copy the course's notebooks and configuration to ``dest`` (created)."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    for part in COURSE_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 with a random token, in its own session."""

    def __init__(self, root: Path, state: Path, start_timeout: float = 120.0) -> None:
        self.root = Path(root)
        self.state = Path(state)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.state / "jupyter-lab.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        for var, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("IPYTHONDIR", "ipython"),
            ("MPLCONFIGDIR", "matplotlib"),
        ):
            path = self.state / sub
            path.mkdir(parents=True, exist_ok=True)
            env[var] = str(path)
        env.pop("ACTLAB_STATIC", None)  # the live explorers, as in a reader's Jupyter
        env.pop("NBGRADER_EXECUTION", None)
        # a reader's kernel draws inline; an Agg backend inherited from the test process
        # (the autograder sets one for its kernels) would make plt.show() draw nothing
        env.pop("MPLBACKEND", None)
        return env

    def start(self) -> LabServer:
        self.state.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(BIN / "jupyter-lab"),
            "--no-browser",
            f"--port={self.port}",
            "--port-retries=0",
            "--ip=127.0.0.1",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
            cmd.append("--allow-root")
        atexit.register(self.stop)  # also when a run is cut short
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,  # nbgrader's validate handler reads nbgrader_config.py from here
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=5
                ) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer in {self.start_timeout:.0f} s")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _kernel_pids(self) -> list[int]:
        """Processes started with a connection file in this server's private runtime folder."""
        marker = str(self.state / "runtime")
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.proc is None:
            return
        kernels = self._kernel_pids()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the server shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for pid in kernels:  # kernels run in sessions of their own: end any left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is missing: `make system` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


# In-page helpers: the notebook panel's model is the truth about cells and outputs.
_JS_HELPERS = r"""
window.__lab = {
  panel(path) {
    const app = window.jupyterapp;
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.context.path === path) return w;
    }
    return null;
  },
  state(path) {
    const p = this.panel(path);
    if (!p || !p.content || !p.content.model) return null;
    const kernel = p.sessionContext.session && p.sessionContext.session.kernel;
    const cells = [];
    const model = p.content.model;
    for (let i = 0; i < model.cells.length; i++) {
      const c = model.cells.get(i);
      if (c.type !== 'code') continue;
      const outputs = c.outputs ? c.outputs.toJSON() : [];
      cells.push({
        index: i,
        count: c.executionCount,
        errors: outputs.filter(o => o.output_type === 'error')
                       .map(o => o.ename + ': ' + o.evalue),
        source: c.sharedModel.getSource().slice(0, 120),
      });
    }
    return {status: kernel ? kernel.status : 'none', cells};
  },
};
"""


class Lab:
    """One Chromium page on a :class:`LabServer`, blocking every non-local request."""

    def __init__(self, browser, server: LabServer, width: int = 1400, height: int = 1000) -> None:
        self.server = server
        self.blocked: list[str] = []
        self.page_errors: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.goto(f"{server.url}/lab?token={server.token}", timeout=120_000)
        self.page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.started", timeout=120_000
        )
        self.page.evaluate("() => window.jupyterapp.started")
        self.page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        self.page.evaluate(_JS_HELPERS)

    def _route(self, route) -> None:
        if route.request.url.startswith(self.server.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()

    # documents
    def open(self, path: str, factory: str = "Notebook", timeout: float = 120.0) -> None:
        """Open ``path`` with a document factory and wait for its kernel to be idle."""
        self.page.evaluate(
            "([path, factory]) => { window.jupyterapp.commands.execute("
            "'docmanager:open', {path, factory}); }",
            [path, factory],
        )
        self.page.wait_for_function(
            """path => { const p = window.__lab.panel(path);
                return p && p.context.isReady && p.sessionContext.session &&
                       p.sessionContext.session.kernel &&
                       p.sessionContext.session.kernel.status === 'idle'; }""",
            arg=path,
            timeout=timeout * 1000,
        )

    def activate(self, path: str) -> None:
        self.page.evaluate(
            "path => window.jupyterapp.shell.activateById(window.__lab.panel(path).id)", path
        )

    def run_all(self, path: str, timeout: float = 300.0) -> dict:
        """Run All on the document's notebook; return its cells' final state."""
        self.activate(path)
        # (commands answer with promises that may wait on a dialog: never await them)
        self.page.evaluate(
            "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
        )
        # every code cell gets a count (or the run stops at an error), kernel idle again
        self.page.wait_for_function(
            """path => { const s = window.__lab.state(path);
                if (!s || s.status !== 'idle') return false;
                const errored = s.cells.some(c => c.errors.length);
                return errored || s.cells.every(c => c.count !== null); }""",
            arg=path,
            timeout=timeout * 1000,
            polling=250,
        )
        return self.page.evaluate("path => window.__lab.state(path)", path)

    def close_document(self, path: str) -> None:
        """Close the tab and shut its kernel down."""
        self.activate(path)
        self.page.evaluate(
            "() => { window.jupyterapp.commands.execute('notebook:close-and-shutdown'); }"
        )
        # JupyterLab asks to confirm the shutdown: accept, as a user would
        deadline = time.monotonic() + 60
        while self.page.evaluate("path => window.__lab.panel(path) !== null", path):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not close")
            ok = self.page.locator(".jp-Dialog .jp-mod-accept")
            if ok.count():
                ok.first.click()
            self.page.wait_for_timeout(100)

    def panel(self, path: str):
        """The notebook panel's DOM node, for locators."""
        pid = self.page.evaluate("path => window.__lab.panel(path).id", path)
        return self.page.locator(f"[id='{pid}']")


# --- explorers in a notebook's outputs ----------------------------------------------

# A live actlab explorer (``Explorer.live()``) or an ``ipywidgets.interact`` form.
EXPLORER = ".actlab-live, .widget-interact"

# The images an explorer shows now: those with no hidden (display: none) ancestor. A
# view whose frames are all drawn swaps them by showing another child of a stack of
# frames; otherwise the kernel replaces the image. One predicate for every check here.
_JS_SHOWN = """el => Array.from(el.querySelectorAll('img'))
  .filter(i => i.isConnected && i.offsetParent !== null && i.src)"""

_JS_LATENCY = r"""
window.__lat = {
  arm(el) {
    const rec = {t0: null, t1: null, pending: false};
    const shown = () => (SHOWN)(el);
    const before = new Set(shown().map(i => i.src));
    const started = () => { if (rec.t0 === null) rec.t0 = performance.now(); };
    const types = ['keydown', 'click', 'input', 'change'];
    for (const t of types) el.addEventListener(t, started, true);
    const obs = new MutationObserver(() => {
      if (rec.t0 === null || rec.pending) return;
      const fresh = shown().find(i => !before.has(i.src));
      if (!fresh) return;
      rec.pending = true;
      obs.disconnect();
      fresh.decode().catch(() => null).then(
        () => requestAnimationFrame(() => { rec.t1 = performance.now(); }));
    });
    obs.observe(el, {subtree: true, childList: true, attributes: true,
                     attributeFilter: ['src', 'class', 'style']});
    rec.cleanup = () => { obs.disconnect(); for (const t of types) el.removeEventListener(t, started, true); };
    if (window.__lat.current) window.__lat.current.cleanup();
    window.__lat.current = rec;
  },
};
""".replace("SHOWN", _JS_SHOWN)


def shown_frame(explorer) -> str:
    """The src of the image the explorer shows now (its last shown ``<img>``)."""
    srcs = explorer.evaluate(f"el => ({_JS_SHOWN})(el).map(i => i.src)")
    return srcs[-1] if srcs else ""


def controls(explorer) -> list[tuple[str, object]]:
    """The explorer's controls, each as (kind, locator): slider, buttons or dropdown."""
    found: list[tuple[str, object]] = []
    sliders = explorer.locator(".noUi-handle")
    for i in range(sliders.count()):
        found.append(("slider", sliders.nth(i)))
    groups = explorer.locator(".widget-toggle-buttons")
    for i in range(groups.count()):
        found.append(("buttons", groups.nth(i)))
    selects = explorer.locator("select")
    for i in range(selects.count()):
        found.append(("dropdown", selects.nth(i)))
    return found


def change(page, kind: str, control) -> None:
    """Move one control one step, as a reader would (keyboard, click, pick)."""
    if kind == "slider":
        control.focus()
        before = control.get_attribute("aria-valuenow")
        last = control.get_attribute("aria-valuemax")
        page.keyboard.press("ArrowLeft" if before == last else "ArrowRight")
    elif kind == "buttons":
        control.locator(".widget-toggle-button:not(.mod-active)").first.click()
    else:
        n = control.locator("option").count()
        now = control.evaluate("el => el.selectedIndex")
        control.select_option(index=(now + 1) % n)


def wait_for_new_frame(page, explorer, old: str, timeout: float) -> str:
    handle = explorer.element_handle()
    page.wait_for_function(
        f"([el, old]) => ({_JS_SHOWN})(el).some(i => i.src !== old)",
        arg=[handle, old],
        timeout=timeout * 1000,
        polling=50,
    )
    return shown_frame(explorer)


def timed_change(page, explorer, kind: str, control, timeout: float) -> float:
    """Milliseconds from the control's input event to the new frame decoded and painted."""
    if not page.evaluate("() => !!window.__lat"):
        page.evaluate(_JS_LATENCY)
    page.evaluate("el => window.__lat.arm(el)", explorer.element_handle())
    change(page, kind, control)
    page.wait_for_function(
        "() => window.__lat.current.t1 !== null", timeout=timeout * 1000, polling="raf"
    )
    t0, t1 = page.evaluate("() => [window.__lat.current.t0, window.__lat.current.t1]")
    page.evaluate("() => window.__lat.current.cleanup()")
    return t1 - t0
