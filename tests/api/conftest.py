"""Fixtures for the HTTP API tests: the Flask app on each real database, one token per role,
the bundled workflows published, and a live threaded server for the concurrency tests.

Redis is deliberately unreachable (a closed loopback port): timers are committed with the
case, and handing them to Redis after commit is allowed to fail (the sweeper delivers them
later), so nothing here depends on it.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import BaseWSGIServer, make_server

from api import state
from api.app import create_app
from engine.core.records import EventRecord
from engine.runtime.clock import ManualClock
from engine.runtime.embedded_redis import free_port
from engine.services import cases
from engine.services.definitions import publish
from engine.services.tokens import Role, create_token, revoke_token
from engine.store.database import create_db_engine, session_factory
from engine.store.models import ApiToken, Base
from tests.browser import chromium, sign_in
from tests.conftest import DATABASES, T0, WORKFLOWS, _database_url
from tests.workflows import TICKET

ROLES = tuple(r.value for r in Role)
DASHBOARD_NOW = T0 + timedelta(hours=5)  # 15:00 in Beijing: past a 4-hour SLA started at T0
API_TEMPLATE = "svcflow_api_template"
REPAIR = "repair_ticket"
REPAIR_DATA = {
    "customer": "Xiangya Hospital",
    "device_serial": "CT-2025-0042",
    "fault": "Gantry does not rotate",
    "priority": "normal",
}

# Published beside the bundled workflows: a self-loop that can fire any number of times (the
# concurrency tests need one transition per version), and a step only a supervisor may take.
API_COUNTER = """\
name: api_counter
title: {en: Counter, zh: 计数}
initial: open
data_schema:
  type: object
  properties:
    count: {type: integer, minimum: 0}
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: checked
    title: {en: Checked, zh: 已检查}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: ping
    source: open
    dest: open
    actions:
      - increment: count
  - trigger: check
    source: open
    dest: checked
    roles: [supervisor]
  - trigger: finish
    source: [open, checked]
    dest: done
"""


# For tests of the HTTP layer itself, where the database makes no difference.
sqlite_only = pytest.mark.parametrize(
    "db_url", [n for n in DATABASES if n == "sqlite"] or DATABASES[:1], indirect=True
)


def bundled_workflows() -> list[Path]:
    """The workflow definitions shipped in workflows/ (not the requirements catalog)."""
    return [
        path
        for path in sorted(WORKFLOWS.glob("*.yaml"))
        if "states" in (yaml.safe_load(path.read_text("utf-8")) or {})
    ]


@pytest.fixture(scope="session")
def closed_redis_url() -> str:
    """A loopback port nothing listens on: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def app_redis_url(closed_redis_url: str) -> str:
    """The app's Redis; a module that needs a reachable one overrides this fixture."""
    return closed_redis_url


def _publish_all(url: str) -> None:
    engine = create_db_engine(url)
    with session_factory(engine)() as session, session.begin():
        for source in [p.read_text("utf-8") for p in bundled_workflows()] + [API_COUNTER]:
            publish(session, source, actor="test", now=T0)
    engine.dispose()


@pytest.fixture(scope="session")
def api_sqlite_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated SQLite template with the workflows published, once per test process:
    publishing and validating every bundled workflow costs more than a test."""
    path = tmp_path_factory.mktemp("api-sqlite") / "template.db"
    shutil.copyfile(sqlite_template, path)
    _publish_all(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def api_postgres_template(postgres_server: str) -> str:
    """The same on PostgreSQL: a template database cloned from the migrated one."""
    with _admin(postgres_server) as admin:
        admin.execute(text(f"CREATE DATABASE {API_TEMPLATE} TEMPLATE svcflow_template"))
    _publish_all(_database_url(postgres_server, API_TEMPLATE))
    return API_TEMPLATE


@contextmanager
def _admin(server: str) -> Iterator[Connection]:
    engine = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def api_sqlite_url(api_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "svcflow.db"
    shutil.copyfile(api_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Overrides tests/conftest.py's: a fresh database, SQLite then PostgreSQL, that already
    holds the bundled workflows and ``api_counter``."""
    if request.param == "sqlite":
        yield request.getfixturevalue("api_sqlite_url")
        return
    server: str = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("api_postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin(server) as admin:
        admin.execute(text(f'CREATE DATABASE "{name}" TEMPLATE {template}'))
    yield _database_url(server, name)
    with _admin(server) as admin:
        admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def app(db_url: str, app_redis_url: str) -> Iterator[Flask]:
    """The app on a fresh database (SQLite, then PostgreSQL) with the bundled workflows."""
    flask_app = create_app({"DATABASE_URL": db_url, "REDIS_URL": app_redis_url})
    yield flask_app
    state.of(flask_app).runtime.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def build_dashboard_app(db_url: str, kpi_config: Path) -> Flask:
    """The app as the dashboard tests drive it: a fixed session key, a KPI file of the test's
    own and a ManualClock at ``DASHBOARD_NOW``. Redis is a closed port: timers handed to it
    after commit may fail; the sweeper's job."""
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "SECRET_KEY": "dashboard-tests",
            "KPI_CONFIG": str(kpi_config),
        }
    )
    state.of(app).runtime.clock = ManualClock(DASHBOARD_NOW)
    return app


def make_tokens(sessions: sessionmaker[Session], prefix: str) -> dict[str, str]:
    """One token per role, named ``{prefix}-{role}`` (the actor shows as ``token:<name>``)."""
    made = {}
    with sessions() as session, session.begin():
        for role in ROLES:
            made[role] = create_token(
                session, name=f"{prefix}-{role}", role=role, actor="test", now=T0
            )
    return made


