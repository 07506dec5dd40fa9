"""The HTML report in a real browser: headless Chromium (Debian's `chromium`), driven by Playwright.

Playwright speaks the DevTools protocol to the system's Chromium (``executable_path``; no browser
download): console messages and page errors arrive as events, every request can be seen and
refused, and the DOM is queried after layout, so the test reads the drawn bars' widths, not only
the markup. (``chromium --headless --dump-dom`` would give the DOM, but its console messages only
as log lines whose format changes between versions.)

Skips with a message when Playwright or Chromium is missing (``.ci/run`` installs Chromium with
apt-get when it can). The screenshot is kept under ``$SCREENING_TEST_ARTEFACTS`` (default: the
test's tmp_path); its path is printed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from cli_helpers import run
from report_helpers import AS_OF, HOSTILE, HOSTILE_FILE, HOSTILE_PATIENT, HOSTILE_RULES, NCT, ROOT, SAMPLES, TERMINOLOGY


def chromium_path() -> str | None:
    for candidate in (os.environ.get("SCREENING_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: install Debian's `chromium` package (apt-get install -y chromium; "
                    ".ci/run does this when it runs as root) or set SCREENING_CHROMIUM to a Chromium binary")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} does not start under Playwright: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


class Opened:
    """A page opened from disk, with everything it logged, threw, asked for or popped up."""

    def __init__(self, browser, path: Path, media: str = "screen", fragment: str = ""):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900}, java_script_enabled=True)
        self.page = self.context.new_page()
        self.console, self.errors, self.requests, self.dialogs = [], [], [], []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:  # the report must need nothing from any network
                self.requests.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page.emulate_media(media=media)
        self.page.goto(path.as_uri() + (f"#{fragment}" if fragment else ""), wait_until="load")

    def close(self):
        self.context.close()


def artefact_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENING_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_report_renders_with_the_right_bars_and_no_errors(browser, tmp_path):
    html = tmp_path / "report.html"
    proc = run("report", NCT, SAMPLES, "--as-of", AS_OF, "--terminology", TERMINOLOGY, "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    opened = Opened(browser, html)
    page = opened.page
    try:
        assert page.title() == "Screening report"
        counts = page.eval_on_selector_all("b[data-decision]", "els => els.map(e => [e.dataset.decision, e.textContent])")
        assert dict(counts) == {"eligible": "3", "ineligible": "10", "undetermined": "5"}
        # the bars as drawn: key, count, and the width the browser laid out
        bars = page.eval_on_selector_all(
            'svg[data-chart="excluding"] g.bar',
            "els => els.map(e => [e.dataset.key, Number(e.dataset.count), e.querySelector('rect').getBBox().width])")
        assert [(k, n) for k, n, _ in bars] == [("I4", 2), ("E3", 2), ("E4", 2), ("E6", 2), ("AGE", 1), ("I2", 1),
                                                ("I3", 1), ("E2", 1), ("E5", 1), ("E7", 1)]
        widths = {n: {round(w, 1) for k, c, w in bars if c == n} for n in (1, 2)}
        assert len(widths[1]) == len(widths[2]) == 1  # equal counts, equal bars
        assert widths[2].pop() == pytest.approx(2 * widths[1].pop(), abs=0.2)  # drawn to scale
        tooltip = page.text_content('svg[data-chart="excluding"] g.bar[data-key="I4"] > title')
        assert tooltip.endswith("2 of 18 patients (11.1%)")
        top_missing = page.eval_on_selector('svg[data-chart="missing"] g.bar', "e => [e.dataset.key, e.dataset.count]")
        assert top_missing == ["fact:transaminase_rise_due_to_active_lupus", "3"]
        first = page.locator("table.worklist tbody tr").first
        assert first.get_attribute("data-decision") == "eligible"
        assert first.locator("a").inner_text() == "p01 (p01_eligible_female_si_units.json)"
        # the worklist's link leads to the patient's page, which asks the missing question
        page.locator("table.worklist a", has_text="p06 (").click()
        assert page.evaluate("location.hash") == "#" + page.get_attribute("section.patient-page:target", "id")
        assert page.inner_text("section.patient-page:target ul.missing-questions") == \
            "Is the transaminase rise due to active lupus? (investigator)"
        shot = artefact_dir(tmp_path) / "report.png"
        page.goto(html.as_uri())
        page.screenshot(path=str(shot), full_page=False)
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 10_000
        assert opened.errors == [] and [m for m in opened.console if m[0] in ("error", "warning")] == []
        assert opened.requests == []
    finally:
        opened.close()

    # printed: one patient per page, navigation hidden
    printed = Opened(browser, html, media="print")
    try:
        styles = printed.page.eval_on_selector_all(
            "section.patient-page", "els => els.map(e => getComputedStyle(e).breakBefore)")
        assert len(styles) == 18 and set(styles) == {"page"}
        assert printed.page.eval_on_selector("nav", "e => getComputedStyle(e).display") == "none"
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", printed.page.pdf(format="A4")))
        assert pages >= 1 + 18  # the overview, then at least a page per patient
    finally:
        printed.close()

    # opened at a patient's page (from the worklist), printing prints that patient only
    one = Opened(browser, html, media="print", fragment="p4")
    try:
        shown = one.page.eval_on_selector_all(
            "section", "els => els.filter(e => getComputedStyle(e).display != 'none').map(e => e.id)")
        assert shown == ["p4"]
        assert one.page.inner_text("section#p4 h2").startswith("p04 (")  # anchors follow the input order
        alone = len(re.findall(rb"/Type\s*/Page(?!s)", one.page.pdf(format="A4")))
        assert 1 <= alone <= 4 and alone < pages  # that patient's page (its evidence fills 2 or 3 A4 sheets)
    finally:
        one.close()


def test_hostile_text_stays_text_in_the_browser(browser, tmp_path):
    rules = tmp_path / "hostile.crit"
    rules.write_text(HOSTILE_RULES, encoding="utf-8")
    patient = tmp_path / HOSTILE_FILE
    patient.write_text(json.dumps(HOSTILE_PATIENT), encoding="utf-8")
    html = tmp_path / "hostile.html"
    proc = run("report", rules, patient, "--as-of", AS_OF, "--terminology", "none", "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    opened = Opened(browser, html)
    page = opened.page
    try:
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.images.length") == 0
        assert page.evaluate("document.querySelectorAll('marquee, [onerror], [onmouseover]').length") == 0
        assert page.evaluate("document.styleSheets.length") == 1
        text = " ".join(HOSTILE.split())
        assert page.inner_text("section.trial h2").endswith(text)  # the title, shown as written
        assert f"I1 {text}" in page.inner_text('tr[data-criterion="I1"]')
        body = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "system-ui" in body  # the stylesheet was not closed early by "</style>"
        assert opened.dialogs == [] and opened.errors == [] and opened.requests == []
        assert [m for m in opened.console if m[0] == "error"] == []
    finally:
        opened.close()
