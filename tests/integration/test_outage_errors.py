"""Which database errors are an outage (the web app answers 503 and logs once) and which are a
defect (500, with its traceback), told apart on errors the real drivers raise.

A wrong "yes" hides a bug behind "try again later"; a wrong "no" logs a traceback for every
request while the database restarts. Hence both directions, and the errors that look alike:
PostgreSQL reports a refused connection, a statement timeout and a lock timeout all as
``OperationalError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from engine.runtime.embedded_postgres import EmbeddedPostgres
from engine.runtime.embedded_redis import free_port
from engine.store import database
from engine.store.database import create_db_engine, is_outage
from tests.conftest import DATABASES

postgres_only = pytest.mark.skipif("postgresql" not in DATABASES, reason="PostgreSQL not tested")


def _raised(action: Callable[[], object]) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught:
        action()
    return caught.value


@pytest.fixture
def pg(fresh_postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fresh_postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id integer PRIMARY KEY)"))
    yield engine
    engine.dispose()


# --- PostgreSQL: outages --------------------------------------------------------------------


@postgres_only
def test_a_server_that_refuses_connections_is_an_outage() -> None:
    engine = create_db_engine(f"postgresql://svcflow@127.0.0.1:{free_port()}/svcflow")

    error = _raised(engine.connect)

    assert is_outage(error)
    assert "refused" in database.driver_reason(error)
    engine.dispose()


@postgres_only
def test_a_connection_the_server_ended_is_an_outage(
    pg: Engine, embedded_postgres: EmbeddedPostgres
) -> None:
    """What every open session sees when the server shuts down: "terminating connection due
    to administrator command" (pg_terminate_backend sends the same)."""
    with pg.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with embedded_postgres.admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        error = _raised(lambda: conn.execute(text("SELECT 1")))

    assert is_outage(error)


@postgres_only
def test_no_connection_slot_left_is_an_outage(
    fresh_postgres_url: str, embedded_postgres: EmbeddedPostgres
) -> None:
    role = f"limited_{uuid.uuid4().hex[:8]}"
    with embedded_postgres.admin.connect() as admin:
        admin.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    engine = create_db_engine(fresh_postgres_url.replace("postgres:@", f"{role}:@", 1))
    try:
        error = _raised(engine.connect)
    finally:
        engine.dispose()
        with embedded_postgres.admin.connect() as admin:
            admin.execute(text(f"DROP ROLE {role}"))

    assert "too many connections" in database.driver_reason(error)
    assert is_outage(error)


# --- PostgreSQL: one statement's failure, not an outage --------------------------------------


@postgres_only
def test_a_violated_constraint_is_not_an_outage(pg: Engine) -> None:
    def insert_twice() -> None:
        with pg.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1), (1)"))

    assert not is_outage(_raised(insert_twice))


@postgres_only
def test_timeouts_of_one_statement_are_not_an_outage(pg: Engine) -> None:
    def too_slow() -> None:
        with pg.begin() as conn:
            conn.execute(text("SET LOCAL statement_timeout = '10ms'"))
            conn.execute(text("SELECT pg_sleep(1)"))

    def locked_out() -> None:
        with pg.begin() as holder:
            holder.execute(text("LOCK TABLE t"))
            with pg.begin() as waiter:
                waiter.execute(text("SET LOCAL lock_timeout = '10ms'"))
                waiter.execute(text("SELECT * FROM t"))

    for action in (too_slow, locked_out):
        error = _raised(action)
        assert error.__class__.__name__ == "OperationalError"  # like an outage's
        assert not is_outage(error), database.driver_reason(error)


# --- SQLite ---------------------------------------------------------------------------------


def test_a_sqlite_file_that_cannot_be_opened_is_an_outage(tmp_path: Path) -> None:
    (tmp_path / "svcflow.db").mkdir()  # where the file should be: e.g. a volume gone wrong
    engine = create_engine(f"sqlite:///{tmp_path / 'svcflow.db'}")

    error = _raised(engine.connect)

    assert is_outage(error)
    assert database.driver_reason(error) == "unable to open database file"
    engine.dispose()


def test_a_sqlite_database_locked_beyond_the_busy_timeout_is_not_an_outage(
    fresh_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """svcflow's writers hold the write lock for one short transaction: a writer that waited
    out the busy timeout found one that held it far too long, a defect to find."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    engine = create_db_engine(fresh_sqlite_url)

    def write_while_locked() -> None:
        with engine.begin() as holder:
            holder.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: holds the write lock
            with engine.begin() as writer:
                writer.execute(text("SELECT 1"))

    error = _raised(write_while_locked)

    assert database.driver_reason(error) == "database is locked"
    assert not is_outage(error)
    engine.dispose()


def test_a_sqlite_constraint_violation_is_not_an_outage(fresh_sqlite_url: str) -> None:
    engine = create_db_engine(fresh_sqlite_url)

    def insert_twice() -> None:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id integer PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t VALUES (1), (1)"))

    assert not is_outage(_raised(insert_twice))
    engine.dispose()
