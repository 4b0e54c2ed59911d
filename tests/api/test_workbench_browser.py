"""The workbench in a real browser (Debian's headless Chromium via Playwright, live server):
a row's action forms arrive only when the row is opened, under the page's CSP, and act on
the case; at phone width each row is a card. Screenshots of both widths are kept in the
test's tmp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.services import cases
from tests.api.conftest import REPAIR_DATA, LiveDashboard
from tests.browser import DESKTOP, PHONE, csp_reports, new_page, screenshot_on_failure
from tests.conftest import T0
from tests.factories import create_case


def test_a_supervisor_reassigns_from_a_workbench_row_on_desktop_and_phone(
    browser: Any, live: LiveDashboard, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    data = {**REPAIR_DATA, "team": "East", "engineer": "Wang"}
    case_id = create_case(
        live.sessions, "repair_ticket", data, business_key="T-2026-0042", now=T0
    ).case.id

    page = new_page(browser, "en-US", DESKTOP)
    blocked = csp_reports(page)
    with screenshot_on_failure(page, tmp_path / "workbench-failure.png"):
        page.clock.install()  # the page's timers run on a clock the test moves
        live.sign_in(page, then="/dashboard/work?team=East")
        row = page.locator(f'tr[data-case="{case_id}"]')
        expect(row).to_contain_text("T-2026-0042")
        expect(row).to_contain_text("overdue by 4 h 0 min")
        expect(row).to_contain_text("First contact · 500%")  # 5 h of a 1 h promise
        expect(row.locator("form")).to_have_count(0)  # no forms until asked for
        page.screenshot(path=str(tmp_path / "workbench-1366.png"), full_page=True)

        # A case opened meanwhile shows up by itself within a minute.
        later = {**data, "engineer": "Zhao"}
        create_case(live.sessions, "repair_ticket", later, business_key="T-2026-0043", now=T0)
        expect(page.locator("tr[data-case]")).to_have_count(1)
        page.clock.run_for(61_000)
        expect(page.locator("tr[data-case]")).to_have_count(2)

        row.locator("details.row-actions summary").click()
        reassign = row.locator("form.reassign")
        expect(reassign).to_have_count(1)  # fetched by workbench.js
        reassign.locator("input[name=assignee]").fill("Li Wei")
        reassign.locator("input[name=reason]").fill("Wang is on leave")
        reassign.locator("button").click()

        expect(page.locator(".flash.success")).to_contain_text(f"case {case_id}")
        expect(page).to_have_url(f"{live.url}/dashboard/work?team=East")
        expect(page.locator(f'tr[data-case="{case_id}"]')).to_contain_text("Li Wei")

        _at_phone_width(page, case_id, tmp_path)

    assert blocked == []  # the script and its fetch stay within the CSP
    with live.sessions() as session, session.begin():
        last = cases.history(session, case_id)[-1]
    assert (last.event_type, last.payload["to"]) == ("reassigned", "Li Wei")


def _at_phone_width(page: Any, case_id: int, tmp_path: Path) -> None:
    """At 390 px each row is a card as wide as the screen at most, with no header row."""
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    expect(page.locator("table.workbench thead")).to_be_hidden()
    box = page.locator(f'tr[data-case="{case_id}"]').bounding_box()
    assert box is not None and box["width"] <= 390
    page.screenshot(path=str(tmp_path / "workbench-390.png"), full_page=True)
