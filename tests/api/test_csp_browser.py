"""The Content-Security-Policy is one the pages work under, in a real browser (Debian's
Chromium): the Swagger UI renders the API's operations, and the dashboard's pages (an SLA bar
and charts included) render, with no violation reported and no request leaving the app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from api import state
from tests.api.conftest import build_dashboard_app, make_tokens
from tests.api.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from tests.factories import create_ticket
from tests.workflows import TICKET


@dataclass
class Live:
    url: str
    token: str
    case_id: int


@dataclass
class Seen:
    """What the browser reported: Content-Security-Policy violations and script errors, and
    requests for anything outside the app."""

    base: str
    errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((self.base, "data:")) else self.elsewhere.append(r.url)
            ),
        )


@pytest.fixture
def db_url(api_sqlite_url: str) -> str:
    return api_sqlite_url


@pytest.fixture
def live(
    db_url: str, sessions: sessionmaker[Session], publish_workflow: Any, tmp_path: Path
) -> Iterator[Live]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: the Makefile's test target installs it")
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    app = build_dashboard_app(db_url, tmp_path / "kpis.yaml")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="csp", daemon=True)
    thread.start()
    token = make_tokens(sessions, "csp")["supervisor"]
    yield Live(f"http://127.0.0.1:{server.server_port}", token, case_id)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    state.of(app).runtime.close()


def test_the_api_docs_and_the_dashboard_work_under_the_policy(live: Live) -> None:
    from playwright.sync_api import expect, sync_playwright

    seen = Seen(live.url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US")
        page.set_default_timeout(TIMEOUT_MS)
        seen.watch(page)
        try:
            page.goto(f"{live.url}/api/docs")
            expect(page.locator(".opblock").first).to_be_visible()
            assert page.locator(".opblock").count() > 20
            page.locator(".opblock-summary", has_text="/readyz").first.click()
            page.click("text=Try it out")
            page.click("button.execute")
            expect(
                page.locator(".live-responses-table tbody .response-col_status").first
            ).to_have_text(
                "503"  # Redis is a closed port here: readiness says so, over fetch()
            )

            page.goto(f"{live.url}/dashboard/login")
            page.fill("input[name=token]", live.token)
            page.click("button[type=submit].primary")
            expect(page.locator("header .who")).to_contain_text("csp-supervisor")
            for path in ("/dashboard/", "/dashboard/stuck", "/dashboard/kpis"):
                page.goto(f"{live.url}{path}")
                expect(page.locator("header .who")).to_contain_text("csp-supervisor")
            page.goto(f"{live.url}/dashboard/cases/{live.case_id}")
            bar = page.locator("svg.bar rect").first
            expect(bar).to_be_visible()
            assert bar.bounding_box()["width"] > 0  # type: ignore[index]
        finally:
            browser.close()

    assert seen.errors == []
    assert seen.elsewhere == []
