"""The Content-Security-Policy is one the pages work under, in a real browser (Debian's
Chromium): the Swagger UI renders the API's operations, and the dashboard's pages (an SLA bar
and charts included) render, with no violation reported and no request leaving the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api.conftest import LiveDashboard
from tests.browser import new_page
from tests.factories import create_ticket


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


def test_the_api_docs_and_the_dashboard_work_under_the_policy(
    browser: Any, live: LiveDashboard
) -> None:
    from playwright.sync_api import expect

    case_id = create_ticket(live.sessions)
    seen = Seen(live.url)
    page = new_page(browser, "en-US")
    seen.watch(page)
    page.goto(f"{live.url}/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    page.locator(".opblock-summary", has_text="/readyz").first.click()
    page.click("text=Try it out")
    page.click("button.execute")
    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
        "503"  # Redis is a closed port here: readiness says so, over fetch()
    )

    live.sign_in(page)
    expect(page.locator("header .who")).to_contain_text("morning-supervisor")
    for path in ("/dashboard/", "/dashboard/stuck", "/dashboard/kpis"):
        page.goto(f"{live.url}{path}")
        expect(page.locator("header .who")).to_contain_text("morning-supervisor")
    page.goto(f"{live.url}/dashboard/cases/{case_id}")
    bar = page.locator("svg.bar rect").first
    expect(bar).to_be_visible()
    assert bar.bounding_box()["width"] > 0  # type: ignore[index]

    assert seen.errors == []
    assert seen.elsewhere == []
