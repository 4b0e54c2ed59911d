"""Schema migrations through Alembic (``svcflow db upgrade``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from engine.errors import DatabaseNotReady

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)
    refresh_statistics(engine)


def refresh_statistics(engine: Engine) -> None:
    """Give SQLite's query planner statistics (PostgreSQL's autovacuum keeps its own).

    Without them SQLite guesses, and has guessed wrong on a hot query (docs/benchmarks.md).
    ``analysis_limit`` bounds the work on a large database to a sample per index, as the
    SQLite documentation advises for databases that are analysed periodically; the workers
    run this hourly (engine/runtime/housekeeping.py)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return _installed_head()


@cache
def _installed_head() -> str | None:
    """The newest migration this installation ships: read from disk once per process (a
    readiness probe asks every few seconds, and the files do not change under it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def ensure_current(engine: Engine) -> str:
    """Refuse to work on a database whose schema is not at the newest migration; returns
    that revision."""
    current, head = current_revision(engine), head_revision(engine)
    if current is None or current != head:
        state = "has no svcflow schema" if current is None else f"is at revision {current}"
        raise DatabaseNotReady(
            f"The database {engine.url.render_as_string(hide_password=True)} {state}; this "
            f"svcflow needs revision {head}.",
            hint="Run `svcflow db upgrade` (or `svcflow init`, which also loads the workflows).",
            current=current,
            head=head,
        )
    return current
