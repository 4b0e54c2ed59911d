"""The hot paths use indexes, on SQLite and PostgreSQL: every statement a fire, a case read, a
due timer's fire and a sweep issue is EXPLAINed against a database of a few thousand repair
tickets (about five armed timers each), and none may scan a large table.

The statements are the real ones, captured as the services run; a statement added later to a
hot path is checked without anyone listing it here. SQLite is checked both before ANALYZE (a
fresh embedded database has no statistics) and after; PostgreSQL after ANALYZE, as its
autovacuum keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.services import cases, inspection, operations, timer_firing
from engine.services.case_detail import case_detail
from engine.services.definitions import publish
from engine.store.models import Timer
from tests.api.conftest import REPAIR, REPAIR_DATA
from tests.conftest import ADMIN, T0, WORKFLOWS

TICKETS = 600
LARGE = {"cases", "case_events", "timers", "case_slas", "idempotency_records", "case_waits"}


@pytest.fixture
def tickets(db_engine: Engine, sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session, session.begin():
        for path in sorted(WORKFLOWS.glob("*.yaml")):
            publish(session, path.read_text("utf-8"), actor="test", now=T0)
        made = [
            cases.create_case(
                session, REPAIR, REPAIR_DATA, actor=ADMIN, now=T0 + timedelta(seconds=n)
            ).case.id
            for n in range(TICKETS)
        ]
    return made


@contextmanager
def _captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _hot_statements(engine: Engine, sessions: sessionmaker[Session], case_id: int) -> list[Any]:
    """Every SELECT/UPDATE/DELETE of a case read, a fire, a timer's fire and a sweep query."""
    now = T0 + timedelta(hours=3)
    with _captured(engine) as seen:
        with sessions() as session, session.begin():
            case_detail(session, case_id, now=now)
        with sessions() as session, session.begin():
            cases.fire(session, case_id, "contact", {"at": now.isoformat()}, actor=ADMIN, now=now)
        with sessions() as session:
            timer_id = (
                session.execute(
                    select(Timer.id).where(Timer.case_id == case_id, Timer.status == "armed")
                )
                .scalars()
                .first()
            )
        assert timer_id is not None
        with sessions() as session, session.begin():
            timer_firing.fire_due_timer(session, timer_id, now=now)
        # The sweep, at an instant when, as on a healthy system, next to nothing is overdue
        # (when most timers are, reading the table in order is the better plan, and taken).
        quiet = T0 + timedelta(minutes=30)
        with sessions() as session, session.begin():
            timer_firing.claim_overdue(session, now=quiet, tolerance=timedelta(seconds=10))
            timer_firing.due_for_delivery(session, after=quiet, until=quiet + timedelta(minutes=2))
            timer_firing.first_deliveries_in(
                session, after=quiet, until=quiet + timedelta(seconds=1), part=1, parts=4
            )
    return seen


def _problems(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """What is wrong with a statement's plan, by the database's own EXPLAIN: a large table
    read whole, or, for a statement about one case, an index that does not find the case
    (the status index finds every armed timer in the database, then filters)."""
    per_case = {t for t in LARGE if f"{t}.case_id = " in statement}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return [p for r in rows if (p := _sqlite_problem(str(r[3]), per_case))]
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
    nodes = list(_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))
    found = [
        f"Seq Scan on {n['Relation Name']}"
        for n in nodes
        if n.get("Node Type") == "Seq Scan" and n.get("Relation Name") in LARGE
    ]
    conditions = " ".join(
        str(n.get("Index Cond", "")) + str(n.get("Recheck Cond", "")) for n in nodes
    )
    found += [f"{t} not found by case_id" for t in per_case if "case_id" not in conditions]
    return found


def _sqlite_problem(detail: str, per_case: set[str]) -> str | None:
    words = detail.split()
    if len(words) < 2 or words[1] not in LARGE:
        return None
    if words[0] == "SCAN":
        return detail
    if words[1] in per_case and "case_id=" not in detail:
        return detail
    return None


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _check(engine: Engine, sessions: sessionmaker[Session], case_id: int) -> None:
    statements = _hot_statements(engine, sessions, case_id)
    assert len(statements) > 10  # the capture saw the paths it means to check
    problems = {s: found for s, p in statements if (found := _problems(engine, s, p))}
    assert problems == {}


def test_hot_paths_use_indexes_before_and_after_statistics(
    db_engine: Engine, sessions: sessionmaker[Session], tickets: list[int]
) -> None:
    if db_engine.dialect.name == "sqlite":
        _check(db_engine, sessions, tickets[len(tickets) // 2])  # a fresh file: no statistics
    with db_engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    _check(db_engine, sessions, tickets[len(tickets) // 3])


def test_the_paused_clocks_rule_reads_its_own_partial_index(
    db_engine: Engine, sessions: sessionmaker[Session], tickets: list[int]
) -> None:
    """``stuck`` counts on every dashboard load and /metrics scrape: the sla_paused rule must
    find the few clocks operators paused through ix_case_slas_paused, on both databases (a
    condition spelt differently from the index's, such as ``IS true``, is not matched)."""
    for case_id in tickets[:3]:
        with sessions() as session, session.begin():
            operations.set_sla_paused(
                session,
                case_id,
                "first_contact",
                True,
                actor=ADMIN,
                reason="customer asked",
                now=T0 + timedelta(minutes=20),
            )
    with db_engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    now = T0 + timedelta(hours=1)
    with _captured(db_engine) as seen, sessions() as session, session.begin():
        found = inspection.inspect(session, now=now, reasons=[inspection.Reason.SLA_PAUSED])
        inspection.count_reason(session, inspection.Reason.SLA_PAUSED, now=now)
    assert sorted(f.case_id for f in found) == tickets[:3]
    assert len(seen) == 2
    for statement, parameters in seen:
        with db_engine.connect() as conn:
            if db_engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                plan = " ".join(str(r[3]) for r in rows)
            else:
                plan = str(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all())
        assert "ix_case_slas_paused" in plan, plan
