"""The Alembic migrations and the SQLAlchemy models describe one schema, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from engine.errors import DatabaseNotReady
from engine.services import cases
from engine.store import migrate
from engine.store.database import create_db_engine, session_factory
from engine.store.models import Base
from tests.conftest import ADMIN, T0
from tests.workflows import PLAIN

TABLES = {
    "cases",
    "case_events",
    "definition_versions",
    "idempotency_records",
    "parameter_overrides",
}


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def _works(engine: Engine) -> None:
    """Publish, create and fire: the schema takes what the engine writes."""
    from engine.services.definitions import publish

    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        publish(session, PLAIN, actor="test", now=T0)
        case = cases.create_case(
            session, "plain", {}, actor=ADMIN, now=T0, business_key="K", idempotency_key="k"
        ).case
    with sessions() as session, session.begin():
        assert (
            cases.fire(session, case.id, "finish", actor=ADMIN, now=T0).case.status == "completed"
        )


def test_models_match_the_migrated_schema(db_engine: Engine) -> None:
    assert migrate.current_revision(db_engine) == migrate.head_revision(db_engine)
    assert _differences(db_engine) == []


def test_downgrade_one_step_keeps_cases(db_engine: Engine) -> None:
    """Rolling back the newest migration (e.g. after a bad deploy) keeps the cases."""
    _works(db_engine)
    head = migrate.head_revision(db_engine)
    script = ScriptDirectory.from_config(migrate.alembic_config(db_engine))
    previous = script.get_revision(head).down_revision
    assert previous is not None, "the newest migration has a predecessor to roll back to"

    migrate.downgrade(db_engine, str(previous))
    assert migrate.current_revision(db_engine) == previous
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM case_events")).scalar_one() == 2

    migrate.upgrade(db_engine)
    assert _differences(db_engine) == []
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_events")).scalar_one() == 2
    if db_engine.dialect.name == "sqlite":
        with db_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_downgrade_to_base_and_upgrade_again(db_engine: Engine) -> None:
    _works(db_engine)

    migrate.downgrade(db_engine, "base")
    assert migrate.current_revision(db_engine) is None
    assert TABLES.isdisjoint(inspect(db_engine).get_table_names())
    with pytest.raises(DatabaseNotReady):
        migrate.ensure_current(db_engine)

    migrate.upgrade(db_engine)
    assert migrate.current_revision(db_engine) == migrate.head_revision(db_engine)
    assert set(inspect(db_engine).get_table_names()) >= TABLES
    migrate.ensure_current(db_engine)
    assert _differences(db_engine) == []
    _works(db_engine)


_INSERT_CLOCK = """
    INSERT INTO case_slas (case_id, definition_name, sla, {round_column} status, target_seconds,
        elapsed_seconds, updated_at)
    VALUES (:case_id, 'plain', 'reply', {round_value} :status, 3600, 60, :at)
"""


def _insert_clock(engine: Engine, status: str, round_: int | None = None) -> None:
    statement = _INSERT_CLOCK.format(
        round_column="" if round_ is None else "round,",
        round_value="" if round_ is None else f"{round_},",
    )
    with engine.begin() as conn:
        conn.execute(text(statement), {"case_id": 1, "status": status, "at": T0})


def _clock_rounds(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (r.round, r.status)
            for r in conn.execute(text("SELECT round, status FROM case_slas ORDER BY round"))
        ]


def test_sla_rounds_migration_makes_every_clock_a_first_round(db_engine: Engine) -> None:
    """0010_sla_rounds: a clock kept before rounds is round 1 of its SLA, later rounds are
    rows beside it (one per round), and rolling back drops the later rounds (the history
    keeps their events) and keeps the first."""
    _works(db_engine)
    migrate.downgrade(db_engine, "0009")
    _insert_clock(db_engine, "met")
    migrate.upgrade(db_engine)
    assert _clock_rounds(db_engine) == [(1, "met")]

    _insert_clock(db_engine, "running", round_=2)
    assert _clock_rounds(db_engine) == [(1, "met"), (2, "running")]
    with pytest.raises(IntegrityError):
        _insert_clock(db_engine, "running", round_=2)  # one row per round

    migrate.downgrade(db_engine, "0009")
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM case_slas")).scalars().all() == ["met"]
    migrate.upgrade(db_engine)
    assert _clock_rounds(db_engine) == [(1, "met")]
    assert _differences(db_engine) == []


def test_unmigrated_database_is_refused_with_a_hint(unmigrated_url: str) -> None:
    engine = create_db_engine(unmigrated_url)
    try:
        with pytest.raises(DatabaseNotReady) as info:
            migrate.ensure_current(engine)
        error = info.value
        assert "has no svcflow schema" in error.message
        assert "svcflow db upgrade" in (error.hint or "")
        assert error.fields["head"] == migrate.head_revision(engine)
        assert "current" not in error.fields
        assert inspect(engine).get_table_names() == []  # checking did not create anything

        migrate.upgrade(engine)
        migrate.ensure_current(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
