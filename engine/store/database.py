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
import sqlite3
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import DatabaseUnavailable, DatabaseUrlInvalid

DEFAULT_VAR_DIR = "var"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option: a read-only session on SQLite begins a deferred transaction, so it does
# not queue behind writers for the write lock it will never need.
READ_ONLY = "svcflow_read_only"

# What PostgreSQL says when it cannot serve anyone right now, as opposed to "this statement is
# wrong": the connection failed (class 08, except 08P01, a protocol violation, which is a bug),
# the server is stopping, crashed or is still starting (57P01-57P03), it has no connection slot
# left (53300, also a role's or a database's CONNECTION LIMIT) or no disk (53100). While
# connecting, psycopg reports all of these without a SQLSTATE, as libpq's own failures (see
# is_outage); the classes matter on a connection that is already open. Deliberately absent:
# deadlocks and serialization failures (40xxx: this transaction lost a race), statement and lock
# timeouts (57014, 55P03), out of memory (53200: usually one query's doing). Those fail one
# request, not the database, and stay errors with a traceback.
_PG_OUTAGES: tuple[type[psycopg.Error], ...] = (
    pg_errors.ConnectionException,
    pg_errors.SqlclientUnableToEstablishSqlconnection,
    pg_errors.ConnectionDoesNotExist,
    pg_errors.SqlserverRejectedEstablishmentOfSqlconnection,
    pg_errors.ConnectionFailure,
    pg_errors.AdminShutdown,
    pg_errors.CrashShutdown,
    pg_errors.CannotConnectNow,
    pg_errors.TooManyConnections,
    pg_errors.DiskFull,
)
# SQLite's primary result codes for a file that cannot be opened, read or written. Not among
# them: SQLITE_BUSY, "database is locked" after the 30 s busy timeout. svcflow's writers take
# the lock up front and hold it for one short transaction, so a writer that waited 30 s found a
# transaction that held the lock far too long: a defect to find from its traceback, not a
# database that is down for everyone.
_SQLITE_OUTAGES = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL})


def var_dir() -> Path:
    """Where svcflow keeps its local files when nothing else is configured (the SQLite
    database, the session secret, the embedded Redis, metrics of a local run):
    ``SVCFLOW_VAR_DIR``, default ``var/`` under the working directory."""
    return Path(os.environ.get("SVCFLOW_VAR_DIR") or DEFAULT_VAR_DIR)


def database_url(explicit: str | None = None) -> str:
    """The configured URL: explicit argument, then ``SVCFLOW_DATABASE_URL``, then SQLite in
    the var directory (``sqlite:///var/svcflow.db`` by default)."""
    configured = explicit or os.environ.get("SVCFLOW_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{(var_dir() / 'svcflow.db').as_posix()}"


def _normalise(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def shown_url(url: str | None = None) -> str:
    """The configured URL as it may be printed: with its password hidden."""
    return make_url(database_url(url)).render_as_string(hide_password=True)


def open_db_engine(url: str | None = None) -> Engine:
    """:func:`create_db_engine` for a command that reports errors to a person: a URL that cannot
    be used, or a SQLite directory that cannot be created, become svcflow errors that say so.
    Connecting is lazy: a database that cannot be reached fails at first use, where the caller
    reports it with :func:`is_connection_error` and :func:`unreachable`."""
    try:
        return create_db_engine(url)
    # A URL that does not parse, a port that is not a number, an unknown dialect, a driver
    # that is not installed. The URL is not repeated: it may hold a password.
    except (ArgumentError, ValueError, ImportError) as exc:
        raise DatabaseUrlInvalid(
            f"The database URL cannot be used: {str(exc).rstrip('.')}.",
            hint="Set SVCFLOW_DATABASE_URL (or --database-url) to e.g. "
            "sqlite:///var/svcflow.db or postgresql://user:password@host/svcflow.",
        ) from exc
    except OSError as exc:
        raise unreachable(url, exc) from exc


def is_connection_error(error: DBAPIError) -> bool:
    """Whether ``error`` says the database cannot be reached or used, rather than that one
    statement is wrong: any driver error while connecting (there is no statement yet: the
    server refuses, the SQLite file is not a database), a connection found broken, and what
    the DB-API calls errors of the database's operation or interface. A violated constraint or
    a bad statement is not one: the services translate the first, the second is a bug."""
    return (
        error.statement is None
        or error.connection_invalidated
        or isinstance(error, OperationalError | InterfaceError)
    )


def is_outage(error: DBAPIError) -> bool:
    """Whether ``error`` says the database cannot serve anyone right now, so that the same
    request can succeed once it is back: the server refuses connections, closed this one, is
    shutting down or starting, has no connection slot or disk left; the SQLite file cannot be
    opened, read or written. Narrower than :func:`is_connection_error`, which a one-shot
    command uses to report any operational failure: a long-running server must tell a passing
    outage (answer "retry later") from a defect (log it with its traceback), so a deadlock, a
    lock timeout, a violated constraint or a bad statement is not an outage."""
    driver = error.orig
    if error.connection_invalidated:  # SQLAlchemy found the connection broken
        return True
    if isinstance(driver, psycopg.Error):
        # No SQLSTATE: libpq failed to connect or lost the connection (refused, no socket,
        # closed unexpectedly, timed out), or the server turned the connection away at
        # startup (shutting down, no slot left, and also an unknown user or database: a
        # database that refuses svcflow's user is unavailable to it until someone fixes that).
        return isinstance(driver, _PG_OUTAGES) or (
            driver.sqlstate is None and isinstance(driver, psycopg.OperationalError)
        )
    if isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", None)  # absent if raised by Python code
        return code is not None and code & 0xFF in _SQLITE_OUTAGES
    return False


def driver_reason(error: DBAPIError | OSError) -> str:
    """The first line of what the driver said, without the SQL SQLAlchemy appends: short
    enough for a log line or a message, and free of the statement's parameters."""
    driver = error.orig if isinstance(error, DBAPIError) else error
    lines = str(driver).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(driver).__name__


def unreachable(url: str | None, error: DBAPIError | OSError) -> DatabaseUnavailable:
    """The error to report when the database at ``url`` cannot be opened, or fails under a
    command that had opened it: what the driver said, the URL, and what to check."""
    shown = shown_url(url)
    reason = driver_reason(error)
    if isinstance(error, DBAPIError) and error.statement is not None:
        return DatabaseUnavailable(
            f"The database at {shown} failed: {reason}.",
            hint="Try again; if it keeps failing, look at the database server and its log.",
            url=shown,
        )
    if make_url(database_url(url)).get_backend_name() == "sqlite":
        return DatabaseUnavailable(
            f"Cannot open the SQLite database at {shown}: {reason}.",
            hint="Check SVCFLOW_DATABASE_URL (or --database-url): the file must be a svcflow "
            "database, or one this user can create, in a directory it can write.",
            url=shown,
        )
    return DatabaseUnavailable(
        f"Cannot reach the database at {shown}: {reason}.",
        hint="Check SVCFLOW_DATABASE_URL (or --database-url), that the database server runs, "
        "and that it accepts this user.",
        url=shown,
    )


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


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (``Session.execute`` is typed as the wider
    ``Result``; for these statements it is a ``CursorResult``)."""
    return int(cast(CursorResult[Any], result).rowcount)
