"""The stuck list in a real browser (Debian's headless Chromium via Playwright, live server):
a finding carries no forms until its "Act on it" is opened; then the forms arrive under the
page's CSP, the finding's own retry first, and retrying there acts on the case and comes back
to the same list. In Chinese the finding's detail is Chinese. Screenshots are kept in the
test's tmp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.services import cases
from tests.api.conftest import LiveDashboard
from tests.browser import DESKTOP, csp_reports, new_page, screenshot_on_failure
from tests.factories import ticket_with_failed_reminder


def test_a_supervisor_retries_a_failed_timer_from_forms_loaded_on_demand(
    browser: Any, live: LiveDashboard, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    case_id, timer_id = ticket_with_failed_reminder(live.sessions)
    reason = "guard data fixed by the hotline"
    fetched: list[str] = []

    page = new_page(browser, "zh-CN", DESKTOP)
    blocked = csp_reports(page)
    page.on("request", lambda r: fetched.append(r.url) if "/actions" in r.url else None)
    with screenshot_on_failure(page, tmp_path / "stuck-failure.png"):
        stuck = "/dashboard/stuck?reason=timer_failed"
        live.sign_in(page, then=stuck)
        expect(page).to_have_url(f"{live.url}{stuck}")
        finding = page.locator(f'tr[data-case="{case_id}"][data-reason="timer_failed"]')
        expect(finding).to_contain_text(
            f"定时器 {timer_id} remind 触发失败（第 1 次尝试），不再自动重试：本工单不允许提醒。"
        )
        expect(finding.locator("form")).to_have_count(0)  # no forms until asked for
        assert fetched == []
        page.screenshot(path=str(tmp_path / "stuck-1366.png"), full_page=True)

        finding.locator("details.row-actions summary").click()
        retry = finding.locator("form.retry")
        expect(retry).to_have_count(1)  # fetched by the page's script
        assert len(fetched) == 1 and f"timer={timer_id}" in fetched[0]
        expect(finding.locator("form.action").first).to_have_class("action retry")
        retry.locator("input[name=reason]").fill(reason)
        retry.locator("button").click()

        expect(page.locator(".flash.success")).to_contain_text(str(case_id))
        expect(page).to_have_url(f"{live.url}{stuck}")
        expect(page.locator(f'tr[data-case="{case_id}"]')).to_have_count(0)  # resolved

    assert blocked == []  # the script and its fetch stay within the CSP
    with live.sessions() as session, session.begin():
        last = cases.history(session, case_id)[-1]
    assert (last.event_type, last.actor) == ("timer_retried", "token:morning-supervisor")
    assert last.payload == {"timer_id": timer_id, "reason": reason}


def test_the_stuck_list_refreshes_itself_unless_a_finding_is_open(
    browser: Any, live: LiveDashboard
) -> None:
    """The page reloads each minute (the browser's clock is faked and skipped, not slept), but
    not while the supervisor has a finding's actions open."""
    from playwright.sync_api import expect

    case_id, _ = ticket_with_failed_reminder(live.sessions)
    loads: list[str] = []
    page = new_page(browser, "en-US", DESKTOP)
    live.sign_in(page)
    page.clock.install()
    page.on("load", lambda _: loads.append(page.url))
    page.goto(f"{live.url}/dashboard/stuck")
    finding = page.locator(f'tr[data-case="{case_id}"]').first
    expect(finding).to_be_visible()
    before = len(loads)
    page.clock.run_for(61_000)
    page.wait_for_load_state()
    expect(page.locator(f'tr[data-case="{case_id}"]').first).to_be_visible()
    assert len(loads) == before + 1  # reloaded once

    failed = page.locator(f'tr[data-case="{case_id}"][data-reason="timer_failed"]')
    failed.locator("details.row-actions summary").click()
    expect(failed.locator("form.retry")).to_have_count(1)
    page.clock.run_for(181_000)
    assert len(loads) == before + 1  # busy: the open finding stays
