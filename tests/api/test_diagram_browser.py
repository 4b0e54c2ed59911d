"""The overview's diagrams in a real browser at 1366x768 (Debian's headless Chromium via
Playwright, live server), in Chinese and in English: every bundled workflow's diagram fits
the content width, its state titles are inside it and inside the window, and they are drawn
large enough to read, with a link that opens the diagram full size. Issue 17 found the
repair ticket drawn as an empty box at this size: its states were off-screen.

Screenshots of both pages are kept in the test's tmp dir.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import LiveDashboard
from tests.browser import DESKTOP, TIMEOUT_MS, screenshot_on_failure

BUNDLED = (
    "complaint",
    "device",
    "follow_up",
    "loaner",
    "preventive_maintenance",
    "repair_ticket",
    "satisfaction_survey",
    "spare_part",
    "spare_stock",
)
STATE_TITLE_MIN_PX = 12.0  # a state's title as drawn (14 pt at full size, 18.7 px)
TEXT_MIN_PX = 9.0  # any other word of a diagram (10 pt at full size, 13.3 px)

# Per board: the diagram's box, the window's width, and each state title's box and drawn size
# (its font size in the SVG's units times the SVG's scale on the page).
MEASURE = """
(section) => {
  const svg = section.querySelector('.svg-wrap svg');
  const box = svg.getBoundingClientRect();
  const scale = box.width / svg.viewBox.baseVal.width;
  const texts = [...svg.querySelectorAll('text')];
  const size = (t) => parseFloat(t.getAttribute('font-size')) * scale;
  const titles = [...svg.querySelectorAll('g.node')]
    .filter((g) => g.querySelector('title').textContent.indexOf('__') !== 0)
    .map((g) => {
      const first = g.querySelector('text');
      const r = first.getBoundingClientRect();
      return {state: g.querySelector('title').textContent, text: first.textContent,
              left: r.left, right: r.right, px: size(first)};
    });
  const wrap = section.querySelector('.svg-wrap').getBoundingClientRect();
  return {left: box.left, right: box.right, width: box.width, height: box.height,
          wrapRight: wrap.right, window: document.documentElement.clientWidth,
          smallest: Math.min(...texts.map(size)), titles};
}
"""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_bundled_diagram_fits_a_1366_screen_and_stays_legible(
    browser: Any, live: LiveDashboard, tmp_path: Path, lang: str
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US", viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    with screenshot_on_failure(page, tmp_path / f"overview-{lang}-failure.png"):
        live.sign_in(page, then="/dashboard/")  # language: the locale
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh" else "en")
        for name in BUNDLED:
            section = page.locator(f"section#def-{name}")
            if section.locator("details").get_attribute("open") is None:
                section.locator("summary").click()  # a workflow with no open cases is folded
            section.locator(".svg-wrap svg").scroll_into_view_if_needed()
            _check_board(name, section.element_handle().evaluate(MEASURE))
            if name == "repair_ticket":  # the window a supervisor sees, once scrolled there
                page.screenshot(path=str(tmp_path / f"repair_ticket-{lang}-1366x768.png"))
            full = section.locator("a[data-testid=full-size]")
            expect(full).to_have_attribute("target", "_blank")
        page.screenshot(path=str(tmp_path / f"overview-{lang}-1366.png"), full_page=True)

        # The full-size diagram is the same drawing at its natural size.
        href = page.locator("section#def-repair_ticket a[data-testid=full-size]").get_attribute(
            "href"
        )
        alone = context.new_page()  # signed in too: the same context
        response = alone.goto(f"{live.url}{href}")
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        title = "维修中" if lang == "zh" else "Repairing"
        # The state's own title, once (the SLA note may name the state in a clock's span).
        exact = re.compile(rf"^\s*{title}\s*$")
        assert alone.locator("g.node text").filter(has_text=exact).count() == 1
        drawn, natural = alone.evaluate(
            "[document.documentElement.getBoundingClientRect().width,"
            " document.documentElement.width.baseVal.value]"
        )
        assert abs(drawn - natural) < 1, (drawn, natural)  # not scaled down


def _check_board(name: str, measured: dict[str, Any]) -> None:
    where = f"{name}: {measured}"
    assert measured["width"] > 0 and measured["height"] > 0, where
    assert measured["left"] >= 0, where
    assert measured["right"] <= min(measured["window"], measured["wrapRight"]) + 0.5, where
    assert measured["titles"], f"{name}: no state drawn"
    for title in measured["titles"]:
        assert title["text"].strip(), f"{name}: state {title['state']} has no title"
        assert title["left"] >= measured["left"] - 0.5, f"{name}: {title} cut on the left"
        assert title["right"] <= measured["right"] + 0.5, f"{name}: {title} cut on the right"
        assert title["px"] >= STATE_TITLE_MIN_PX, f"{name}: {title} too small to read"
    assert measured["smallest"] >= TEXT_MIN_PX, f"{name}: words drawn too small: {where}"
