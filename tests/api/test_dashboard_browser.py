"""A supervisor's morning in a real browser: headless Chromium (Debian's, driven by
Playwright) against the app on a live server.

Sign in with a supervisor token, open the stuck list, open the case whose timer failed, retry
that timer with a reason, and see the case history gain ``timer_retried`` with that reason.
The failed timer is made as a worker would make it: the reminder is fired when due, its guard
refuses, and the failure is recorded (engine.services.timer_firing).

On failure a screenshot of the page is saved in the test's tmp dir (its path is in the
message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.services import cases
from tests.api.conftest import LiveDashboard
from tests.browser import new_page, screenshot_on_failure
from tests.factories import ticket_with_failed_reminder


def test_a_supervisor_retries_a_failed_timer_from_the_stuck_list(
    browser: Any, live: LiveDashboard, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    case_id, timer_id = ticket_with_failed_reminder(live.sessions)
    reason = "guard data fixed by the hotline"

    page = new_page(browser, "en-US", {"width": 1400, "height": 900})
    with screenshot_on_failure(page, tmp_path / "dashboard-failure.png"):
        page.goto(f"{live.url}/dashboard/")
        expect(page).to_have_url(f"{live.url}/dashboard/login?next=/dashboard/")
        page.fill("input[name=token]", live.tokens["supervisor"])
        page.click("button[type=submit].primary")
        expect(page.locator(".flash.info")).to_contain_text("Signed in.")
        expect(page.locator("header .who")).to_contain_text("morning-supervisor")

        page.click("header nav >> text=Stuck cases")
        finding = page.locator(f'tr[data-case="{case_id}"][data-reason="timer_failed"]')
        expect(finding).to_contain_text(f"timer {timer_id}: GuardRejected")
        finding.locator(f'a[href="/dashboard/cases/{case_id}"]').click()

        expect(page.locator("h1")).to_contain_text(f"Case {case_id}")
        timer = page.locator(f'tr[data-timer="{timer_id}"]')
        expect(timer).to_have_attribute("data-status", "failed")
        timer.locator("input[name=reason]").fill(reason)
        timer.locator("button", has_text="Retry timer").click()

        expect(page.locator(".flash.success")).to_contain_text(
            f"Retry timer done on case {case_id}."
        )
        retried = page.locator('ol.timeline li[data-event="timer_retried"]')
        expect(retried).to_have_count(1)
        expect(retried.locator(".reason-text")).to_have_text(reason)
        expect(retried).to_contain_text("Actor: token:morning-supervisor")
        expect(page.locator(f'tr[data-timer="{timer_id}"]')).to_have_attribute(
            "data-status", "armed"
        )

    with live.sessions() as session, session.begin():
        last = cases.history(session, case_id)[-1]
    assert (last.event_type, last.actor) == ("timer_retried", "token:morning-supervisor")
    assert last.payload == {"timer_id": timer_id, "reason": reason}
