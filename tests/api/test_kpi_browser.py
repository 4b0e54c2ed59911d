"""The KPI page in a real browser (Debian's headless Chromium via Playwright, live server):
the team x target summary comes first, a click on a cell opens the workbench on exactly the
cases it counted, under the page's CSP, and at phone width the summary scrolls inside its
card instead of widening the page. Screenshots of both widths are kept in the test's tmp
dir."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.api.conftest import LiveDashboard
from tests.api.test_dashboard import KPI_CONFIG
from tests.browser import DESKTOP, PHONE, csp_reports, new_page, screenshot_on_failure
from tests.conftest import T0
from tests.factories import create_ticket, fire


def test_a_supervisor_opens_the_cases_behind_a_teams_missed_target(
    browser: Any, live: LiveDashboard, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    (tmp_path / "kpis.yaml").write_text(KPI_CONFIG, "utf-8")  # the live app's KPI_CONFIG
    late = [create_ticket(live.sessions, team="north") for _ in range(2)]
    on_time = create_ticket(live.sessions, team="south")
    fire(live.sessions, on_time, "start", now=T0 + timedelta(hours=1))

    page = new_page(browser, "en-US", DESKTOP)
    blocked = csp_reports(page)
    with screenshot_on_failure(page, tmp_path / "kpis-failure.png"):
        live.sign_in(page, then="/dashboard/kpis?month=2025-09")
        summary = page.locator('[data-testid="kpi-summary"]')
        expect(summary).to_contain_text("Targets by Team")
        north = summary.locator('tr[data-group="north"] td[data-kpi="response_timeliness"]')
        expect(north).to_contain_text("0%")
        expect(north).to_contain_text("not met")
        south = summary.locator('tr[data-group="south"] td[data-kpi="response_timeliness"]')
        expect(south).to_contain_text("100%")
        page.screenshot(path=str(tmp_path / "kpis-1366.png"), full_page=True)

        north.locator("a").click()
        expect(page.locator('[data-testid="kpi-drill"]')).to_contain_text(
            "Cases counted in Response timeliness, north, 2025-09"
        )
        rows = page.locator("tr[data-case]")
        expect(rows).to_have_count(2)
        shown = sorted(int(rows.nth(i).get_attribute("data-case") or 0) for i in range(2))
        assert shown == sorted(late)
        page.screenshot(path=str(tmp_path / "kpi-drill-1366.png"), full_page=True)

        page.set_viewport_size(PHONE)
        page.goto(f"{live.url}/dashboard/kpis?month=2025-09")
        expect(summary).to_be_visible()
        # The KPI cards fit the screen; a wide summary scrolls inside its own box.
        for card in page.locator("main section.card").all():
            box = card.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, box
        page.screenshot(path=str(tmp_path / "kpis-390.png"), full_page=True)

    assert blocked == []
