"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite follows SQLAlchemy's documented pysqlite recipe: the driver's own transaction handling
is switched off and svcflow emits ``BEGIN IMMEDIATE`` itself, so a write transaction takes the
write lock up front. Without it two writers could both read a case under a shared lock and then
deadlock (SQLITE_BUSY) when upgrading to write. WAL lets readers proceed during a write, and the
busy timeout makes a writer wait its turn instead of failing at once.

Sessions are made here, but never committed here: the caller (CLI command, HTTP view, RQ job)
owns the transaction with ``with session.begin():``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///var/svcflow.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option: a read-only session on SQLite begins a deferred transaction, so it does
# not queue behind writers for the write lock it will never need.
READ_ONLY = "svcflow_read_only"


def database_url(explicit: str | None = None) -> str:
    """The configured URL: explicit argument, then ``SVCFLOW_DATABASE_URL``, then the default."""
    return explicit or os.environ.get("SVCFLOW_DATABASE_URL") or DEFAULT_DATABASE_URL


def _normalise(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = _normalise(database_url(url))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # svcflow emits BEGIN itself (see module doc)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: services return ORM rows that callers read after commit.
    return sessionmaker(bind=engine, expire_on_commit=False)


def read_only_session(factory: sessionmaker[Session]) -> Session:
    session = factory()
    session.connection(execution_options={READ_ONLY: True})
    return session


def inserted_id(result: Result[Any]) -> int:
    """The primary key that a single-row INSERT (without RETURNING) generated.

    ``Session.execute`` is typed to return a ``Result``; an INSERT's is a ``CursorResult``,
    whose ``inserted_primary_key`` is typed optional because a multi-row INSERT has none.
    """
    key = cast(CursorResult[Any], result).inserted_primary_key
    if key is None:
        raise TypeError("inserted_id() needs the result of a single-row INSERT")
    return int(key[0])
