"""The KPI page in a real browser (Debian's headless Chromium via Playwright, live server):
the team x target summary comes first, a click on a cell opens the workbench on exactly the
cases it counted, under the page's CSP, and at phone width the summary scrolls inside its
card instead of widening the page. Screenshots of both widths are kept in the test's tmp
dir."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.api import test_dashboard_browser as browser_tests
from tests.api.test_dashboard import KPI_CONFIG
from tests.api.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Live
from tests.conftest import T0
from tests.factories import create_ticket, fire

db_url, live = browser_tests.db_url, browser_tests.live


def test_a_supervisor_opens_the_cases_behind_a_teams_missed_target(
    live: Live, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "kpis.yaml").write_text(KPI_CONFIG, "utf-8")  # the live app's KPI_CONFIG
    late = [create_ticket(live.sessions, team="north") for _ in range(2)]
    on_time = create_ticket(live.sessions, team="south")
    fire(live.sessions, on_time, "start", now=T0 + timedelta(hours=1))
    blocked: list[str] = []

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = chromium.new_page(locale="en-US", viewport={"width": 1366, "height": 768})
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{live.url}/dashboard/login?next=/dashboard/kpis%3Fmonth%3D2025-09")
            page.fill("input[name=token]", live.tokens["supervisor"])
            page.click("button[type=submit].primary")
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

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{live.url}/dashboard/kpis?month=2025-09")
            expect(summary).to_be_visible()
            # The KPI cards fit the screen; a wide summary scrolls inside its own box.
            for card in page.locator("main section.card").all():
                box = card.bounding_box()
                assert box is not None and box["x"] + box["width"] <= 390, box
            page.screenshot(path=str(tmp_path / "kpis-390.png"), full_page=True)
        except Exception as exc:
            shot = tmp_path / "kpis-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            exc.add_note(f"The browser's page at the failure: {shot}")
            raise
        finally:
            chromium.close()

    assert blocked == []
