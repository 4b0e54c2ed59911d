"""The dashboard's screenshots in docs/dashboard.md, made again from `svcflow demo` data.

    python bench/screenshots.py [--output docs/screenshots] [--cases 200] [--seed 17]
    make screenshots

A scratch SQLite database gets the demo desk (engine/demo.py, the same code as `svcflow demo`,
45 days of history) up to a fixed instant, NOW, so the same seed gives the same pictures. The
app runs on a threaded werkzeug server whose clock stands at NOW, and Debian's headless
Chromium (Playwright) signs in as a supervisor and takes the pages in Chinese at 1366x768
(overview, workbench, stuck cases, KPIs, one case) and the workbench at phone width
(390x844). Each picture is the window, not the whole page: what a supervisor sees on opening
it.

Needs /usr/bin/chromium and a CJK font (the Makefile's test target installs both).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/screenshots.py` puts bench/ first on sys.path, where bench/calendar.py and
# bench/http.py would shadow the standard library's. Drop it; use the repository root.
_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from api import state  # noqa: E402
from api.app import create_app  # noqa: E402
from engine.demo import run_demo  # noqa: E402
from engine.runtime.clock import ManualClock  # noqa: E402
from engine.runtime.ports import free_port  # noqa: E402
from engine.services.tokens import create_token  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Case, CaseEvent, CaseStatus  # noqa: E402

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday
WORKFLOWS = ROOT / "workflows"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def seed(url: str, cases: int, seed_value: int) -> tuple[str, int]:
    """The desk, a supervisor's token, and the open repair ticket with the longest history."""
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    report = run_demo(sessions, WORKFLOWS, now=NOW, cases_wanted=cases, seed=seed_value)
    print(f"demo: {sum(report.created.values())} cases, stuck {dict(report.findings)}")
    with sessions() as session, session.begin():
        token = create_token(session, name="王主管", role="supervisor", actor="screens", now=NOW)
        case_id = session.execute(
            select(Case.id)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(Case.definition_name == "repair_ticket", Case.status == CaseStatus.OPEN.value)
            .group_by(Case.id)
            .order_by(func.count().desc(), Case.id)
            .limit(1)
        ).scalar_one()
    engine.dispose()
    return token, case_id


def shoot(base: str, token: str, case_id: int, output: Path) -> list[Path]:
    pages = {
        "overview": "/dashboard/",
        "workbench": "/dashboard/work",
        "stuck": "/dashboard/stuck",
        "kpis": "/dashboard/kpis?by=team",
        "case": f"/dashboard/cases/{case_id}",
    }
    made = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN", viewport=DESKTOP)
        page.goto(f"{base}/dashboard/login")
        page.fill("input[name=token]", token)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/dashboard/")
        for name, path in pages.items():
            page.goto(f"{base}{path}")
            made.append(output / f"{name}-zh-1366.png")
            page.screenshot(path=str(made[-1]))
        page.set_viewport_size(PHONE)
        page.goto(f"{base}/dashboard/work")
        made.append(output / "workbench-zh-390.png")
        page.screenshot(path=str(made[-1]))
        browser.close()
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk")
    logging.disable(logging.INFO)
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'svcflow.db'}"
        token, case_id = seed(url, args.cases, args.seed)
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # pages never use Redis
                "SECRET_KEY": "screenshots",
                "KPI_CONFIG": str(WORKFLOWS / "catalog" / "kpis.yaml"),
                "VAR_DIR": scratch,
            }
        )
        state.of(app).runtime.clock = ManualClock(NOW)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            made = shoot(f"http://127.0.0.1:{server.server_port}", token, case_id, args.output)
        finally:
            server.shutdown()
            server.server_close()
            state.of(app).runtime.close()
    for path in made:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
