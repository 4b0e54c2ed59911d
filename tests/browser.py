"""Driving the dashboard in a real browser: Debian's headless Chromium through Playwright.

The browser tests (tests/api/test_*_browser.py, the page matrix) share how Chromium is
launched, how a page signs in, what a page's Content-Security-Policy reports are, and the
screenshot kept when a step fails. The fixtures are in tests/api/conftest.py: ``browser``
(this module's :func:`chromium`) and ``live``, the dashboard behind a live server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

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
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    """Skip the test where Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium not installed: run apt-get install chromium; the Makefile's "
            "test target installs it"
        )


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed afterwards; the test is skipped
    where Chromium is not installed."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, locale: str, viewport: dict[str, int] | None = None) -> Any:
    """A tab of a context of its own in ``locale``, at ``viewport`` if given, that waits
    :data:`TIMEOUT_MS` for what a step expects."""
    page = browser.new_page(locale=locale, **({"viewport": viewport} if viewport else {}))
    page.set_default_timeout(TIMEOUT_MS)
    return page


def sign_in(page: Any, base: str, token: str, then: str | None = None) -> None:
    """Sign in through the dashboard's login form with ``token``; the dashboard then shows
    ``then`` (a path, its query included), or its overview."""
    goto = f"?next={quote(then, safe='/')}" if then else ""
    page.goto(f"{base}/dashboard/login{goto}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit].primary")


def csp_reports(page: Any) -> list[str]:
    """The Content-Security-Policy violations ``page`` reports on its console from now on."""
    reports: list[str] = []
    page.on(
        "console",
        lambda m: reports.append(m.text) if "Content Security" in m.text else None,
    )
    return reports


@contextmanager
def screenshot_on_failure(page: Any, path: Path) -> Iterator[None]:
    """Keep the page as it was when a step failed, and name the file in the failure."""
    try:
        yield
    except Exception as exc:
        page.screenshot(path=str(path), full_page=True)
        exc.add_note(f"The browser's page at the failure: {path}")
        raise
