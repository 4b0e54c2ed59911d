"""Every dashboard page, in Chinese and English, at 1366x768 and at phone width (390x844), in
a real browser (Debian's headless Chromium via Playwright) on a desk seeded by `svcflow demo`.

The pages are read from the app's URL map (:func:`dashboard_pages`), so a page added to the
dashboard blueprint joins the matrix by itself; a page whose path needs an id fails
``test_every_dashboard_page_is_in_the_matrix`` until ``PARAMETERS`` says which one to show.
Each check: the page answers with its status, nothing overflows the window sideways, the
browser reports no console error, on a Chinese page the page's own words (headings, labels,
buttons, table headings, navigation: :data:`CHROME`) are not English, and axe-core finds no
serious or critical accessibility violation. A screenshot of each is kept under
``var/test-artifacts/screenshots/<page>-<lang>-<width>.png`` (the path is printed at the end
of the run).

One server, one browser and one tab per language serve the whole module: a check costs a
page load, a screenshot and an axe run (about a second).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import state
from api.app import create_app
from api.dashboard import bp
from engine.core.compact import full_form
from engine.demo import run_demo
from engine.runtime.clock import ManualClock
from engine.runtime.ports import free_port
from engine.services.contracts import load_contract
from engine.services.definitions import publish
from engine.services.tokens import create_token
from engine.store.database import create_db_engine, session_factory
from engine.store.models import Case, CaseEvent, CaseStatus, Timer, TimerStatus
from tests.api.conftest import BROWSER_SCREENSHOTS, DASHBOARD_NOW, serving
from tests.browser import chromium, new_page, require_chromium, sign_in
from tests.conftest import WORKFLOWS

SCREENSHOTS = BROWSER_SCREENSHOTS
LANGUAGES = {"zh": "zh-CN", "en": "en-US"}
VIEWPORTS = {"1366": {"width": 1366, "height": 768}, "390": {"width": 390, "height": 844}}


@dataclass(frozen=True)
class Desk:
    """What the seeded desk holds that a page's path needs."""

    case_id: int  # an open repair ticket with a long history and a failed timer if any
    serial: str  # a device with a file and tickets
    contract: str


# Each GET endpoint of the dashboard that is not a page a person reads, and why.
NOT_PAGES = {
    "dashboard.static": "the stylesheet and script, loaded by every page",
    "dashboard.compliance_stylesheet": "the compliance report's stylesheet",
    "dashboard.compliance_csv": "a CSV download",
    "dashboard.workbench_export": "a CSV or XLSX download",
    "dashboard.kpi_export": "an XLSX download",
    "dashboard.kpi_summary_export": "an XLSX download",
    "dashboard.diagram_file": "an SVG image (tests/api/test_diagram_browser.py opens it)",
}

# Pages whose path needs values: each variant's name and its url_for values from the desk.
Values = Callable[[Desk], dict[str, Any]]
PARAMETERS: dict[str, dict[str, Values]] = {
    "dashboard.case_page": {"case": lambda d: {"case_id": d.case_id}},
    "dashboard.case_actions": {"case-actions": lambda d: {"case_id": d.case_id}},
    "dashboard.device_page": {"device": lambda d: {"serial": d.serial}},
    "dashboard.definition_page": {
        "versions": lambda d: {"name": "repair_ticket"},
        "versions-diff": lambda d: {"name": "repair_ticket", "from": 1, "to": 2},
    },
    "dashboard.draft_page": {"draft": lambda d: {"name": "repair_ticket"}},
    "dashboard.contract_page": {"contract": lambda d: {"contract_id": d.contract}},
    "dashboard.compliance_page": {
        "compliance": lambda d: {"contract_id": d.contract, "month": "2025-09"}
    },
    # Several customers contain the text: the page that lists them.
    "dashboard.find": {"find": lambda d: {"q": "医院"}},
    "dashboard.not_found": {"not-found": lambda d: {"unknown": "no-such-page"}},
    # Pages that need none get extra variants here: a filtered view, another month.
    "dashboard.workbench_page": {
        "workbench": lambda d: {},
        "workbench-stuck": lambda d: {"stuck": "sla_breached", "sort": "customer"},
    },
    "dashboard.kpi_page": {
        "kpis": lambda d: {},
        "kpis-september": lambda d: {"month": "2025-09", "by": "team"},
    },
}
STATUS = {"not-found": 404}
SIGNED_OUT = {"dashboard.login"}


@dataclass(frozen=True)
class Page:
    name: str
    endpoint: str
    values: Values
    # A page a POST answers with (a preview before anything changes): the form that sends it
    # is on the page of ``endpoint`` and ``values``; ``submit`` fills it and sends it.
    submit: Callable[[Any], None] | None = None


