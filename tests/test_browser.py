"""The built site, opened in Chromium with the network cut off: math, figures, explorers, no errors."""

from __future__ import annotations

import functools
import http.server
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import jupyterlab_driver as jl  # noqa: E402

# ACTLAB_SITE points the test at another build of the site (default: make book's).
SITE = Path(os.environ.get("ACTLAB_SITE") or ROOT / "_build" / "html")

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
    # the same offline Chromium as the JupyterLab test (one set of launch flags)
    try:
        with jl.chromium() as b:
            yield b
    except RuntimeError as err:  # Chromium missing
        pytest.fail(str(err))


# The page is ready when MathJax has typeset, every embedded widget view is drawn and
# every image is decoded. Waiting on these conditions, not on the network going quiet:
# Playwright's "networkidle" never came on chapter 2's page in one loaded full run
# (300 s), though the page itself had long finished.
# What a page still lacks; it is ready when nothing is.
PENDING = """() => ({
    mathjax: !!(window.MathJax && MathJax.startup && MathJax.startup.promise),
    undrawn_widgets: Array.from(document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]')).filter(s => {
        const area = s.previousElementSibling;
        return !(area && area.classList.contains('widget-subarea') && area.childElementCount); })
        .length,
    undecoded_images: Array.from(document.images).filter(img => !img.complete).length})"""
READY = f"""() => {{ const s = ({PENDING})();
    return s.mathjax && !s.undrawn_widgets && !s.undecoded_images; }}"""


def open_ready(page, url: str) -> None:
    """Load ``url`` and wait until it is typeset, its widgets drawn and its images decoded.

    Generous limits: on a busy 2-core machine a page with many widget frames took more
    than Playwright's default 30 s to settle.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url, wait_until="load", timeout=300_000)
    try:
        page.wait_for_function(READY, timeout=300_000)
    except PlaywrightTimeout:
        state = page.evaluate(PENDING)
        pytest.fail(f"{url} did not settle in 300 s: {state}")
    page.evaluate("() => MathJax.startup.promise")


class PageVisit:
    """A page opened with every non-local request blocked and every error recorded."""

    def __init__(self, browser, url: str, color_scheme: str = "light", width: int = 1200) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme=color_scheme
        )
        self.page = self.context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.errors.append(f"{r.status}: {r.url}")
        )
        open_ready(self.page, url)

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

    def open_page(path: str, width: int = 1200) -> PageVisit:
        v = PageVisit(browser, f"{site_url}/{path}", width=width)
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
    # math: every TeX source typeset by the vendored MathJax (open_ready waited), no error
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


AXE = ROOT / "js" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def settled(v: PageVisit) -> None:
    """Give the page's own accessibility mends, which run after the widgets draw, time to run."""
    v.page.wait_for_timeout(500)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("path", pages())
