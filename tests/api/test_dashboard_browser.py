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

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from api import state
from engine.services import cases
from tests.api.conftest import build_dashboard_app, make_tokens
from tests.factories import ticket_with_failed_reminder
from tests.workflows import TICKET

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000


@dataclass
class Live:
    url: str
    tokens: dict[str, str]
    sessions: sessionmaker[Session]


@pytest.fixture
def db_url(api_sqlite_url: str) -> str:
    """SQLite with the bundled workflows published (tests/api/conftest.py)."""
    return api_sqlite_url


@pytest.fixture
def live(
    db_url: str, sessions: sessionmaker[Session], publish_workflow: Any, tmp_path: Path
) -> Iterator[Live]:
    """The app behind a threaded werkzeug server on 127.0.0.1, on a free port."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium not installed: run apt-get install chromium; the Makefile's "
            "test target installs it"
        )
    publish_workflow(TICKET)
    app = build_dashboard_app(db_url, tmp_path / "kpis.yaml")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", make_tokens(sessions, "morning"), sessions)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    state.of(app).runtime.close()


def test_a_supervisor_retries_a_failed_timer_from_the_stuck_list(
    live: Live, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    case_id, timer_id = ticket_with_failed_reminder(live.sessions)
    reason = "guard data fixed by the hotline"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
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
        except Exception as exc:
            shot = tmp_path / "dashboard-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            exc.add_note(f"The browser's page at the failure: {shot}")
            raise
        finally:
            browser.close()

    with live.sessions() as session, session.begin():
        last = cases.history(session, case_id)[-1]
    assert (last.event_type, last.actor) == ("timer_retried", "token:morning-supervisor")
    assert last.payload == {"timer_id": timer_id, "reason": reason}