def _bulk_preview(tab: Any) -> None:
    tab.locator("tr[data-case] input[type=checkbox]").first.check()
    tab.select_option("select[form=bulk][name=action]", "reassign")
    tab.fill("input[form=bulk][name=assignee]", "李工")
    tab.fill("input[form=bulk][name=reason]", "matrix")
    tab.click("button[type=submit][form=bulk]")


def _migration_dry_run(tab: Any) -> None:
    form = tab.locator("form.migrate")
    form.locator("input[name=params][value=keep]").check()
    form.locator("input[name=reason]").fill("matrix")
    form.locator("button[type=submit]").click()


# The pages POSTs answer with; every other POST redirects to one of the GET pages.
FORM_PAGES = [
    Page("bulk-preview", "dashboard.workbench_page", lambda d: {}, _bulk_preview),
    Page(
        "migration-preview",
        "dashboard.definition_page",
        lambda d: {"name": "repair_ticket"},
        _migration_dry_run,
    ),
]


def _dashboard_rules() -> list[Any]:
    app = Flask(__name__)
    app.register_blueprint(bp)
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith(f"{bp.name}.")]


def dashboard_pages() -> tuple[list[Page], list[str]]:
    """The matrix's pages from the blueprint's GET routes, and the routes it cannot show."""
    pages, missing = [], []
    for rule in _dashboard_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
            continue
        variants = PARAMETERS.get(rule.endpoint)
        if variants is None and rule.arguments:
            missing.append(f"{rule.endpoint} ({rule.rule})")
            continue
        plain = rule.endpoint.removeprefix(f"{bp.name}.").removesuffix("_page")
        for name, values in (variants or {plain.replace("_", "-"): lambda d: {}}).items():
            pages.append(Page(name, rule.endpoint, values))
    return sorted(pages + FORM_PAGES, key=lambda p: p.name), missing


PAGES, UNPARAMETERISED = dashboard_pages()


def test_every_dashboard_page_is_in_the_matrix() -> None:
    assert UNPARAMETERISED == [], (
        "These dashboard pages need ids in their path: add them to PARAMETERS (or, if they "
        "are downloads, to NOT_PAGES) in tests/api/test_dashboard_matrix.py"
    )
    names = {p.name for p in PAGES}
    assert {"overview", "workbench", "stuck", "case", "kpis", "versions", "login"} <= names
    unknown = set(PARAMETERS) - {r.endpoint for r in _dashboard_rules()}
    assert unknown == set(), f"PARAMETERS names endpoints the dashboard no longer has: {unknown}"


# --- the desk, the server, the browser ----------------------------------------------------------


@dataclass
class Live:
    url: str
    app: Flask
    desk: Desk
    tabs: dict[str, Any]  # per language, one tab signed in and one signed out
    console: dict[str, list[str]]


def _seed(sessions: sessionmaker[Session]) -> Desk:
    """`svcflow demo`'s desk up to DASHBOARD_NOW, the bid contracts, and a second version of
    the repair ticket (so the versions page has something to compare)."""
    with sessions() as session, session.begin():
        for path in sorted((WORKFLOWS / "contracts").glob("*.yaml")):
            load_contract(session, path.read_text("utf-8"), actor="test", now=DASHBOARD_NOW)
    run_demo(sessions, WORKFLOWS, now=DASHBOARD_NOW, cases_wanted=60, days=45, seed=17)
    source = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    with sessions() as session, session.begin():
        publish(
            session,
            source.replace(
                "{en: Logged, zh: 已登记}", "{en: Logged by the hotline, zh: 热线已登记}"
            ),
            actor="test",
            now=DASHBOARD_NOW - timedelta(hours=1),
        )
        failed = select(Timer.case_id).where(Timer.status == TimerStatus.FAILED.value)
        events = (
            select(Case.id)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(Case.definition_name == "repair_ticket")
            .where(Case.status == CaseStatus.OPEN.value)
            .group_by(Case.id)
            .order_by(Case.id.in_(failed).desc(), func.count().desc(), Case.id)
            .limit(1)
        )
        case_id = session.execute(events).scalar_one()
        serial = session.execute(
            select(Case.business_key)
            .where(Case.definition_name == "device")
            .order_by(Case.id)
            .limit(1)
        ).scalar_one()
    return Desk(case_id=case_id, serial=str(serial), contract="b1")