_names = itertools.count(1)


@dataclass
class Tokens:
    """Makes, revokes and holds API tokens; ``headers(role)`` is ready to send."""

    sessions: sessionmaker[Session]
    by_role: dict[str, str]

    def create(self, role: str) -> tuple[str, str]:
        name = f"{role}-{next(_names)}"
        with self.sessions() as session, session.begin():
            token = create_token(session, name=name, role=role, actor="test", now=T0)
        return name, token

    def revoke(self, name: str) -> None:
        with self.sessions() as session, session.begin():
            revoke_token(session, name, now=T0)

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_role[role]}", **extra}


@pytest.fixture
def tokens(app: Flask, sessions: sessionmaker[Session]) -> Tokens:
    made = Tokens(sessions, {})
    for role in ROLES:
        made.by_role[role] = made.create(role)[1]
    return made


@pytest.fixture
def as_role(client: FlaskClient, tokens: Tokens) -> Callable[..., Any]:
    """``as_role("integrator").post(url, json=...)``: the test client with a role's token."""

    class _Caller:
        def __init__(self, role: str) -> None:
            self.role = role

        def open(
            self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
        ) -> Any:
            return client.open(
                url, method=method, headers=tokens.headers(self.role, **(headers or {})), **kwargs
            )

        def get(self, url: str, **kwargs: Any) -> Any:
            return self.open("GET", url, **kwargs)

        def post(self, url: str, **kwargs: Any) -> Any:
            return self.open("POST", url, **kwargs)

        def put(self, url: str, **kwargs: Any) -> Any:
            return self.open("PUT", url, **kwargs)

        def delete(self, url: str, **kwargs: Any) -> Any:
            return self.open("DELETE", url, **kwargs)

    return _Caller


@pytest.fixture
def integrator(as_role: Callable[..., Any]) -> Any:
    return as_role("integrator")


@pytest.fixture
def owner(as_role: Callable[..., Any]) -> Any:
    return as_role("process_owner")


@pytest.fixture
def supervisor(as_role: Callable[..., Any]) -> Any:
    return as_role("supervisor")


@pytest.fixture
def admin(as_role: Callable[..., Any]) -> Any:
    return as_role("admin")


@pytest.fixture
def new_case(integrator: Any) -> Callable[..., dict[str, Any]]:
    """Create a repair ticket over HTTP and return its body."""

    def _create(business_key: str | None = None, **data: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"definition": REPAIR, "data": {**REPAIR_DATA, **data}}
        if business_key is not None:
            body["business_key"] = business_key
        response = integrator.post("/api/v1/cases", json=body)
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        return created

    return _create


@pytest.fixture
def db_state(sessions: sessionmaker[Session]) -> Callable[[], dict[str, list[str]]]:
    """Every row of every table but the tokens, read in a session of its own: two equal
    snapshots mean a request changed nothing."""

    def _state() -> dict[str, list[str]]:
        with sessions() as session:
            return {
                table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
                for table in Base.metadata.sorted_tables
                if table.name != ApiToken.__tablename__
            }

    return _state


@pytest.fixture
def history(sessions: sessionmaker[Session]) -> Callable[[int], list[EventRecord]]:
    def _history(case_id: int) -> list[EventRecord]:
        with sessions() as session, session.begin():
            return cases.history(session, case_id)

    return _history


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the given status (and svcflow code)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    for field in ("type", "title", "status", "detail"):
        assert body.get(field), f"problem lacks {field}: {body}"
    assert body["status"] == status
    assert body["type"].startswith("urn:svcflow:problem:")
    if code is not None:
        assert body["code"] == code, body
    return body


@contextmanager
def serving(app: Flask, name: str) -> Iterator[str]:
    """``app`` behind a real threaded WSGI server on 127.0.0.1, on a free port; yields its
    base URL and stops the server afterwards."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app behind a real threaded WSGI server on 127.0.0.1; yields its base URL."""
    with serving(app, "live-server") as url:
        yield url


# --- the dashboard in a real browser (tests/browser.py) -----------------------------------------


@dataclass
class LiveDashboard:
    url: str
    tokens: dict[str, str]  # per role, tokens named morning-<role>
    sessions: sessionmaker[Session]

    def sign_in(self, page: Any, then: str | None = None, role: str = "supervisor") -> None:
        """Sign ``page`` in with ``role``'s token; it then shows ``then`` or the overview."""
        sign_in(page, self.url, self.tokens[role], then)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for the test (skipped without one)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def live(api_sqlite_url: str, tmp_path: Path) -> Iterator[LiveDashboard]:
    """The dashboard app (:func:`build_dashboard_app`, its KPI file ``tmp_path/kpis.yaml``)
    on SQLite with the bundled workflows and TICKET, behind a live server, with one token
    per role."""
    engine = create_db_engine(api_sqlite_url)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        publish(session, TICKET, actor="test", now=T0)
    app = build_dashboard_app(api_sqlite_url, tmp_path / "kpis.yaml")
    with serving(app, "dashboard") as url:
        yield LiveDashboard(url, make_tokens(sessions, "morning"), sessions)
    state.of(app).runtime.close()
    engine.dispose()


# --- where the browser tests leave their screenshots ---------------------------------------------

BROWSER_SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "screenshots"
_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the directory where this run's dashboard screenshots are (the matrix of
    tests/api/test_dashboard_matrix.py), so a reader of a failure can open them."""
    if not BROWSER_SCREENSHOTS.is_dir():
        return
    fresh = [p for p in BROWSER_SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= _SESSION_STARTED]
    if fresh:
        terminalreporter.write_line(f"dashboard screenshots: {len(fresh)} in {BROWSER_SCREENSHOTS}")
