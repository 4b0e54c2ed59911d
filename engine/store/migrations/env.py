"""Alembic environment: runs against the engine handed over by engine.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from engine.store.database import create_db_engine
from engine.store.models import Base


def _on_driver(connection: Connection, statement: str) -> None:
    """Run ``statement`` on the driver's connection itself, outside SQLAlchemy's transaction."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a closed or invalidated connection has none
        raise RuntimeError("The migration's database connection is closed.")
    driver.execute(statement)


config = context.config
engine = config.attributes.get("engine") or create_db_engine()

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild a SQLite table by copy-and-rename, which foreign-key
        # enforcement forbids while other tables reference it (Alembic's batch docs). The
        # pragma only takes effect outside a transaction, so it goes straight to the driver.
        _on_driver(connection, "PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    # SQLAlchemy 2 connections do not autocommit; make the migration stick.
    if connection.in_transaction():
        connection.commit()
    if sqlite:
        _on_driver(connection, "PRAGMA foreign_keys=ON")