@pytest.fixture(scope="module")
def live(api_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_chromium()  # before seeding the desk
    url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'svcflow.db'}"
    Path(url.removeprefix("sqlite:///")).write_bytes(api_sqlite_template.read_bytes())
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    desk = _seed(sessions)
    with sessions() as session, session.begin():
        token = create_token(
            session, name="matrix-admin", role="admin", actor="t", now=DASHBOARD_NOW
        )
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # pages never use Redis
            "SECRET_KEY": "dashboard-matrix",
            "KPI_CONFIG": str(WORKFLOWS / "catalog" / "kpis.yaml"),
        }
    )
    state.of(app).runtime.clock = ManualClock(DASHBOARD_NOW)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with serving(app, "matrix") as base, chromium() as browser:
        console: dict[str, list[str]] = {}
        tabs = {}
        for tab, locale in [
            (f"{lang}{out}", LANGUAGES[lang]) for lang in LANGUAGES for out in ("", "-out")
        ]:
            page = new_page(browser, locale)
            seen = console.setdefault(tab, [])
            page.on("console", lambda m, s=seen: s.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, s=seen: s.append(str(e)))
            if not tab.endswith("-out"):
                sign_in(page, base, token)
                page.wait_for_url(f"{base}/dashboard/")
            tabs[tab] = page
        yield Live(base, app, desk, tabs, console)
    state.of(app).runtime.close()
    engine.dispose()


# --- the checks ---------------------------------------------------------------------------------

# The innermost elements that reach past the window's right edge, as "tag.class" (a hint for
# the stylesheet: what to let wrap or scroll).
OVERFLOWING_SCRIPT = """() => {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.getBoundingClientRect().right <= window.innerWidth + 1) continue;
    const past = (c) => c.getBoundingClientRect().right > window.innerWidth + 1;
    if ([...el.children].some(past)) continue;
    const name = el.tagName.toLowerCase() + [...el.classList].map((c) => '.' + c).join('');
    if (!out.includes(name)) out.push(name);
    if (out.length === 5) break;
  }
  return out;
}"""

# The page's own words: what a template writes, as opposed to the data it shows (a customer's
# or an engineer's name, a serial, a definition's text in the draft editor). The language
# switch says "English" on purpose.
CHROME = (
    "head > title, header, nav, footer, h1, h2, h3, h4, th, label, button, summary, legend, "
    "caption, .flash, .hint, a.button, option"
)
WORDS_SCRIPT = """(selector) => {
  // Code (a CEL example, a definition's source, an identifier in <code>) is not the page's words.
  const code = 'form[action$="/lang"], textarea, pre, code, .mono, [translate=no], svg';
  const texts = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.closest(code)) continue;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(code)) texts.push(node.textContent);
    }
  }
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (el.closest(code)) continue;
    for (const a of ['placeholder', 'aria-label', 'title']) {
      if (el.hasAttribute(a)) texts.push(el.getAttribute(a));
    }
  }
  return texts;
}"""
# The data cells a value of an enum fills (a workbench column, a case's data, a choice): each
# one's whole text, outside code.
CELLS_SCRIPT = """() => {
  const code = 'textarea, pre, code, .mono, [translate=no], svg';
  const out = [];
  for (const el of document.querySelectorAll('td, dd, option')) {
    if (el.closest(code) || el.children.length) continue;
    out.push(el.textContent.trim());
  }
  return out;
}"""
# Names that are the same in both languages: the product, a file format, the language switch.
SAME_IN_BOTH = {"svcflow", "Excel", "Webhook", "Webhooks", "English"}


def workflow_identifiers() -> set[str]:
    """The bundled workflows' own names (definitions, states, triggers, SLA clocks): data a
    page may show beside their titles, like a case id, not words of the page.

    Payload field names are not among them: each definition labels its fields in both
    languages (its ``fields`` glossary), so a fire form on a Chinese page shows the Chinese
    label and a field name there is an English word like any other."""
    names = set()
    for path in WORKFLOWS.glob("*.yaml"):
        # The written-out form: compact heads (`state x:`, `on t: a -> b`, `payload:`) expanded.
        document = full_form(yaml.safe_load(path.read_text("utf-8")))
        names.add(document["name"])
        names |= {s["name"] for s in document.get("states", [])}
        names |= {t["trigger"] for t in document.get("transitions", [])}
        names |= {c["name"] for c in document.get("slas", [])}
    return names


def labelled_values() -> dict[str, set[str]]:
    """Each enum value the bundled workflows' glossaries label, with its labels: a value
    shown as data on a Chinese page (a priority, a filter's option) must read as its label."""
    labelled: dict[str, set[str]] = {}
    for path in WORKFLOWS.glob("*.yaml"):
        for entry in (yaml.safe_load(path.read_text("utf-8")).get("fields") or {}).values():
            for value, text in (entry.get("values") or {}).items():
                labelled.setdefault(value, set()).add(text["zh"])
    return labelled