def test_page_has_no_wcag_a_or_aa_violations(browser, site_url, path: str, scheme: str) -> None:
    """axe-core's WCAG 2.0/2.1 A and AA rules, in light and in dark mode: no violation at all."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make js` installs the pinned site JavaScript")
    v = PageVisit(browser, f"{site_url}/{path}", color_scheme=scheme)
    try:
        settled(v)
        v.page.add_script_tag(content=AXE.read_text())
        result = v.page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
        )
    finally:
        v.close()
    found = [
        f"{rule['id']} ({rule['impact']}) at {node['target']}: {node['html'][:120]}"
        for rule in result["violations"]
        for node in rule["nodes"]
    ]
    assert not found, f"{path} in {scheme} mode has {len(found)} violations:\n" + "\n".join(found)


@pytest.mark.parametrize("path", pages())
def test_every_image_says_what_it_shows_and_math_stays_readable(visit, path: str) -> None:
    v = visit(path)
    settled(v)
    images = v.page.evaluate(
        """() => Array.from(document.querySelectorAll('main img')).map(img => ({
                 src: img.src.slice(0, 60), alt: img.getAttribute('alt') || ''}))"""
    )
    bad = [
        img
        for img in images
        if len(img["alt"].split()) < 4
        or "<Figure size" in img["alt"]
        or any(img["alt"].strip().lower().endswith(ext) for ext in (".png", ".svg", ".jpg"))
    ]
    assert not bad, f"images without a description on {path}: {bad}"
    # MathJax keeps an accessible (MathML) copy of every equation for assistive technology
    counts = v.page.evaluate(
        """() => [document.querySelectorAll('mjx-container').length,
                  document.querySelectorAll('mjx-container mjx-assistive-mml math').length]"""
    )
    assert counts[0] > 0 and counts[0] == counts[1], f"typeset vs accessible math: {counts}"


def test_an_explorer_is_operated_by_keyboard_alone(visit) -> None:
    """Tab to chapter 1's explorer controls, change them with the arrow keys, hear the change."""
    v = visit("book/ch01_linear_collapse.html")
    settled(v)
    page = v.page
    explorer = page.locator(".actlab-static").first
    region = explorer.locator(".actlab-frame-text")
    handle = explorer.locator(".noUi-handle").first
    label_id = handle.get_attribute("aria-labelledby")
    assert label_id, "the slider handle is named by its visible label"
    assert page.locator(f"#{label_id}").inner_text().strip() == "hidden layers"
    # reach the slider with Tab alone
    page.locator("body").focus()
    for _ in range(400):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('noUi-handle')"):
            break
    else:
        pytest.fail("Tab never reached the explorer's slider")
    first, said = visible_frame(explorer), region.inner_text()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert visible_frame(explorer) != first, "the arrow key did not change the frame"
    assert region.inner_text() != said, "the live region did not announce the new frame"
    assert region.get_attribute("aria-live") == "polite"
    assert handle.get_attribute("aria-valuetext") == "2", "the slider announces the value shown"
    # Tab on to the activation buttons and move between them with the arrow keys
    on_button = "() => document.activeElement.classList.contains('widget-toggle-button')"
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate(on_button):
            break
    else:
        where = page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
        pytest.fail(f"Tab did not reach the activation buttons after the slider; focus on {where}")
    before = visible_frame(explorer)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert visible_frame(explorer) != before, "an arrow key did not move the activation buttons"
    assert page.evaluate("() => document.activeElement.classList.contains('mod-active')")
    assert not v.errors, f"console errors: {v.errors}"


# --- figures a reader can read; prose that does not read as a template --------------------

# Every course figure and the explorer frame on show: whether it sits in a numbered figure
# with a caption, and how tall its smallest text is on screen. The image carries its smallest
# text in its own pixels (data-font-px, from the figure's font sizes); on screen that is
# scaled by the displayed over the natural width.
FIGURE_TEXT = """() => Array.from(document.querySelectorAll('main img.actlab-figure-img, main img.actlab-frame'))
    .filter(img => img.getBoundingClientRect().width > 0)
    .map(img => {
        const fig = img.closest('figure');
        const cap = fig && fig.querySelector('figcaption');
        return {frame: img.classList.contains('actlab-frame'),
                caption: cap ? cap.innerText.trim().slice(0, 60) : null,
                natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
                font: parseFloat(img.dataset.fontPx || 'NaN'),
                alt: (img.getAttribute('alt') || '').slice(0, 50)}; })"""


