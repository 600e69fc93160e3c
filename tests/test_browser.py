"""The built site, opened in Chromium with the network cut off: math, figures, explorers, no errors."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

SITE = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.xdist_group("browser")]


def pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [f"{Path(f).with_suffix('')}.html" for f in files]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    if not (SITE / "index.html").exists():
        pytest.fail("_build/html is missing: run `make book` first (make test does)")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make system` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(
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
        yield b
        b.close()


class PageVisit:
    """A page opened with every non-local request blocked and every error recorded."""

    def __init__(self, browser, url: str) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.errors.append(f"{r.status}: {r.url}")
        )
        # Generous limits: on a busy 2-core machine a page with many widget frames took
        # more than Playwright's default 30 s to go quiet.
        self.page.goto(url, wait_until="load", timeout=120_000)
        self.page.wait_for_load_state("networkidle", timeout=120_000)

    def _route(self, route) -> None:
        if route.request.url.startswith("http://127.0.0.1"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, site_url):
    visits: list[PageVisit] = []

    def open_page(path: str) -> PageVisit:
        v = PageVisit(browser, f"{site_url}/{path}")
        visits.append(v)
        return v

    yield open_page
    for v in visits:
        v.close()


def visible_frame(explorer) -> str:
    """The src of the explorer's frame the reader can see (exactly one must be visible)."""
    srcs = explorer.evaluate(
        """el => Array.from(el.querySelectorAll('img'))
                 .filter(img => img.offsetParent !== null && img.getBoundingClientRect().height > 0)
                 .map(img => img.src)"""
    )
    assert len(srcs) == 1, f"expected one visible frame, found {len(srcs)}"
    return srcs[0]


@pytest.mark.parametrize("path", pages())
def test_page_renders_offline(visit, path: str) -> None:
    v = visit(path)
    page = v.page
    assert not v.blocked, f"the page asked for remote resources: {v.blocked}"
    # math: every TeX source typeset by the vendored MathJax, no MathJax error
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000
    )
    page.evaluate("() => MathJax.startup.promise")
    assert page.locator("mjx-container").count() > 0, "no typeset math on the page"
    assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    # figures: every image decoded
    broken = page.evaluate(
        """() => Array.from(document.images)
                 .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src)"""
    )
    assert not broken, f"images that did not load: {broken}"
    assert not v.errors, f"console errors: {v.errors}"


@pytest.mark.parametrize("path", [p for p in pages() if "/ch" in p])
def test_static_explorers_respond_to_their_controls(visit, path: str) -> None:
    v = visit(path)
    page = v.page
    page.wait_for_selector(".actlab-static", timeout=20_000)
    explorers = page.locator(".actlab-static")
    assert explorers.count() >= 1, "every chapter has an explorer"
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        first = visible_frame(explorer)
        sliders = explorer.locator(".noUi-handle")
        buttons = explorer.locator(".widget-toggle-button")
        selects = explorer.locator("select")
        if sliders.count():
            handle = sliders.first
            handle.focus()
            before = handle.get_attribute("aria-valuenow")
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(200)
            if handle.get_attribute("aria-valuenow") == before:  # at its last value: go left
                page.keyboard.press("ArrowLeft")
                page.wait_for_timeout(200)
            assert handle.get_attribute("aria-valuenow") != before, "the slider did not move"
            second = visible_frame(explorer)
            assert second != first, "moving the slider did not change the frame"
            first = second
        if buttons.count() > 1:
            # the first button of the first group that is not the selected one
            explorer.locator(".widget-toggle-buttons").first.locator(
                ".widget-toggle-button:not(.mod-active)"
            ).first.click()
            page.wait_for_timeout(200)
            assert visible_frame(explorer) != first, "pressing a button did not change the frame"
        elif selects.count():
            options = selects.first.locator("option")
            selects.first.select_option(index=min(1, options.count() - 1))
            page.wait_for_timeout(200)
            assert visible_frame(explorer) != first, "choosing an option did not change the frame"
    assert not v.errors, f"console errors: {v.errors}"


CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "mathjax.org", "polyfill.io")


def test_no_page_loads_scripts_from_a_cdn() -> None:
    """Every built page refers to the vendored MathJax, RequireJS and widget manager only."""
    if not (SITE / "index.html").exists():
        pytest.fail("_build/html is missing: run `make book` first (make test does)")
    offenders = {}
    for html in SITE.rglob("*.html"):
        text = html.read_text(errors="replace")
        hits = [host for host in CDN_HOSTS if host in text]
        if hits:
            offenders[str(html.relative_to(SITE))] = hits
    assert not offenders, f"pages referring to CDNs: {offenders}"
    chapter = (SITE / pages()[1]).read_text()
    assert "assets/mathjax/tex-mml-chtml.js" in chapter
    assert "assets/html-manager/embed-amd.js" in chapter