IDENTIFIERS = workflow_identifiers()
LABELLED_VALUES = labelled_values()
# Standalone printable pages written in both languages on purpose (lang="zh-CN" with English
# beside each heading): the compliance report is signed by the customer and the supplier.
BILINGUAL = {"compliance"}
_TOKEN = re.compile(r"[^\s，。、：；（）()【】\[\]「」《》,;:!?！？·…\"'“”‘’]+")
_WORD = re.compile(r"[A-Za-z]+")


def english_words(texts: list[str]) -> list[str]:
    """The English words of ``texts``: a token of letters only, not an acronym (KPI, SLA,
    CSV) and not a name the same in both languages. Identifiers (``repair_ticket``,
    ``T-2026-0001``, ``cn-workdays``, ``Asia/Shanghai``) are tokens with other characters
    and pass: they are data, not words."""
    found = []
    for text in texts:
        for token in _TOKEN.findall(text or ""):
            if (
                _WORD.fullmatch(token)
                and not token.isupper()
                and token not in SAME_IN_BOTH | IDENTIFIERS
            ):
                found.append(f"{token!r} in {text.strip()[:80]!r}")
    return found


def _axe(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = []
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            where = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            serious.append(f"{violation['id']} ({violation['impact']}): {where}")
    return serious


MATRIX = [
    pytest.param(page, lang, width, id=f"{page.name}-{lang}-{width}")
    for page in PAGES
    for lang in LANGUAGES
    for width in VIEWPORTS
]


@pytest.mark.parametrize(("page_spec", "lang", "width"), MATRIX)
def test_dashboard_page(live: Live, page_spec: Page, lang: str, width: str) -> None:
    tab_name = f"{lang}-out" if page_spec.endpoint in SIGNED_OUT else lang
    tab = live.tabs[tab_name]
    with live.app.test_request_context():
        from flask import url_for

        path = url_for(page_spec.endpoint, **page_spec.values(live.desk))
    console = live.console[tab_name]
    tab.set_viewport_size(VIEWPORTS[width])
    if page_spec.submit is not None:
        tab.goto(f"{live.url}{path}")
        console.clear()
        with tab.expect_navigation() as sent:
            page_spec.submit(tab)
        response = sent.value
        path = response.url.removeprefix(live.url)
        if response.request.method != "POST" or response.request.redirected_from is not None:
            pytest.fail(f"the form on {path} was answered with a redirect, not a page")
    else:
        console.clear()
        response = tab.goto(f"{live.url}{path}")
    shot = SCREENSHOTS / f"{page_spec.name}-{lang}-{width}.png"
    tab.screenshot(path=str(shot), full_page=True)

    problems = []
    expected = STATUS.get(page_spec.name, 200)
    if response is None or response.status != expected:
        problems.append(f"status {response and response.status}, expected {expected}")
    if response is not None and response.url != f"{live.url}{path}":
        problems.append(f"redirected to {response.url}")
    wide = tab.evaluate("document.scrollingElement.scrollWidth")
    if wide > VIEWPORTS[width]["width"] + 1:
        problems.append(
            f"the page is {wide} px wide in a {VIEWPORTS[width]['width']} px window; "
            f"past its right edge: {tab.evaluate(OVERFLOWING_SCRIPT)}"
        )
    html_lang = tab.evaluate("document.documentElement.lang")
    if not html_lang.startswith(lang) and page_spec.name not in BILINGUAL:
        problems.append(f'<html lang="{html_lang}"> on a {lang} page')
    if lang == "zh" and page_spec.name not in BILINGUAL:
        english = english_words(tab.evaluate(WORDS_SCRIPT, CHROME))
        if english:
            problems.append(f"English on a Chinese page: {english}")
        raw = sorted({cell for cell in tab.evaluate(CELLS_SCRIPT) if cell in LABELLED_VALUES})
        if raw:
            shown = {value: sorted(LABELLED_VALUES[value]) for value in raw}
            problems.append(f"enum values shown untranslated (their labels: {shown})")
    if expected != 200:  # the browser reports the page's own status as an error
        console = [m for m in console if f"status of {expected}" not in m]
    if console:
        problems.append(f"console errors: {console}")
    problems += [f"axe: {v}" for v in _axe(tab)]
    if problems:
        where = f"{path} ({lang}, {width} px; screenshot {shot}):"
        pytest.fail("\n  ".join([where, *problems]), pytrace=False)
