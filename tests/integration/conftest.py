"""Fixtures for the integration tests (the databases themselves come from tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.core.records import CaseRecord, EventRecord
from engine.services import cases
from engine.store.models import Case, CaseEvent, IdempotencyRecord
from tests.conftest import DATABASES, _database_url


@dataclass(frozen=True)
class Snapshot:
    """Everything a fire may change, read in a session of its own."""

    case: CaseRecord
    history: tuple[EventRecord, ...]
    idempotency: tuple[tuple[Any, ...], ...]
    total_cases: int
    total_events: int


@pytest.fixture
def snapshot(sessions: sessionmaker[Session]) -> Callable[[int], Snapshot]:
    def _snapshot(case_id: int) -> Snapshot:
        with sessions() as session, session.begin():
            record = cases.get_case(session, case_id)
            events = tuple(cases.history(session, case_id))
            keys = tuple(
                tuple(row)
                for row in session.execute(
                    select(
                        IdempotencyRecord.scope,
                        IdempotencyRecord.key,
                        IdempotencyRecord.case_id,
                        IdempotencyRecord.event_seq,
                    ).order_by(IdempotencyRecord.id)
                )
            )
            total_cases = session.execute(select(func.count()).select_from(Case)).scalar_one()
            total_events = session.execute(select(func.count()).select_from(CaseEvent)).scalar_one()
        return Snapshot(record, events, keys, total_cases, total_events)

    return _snapshot


@pytest.fixture
def dialect(db_engine: Engine) -> str:
    return db_engine.dialect.name


@pytest.fixture(params=DATABASES)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that no migration has touched."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield _database_url(server, name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def row_count(sessions: sessionmaker[Session]) -> Callable[[type[Any]], int]:
    """Rows of a table, read in a session of its own."""

    def _count(model: type[Any]) -> int:
        with sessions() as session, session.begin():
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())

    return _count
