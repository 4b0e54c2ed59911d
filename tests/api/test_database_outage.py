"""A database the app cannot use: every request is answered 503 with Retry-After (problem+json
for the API, an error page for the dashboard), the outage is logged once and its end once,
and a database error that is not an outage is still a 500 with its traceback logged.

The outage here is a SQLite file that cannot be opened (a directory stands where it should
be), which is quick and deterministic; tests/api/test_database_restart.py stops a real
PostgreSQL server under load.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api import state
from api.app import create_app
from api.problems import RETRY_AFTER_SECONDS
from engine.services.tokens import create_token
from engine.store import database
from engine.store.database import create_db_engine, session_factory
from engine.store.models import ApiToken
from tests.api.conftest import REPAIR, REPAIR_DATA, assert_problem
from tests.conftest import ROOT, T0

CASES = "/api/v1/cases"
OUTAGE_LOG = "engine.runtime.outages"


def _with_token(url: str, role: str) -> tuple[int, str]:
    """A token of ``role`` in the database at ``url``: its id and its secret."""
    engine = create_db_engine(url)
    name = f"outage-{role}"
    with session_factory(engine)() as session, session.begin():
        token = create_token(session, name=name, role=role, actor="test", now=T0)
        token_id = session.execute(select(ApiToken.id).where(ApiToken.name == name)).scalar_one()
    engine.dispose()
    return token_id, token


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == OUTAGE_LOG]


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


@dataclass
class Unopenable:
    """An app whose SQLite file cannot be opened, until :meth:`heal` puts a database there."""

    app: Flask
    integrator: dict[str, str]
    supervisor_id: int
    spare: Path
    path: Path

    def heal(self) -> None:
        self.path.rmdir()
        shutil.move(self.spare, self.path)


@pytest.fixture
def unopenable(
    api_sqlite_url: str, closed_redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Unopenable]:
    caplog.set_level(logging.INFO, logger=OUTAGE_LOG)
    _, integrator = _with_token(api_sqlite_url, "integrator")
    supervisor_id, _ = _with_token(api_sqlite_url, "supervisor")
    path = tmp_path / "live" / "svcflow.db"
    path.mkdir(parents=True)  # "unable to open database file", as when a volume is gone
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": closed_redis_url, "SECRET_KEY": "t"}
    )
    spare = Path(str(make_url(api_sqlite_url).database))
    yield Unopenable(app, {"Authorization": f"Bearer {integrator}"}, supervisor_id, spare, path)
    state.of(app).runtime.close()


def test_every_api_request_is_a_503_with_retry_after_and_the_outage_is_logged_once(
    unopenable: Unopenable, caplog: pytest.LogCaptureFixture
) -> None:
    client = unopenable.app.test_client()
    create = {"definition": REPAIR, "data": REPAIR_DATA}

    for n in range(10):
        for response in (
            client.get(CASES, headers=unopenable.integrator),
            client.post(
                CASES, json=create, headers={**unopenable.integrator, "Idempotency-Key": f"k{n}"}
            ),
        ):
            body = assert_problem(response, 503, "database-unavailable")
            assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert "Idempotency-Key" in body["hint"]

    ((level, warning),) = _outage_lines(caplog)
    assert level == "WARNING"
    assert re.fullmatch(r"database unavailable since \S+: unable to open database file", warning)
    assert _tracebacks(caplog) == []

    unopenable.heal()
    assert client.get(CASES, headers=unopenable.integrator).status_code == 200
    created = client.post(
        CASES, json=create, headers={**unopenable.integrator, "Idempotency-Key": "k0"}
    )
    assert created.status_code == 201, created.get_json()  # the refused key was not spent

    (warning, recovered) = _outage_lines(caplog)
    assert recovered[0] == "INFO"
    assert re.fullmatch(
        r"database available again after \d+\.\d s \(unavailable since \S+, first with: "
        r"unable to open database file\); 20 calls failed meanwhile",
        recovered[1],
    )


def test_the_dashboard_shows_a_503_page_not_a_traceback(
    unopenable: Unopenable, caplog: pytest.LogCaptureFixture
) -> None:
    client = unopenable.app.test_client()
    with client.session_transaction() as session:
        session["lang"] = "en"
        session["dashboard_user"] = {
            "id": unopenable.supervisor_id,
            "name": "outage-supervisor",
            "role": "supervisor",
        }

    for page in ("/dashboard/", "/dashboard/stuck"):
        response = client.get(page)

        assert response.status_code == 503
        assert response.mimetype == "text/html"
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        text = response.get_data(as_text=True)
        assert "Database unreachable" in text
        assert "cannot reach its database" in text
    assert [level for level, _ in _outage_lines(caplog)] == ["WARNING"]
    assert _tracebacks(caplog) == []

    unopenable.heal()
    assert client.get("/dashboard/").status_code == 200
    assert [level for level, _ in _outage_lines(caplog)] == ["WARNING", "INFO"]


def test_a_database_error_that_is_not_an_outage_is_a_500_with_its_traceback(
    api_sqlite_url: str,
    closed_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A write lock held past the busy timeout: a transaction held it far too long, which is
    a defect to find, not a database that is down (see engine/store/database.py)."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    headers = {"Authorization": f"Bearer {_with_token(api_sqlite_url, 'integrator')[1]}"}
    app = create_app({"DATABASE_URL": api_sqlite_url, "REDIS_URL": closed_redis_url})
    client = app.test_client()
    assert client.get(CASES, headers=headers).status_code == 200  # the token is cached
    holder = sqlite3.connect(str(make_url(api_sqlite_url).database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post(
            CASES, json={"definition": REPAIR, "data": REPAIR_DATA}, headers=headers
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        state.of(app).runtime.close()

    assert_problem(response, 500, "internal-error")
    assert len(_tracebacks(caplog)) == 1  # the defect, with its traceback
    assert _outage_lines(caplog) == []


def test_the_openapi_document_tells_integrators_every_operation_may_answer_503(
    unopenable: Unopenable,
) -> None:
    spec = unopenable.app.test_client().get("/api/openapi.json").get_json()
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }

    assert len(operations) > 30
    for name, operation in operations.items():
        if name == "GET /healthz":  # liveness: it reads no database, and answers while up
            assert "503" not in operation["responses"]
            continue
        unavailable = operation["responses"].get("503")
        assert unavailable, f"{name} does not document 503"
        if name != "GET /readyz":  # its own body says which check failed
            assert "Retry-After" in unavailable["headers"], name
            assert "application/problem+json" in unavailable["content"], name


def test_the_503_in_the_api_docs_is_the_one_clients_get(unopenable: Unopenable) -> None:
    docs = (ROOT / "docs" / "api.md").read_text("utf-8")
    (example,) = re.findall(r"```http\n(HTTP/1.1 503 .*?)```", docs, re.DOTALL)
    head, _, body = example.partition("\n\n")

    response = unopenable.app.test_client().get(CASES, headers=unopenable.integrator)

    assert json.loads(body) == response.get_json()
    assert f"Retry-After: {response.headers['Retry-After']}" in head.splitlines()
    assert f"Content-Type: {response.headers['Content-Type']}" in head.splitlines()
