"""Alembic environment: runs against the engine handed over by engine.db.migrate."""

from __future__ import annotations

from alembic import context

from engine.db.models import Base
from engine.db.session import create_db_engine

config = context.config
engine = config.attributes.get("engine") or create_db_engine()

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    # SQLAlchemy 2 connections do not autocommit; make the migration stick.
    if connection.in_transaction():
        connection.commit()