@pytest.mark.parametrize("path", pages())
def test_figures_have_numbered_captions_and_text_of_at_least_10_px(visit, path: str) -> None:
    v = visit(path, width=1280)
    settled(v)
    found = v.page.evaluate(FIGURE_TEXT)
    problems = []
    for img in found:
        # chapter N's figures are "Figure N.M"; the introduction, the book's unnumbered
        # root page, numbers its own as "Figure M"
        if not img["frame"] and not re.match(r"Figure \d+(\.\d+)? \S", img["caption"] or ""):
            problems.append(f"no numbered caption: {img['alt']!r} (caption {img['caption']!r})")
        text_px = img["font"] * img["shown"] / img["natural"]
        if not text_px >= 10:
            problems.append(
                f"smallest text {text_px:.1f} CSS px ({img['natural']} px shown at "
                f"{img['shown']:.0f}): {img['alt']!r}"
            )
    assert not problems, f"{path}:\n" + "\n".join(problems)
    # an explorer's description is read by screen readers and not drawn on the page
    regions = v.page.evaluate(
        """() => Array.from(document.querySelectorAll('main .actlab-frame-text')).map(p => {
               const r = p.getBoundingClientRect();
               return [r.width, r.height, p.textContent.trim().length]; })"""
    )
    assert all(w <= 1 and h <= 1 and n > 20 for w, h, n in regions), regions


# What a reader sees, less code, inline code, code output, math and closed <details>
# (innerText leaves out what is not rendered); with_output keeps the cells' output.
VISIBLE_TEXT = """(withOutput) => {
    const main = document.querySelector('main');
    const hide = withOutput ? '.cell_input, mjx-container'
                            : '.cell_input, mjx-container, pre, code, .output.stream';
    const hidden = Array.from(main.querySelectorAll(hide));
    const saved = hidden.map(el => el.style.display);
    hidden.forEach(el => { el.style.display = 'none'; });
    const text = main.innerText;
    hidden.forEach((el, i) => { el.style.display = saved[i]; });
    return text; }"""

PROSE_PATTERNS = {
    # within a line of prose (table cells are tab-separated and may repeat)
    "a doubled word": re.compile(r"\b([A-Za-z]{2,}) +\1\b", re.I),
    "'0 of N'": re.compile(r"\b0 of \d+\b"),
    "'N of N'": re.compile(r"\b(\d+) of \1\b"),
    "a negative zero": re.compile(r"(?<![\w.])[-−]0(?:[.,]0+)?(?![.\d])"),
    "a raw snake_case key": re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b"),
}
OUTPUT_PATTERNS = {
    "a negative zero": PROSE_PATTERNS["a negative zero"],
    "build chatter": re.compile(
        r"running on (?:cpu|cuda|mps)|frames? (?:(?:computed|trained) and )?drawn in"
        r"|executed on|networks?,? .{0,40}\bin \d+(?:\.\d+)? s\b",
        re.I,
    ),
}


def template_phrases(text: str, patterns: dict[str, re.Pattern]) -> list[str]:
    out = []
    for what, pattern in patterns.items():
        for m in pattern.finditer(text):
            out.append(f"{what}: ...{text[max(0, m.start() - 40) : m.end() + 30]!r}...")
    return out


def test_the_prose_scan_catches_what_it_looks_for() -> None:
    bad = (
        "(0 of 5 seeds diverged and are left out) with 5 of 5 seeds, hinges at -1, -0, 1 "
        "and the the slope; leaky_relu wins"
    )
    found = " ".join(template_phrases(bad, PROSE_PATTERNS))
    for what in ("doubled word", "'0 of N'", "'N of N'", "negative zero", "snake_case"):
        assert what in found, what
    fine = "−0.5, 2.5e−09, 3 of 5 seeds and 10 of 100\nReLU\trelu\tdiverged\tdiverged"
    assert not template_phrases(fine.replace("relu", "ReLU"), PROSE_PATTERNS)
    chatter = (
        "running on cpu (2 threads)\n18 frames drawn in 1.7 s\n40 networks, 30 epochs, in 3.1 s"
    )
    assert len(template_phrases(chatter, OUTPUT_PATTERNS)) == 3


@pytest.mark.parametrize("path", pages())
def test_visible_text_reads_as_prose_not_a_template(visit, path: str) -> None:
    v = visit(path, width=1280)
    settled(v)
    found = template_phrases(v.page.evaluate(VISIBLE_TEXT, False), PROSE_PATTERNS)
    found += template_phrases(v.page.evaluate(VISIBLE_TEXT, True), OUTPUT_PATTERNS)
    assert not found, f"{path}:\n" + "\n".join(found)
