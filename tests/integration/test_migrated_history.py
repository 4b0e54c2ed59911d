"""A migrated case's past in KPIs and dwell times, on SQLite and PostgreSQL.

After ``--map-state OLD=NEW`` the time a case spent in OLD counts as time in NEW wherever a
figure is computed per state from the history: the dwell statistics and the stuck list's
``dwelling`` (since the case entered OLD), and the uptime KPI (up from the entry into OLD when
NEW is an up state). The history itself is never rewritten (engine/core/migration.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.migration import MigrationPlan, ParamsChoice
from engine.services import case_migration, inspection, kpis
from engine.services.case_migration import MoveOutcome
from engine.services.inspection import Reason, Settings
from engine.store.models import DwellStat
from tests.conftest import ADMIN, T0
from tests.factories import create_case, fire
from tests.workflows import TICKET

HOUR = timedelta(hours=1)
TICKET_WAITING = TICKET.replace("on_hold", "waiting")  # v2: on_hold renamed


def _ticket(sessions: sessionmaker[Session], now: datetime = T0, **data: Any) -> int:
    return create_case(
        sessions, "service_ticket", {"allowed": True, **data}, version=1, now=now
    ).case.id


def _migrate(
    sessions: sessionmaker[Session], case_id: int, state_map: dict[str, str], now: datetime
) -> None:
    plan = MigrationPlan(
        "service_ticket",
        1,
        2,
        ParamsChoice.KEEP,
        state_map=state_map,
        where=f"case.id == {case_id}",
        reason="renamed a state",
    )
    with sessions() as session, session.begin():
        checked = case_migration.check(session, plan)
        move = case_migration.migrate_case(session, checked, case_id, actor=ADMIN, now=now)
    assert move.outcome is MoveOutcome.MOVED, move.reasons


def test_dwell_in_the_old_state_counts_in_the_new_one_and_dwelling_is_since_the_old_entry(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    publish_workflow(TICKET)
    assert publish_workflow(TICKET_WAITING) == 2
    on_hold = {"on_hold": "waiting"}
    # Four tickets held for 2h on version 1, then moved to version 2.
    for _ in range(4):
        case_id = _ticket(sessions)
        fire(sessions, case_id, "hold", now=T0 + HOUR)
        fire(sessions, case_id, "unhold", now=T0 + 3 * HOUR)
        _migrate(sessions, case_id, on_hold, now=T0 + 4 * HOUR)
    # One moved while on hold and released later: one dwell of 3h, begun in on_hold.
    released = _ticket(sessions)
    fire(sessions, released, "hold", now=T0 + HOUR)
    _migrate(sessions, released, on_hold, now=T0 + 2 * HOUR)
    fire(sessions, released, "unhold", now=T0 + 4 * HOUR)
    # One moved while on hold that is still waiting.
    waiting = _ticket(sessions)
    fire(sessions, waiting, "hold", now=T0 + HOUR)
    _migrate(sessions, waiting, on_hold, now=T0 + 2 * HOUR)
    # One that stays on version 1, held for 1h.
    stayed = _ticket(sessions)
    fire(sessions, stayed, "hold", now=T0 + HOUR)
    fire(sessions, stayed, "unhold", now=T0 + 2 * HOUR)

    with sessions() as session, session.begin():
        inspection.refresh_dwell_stats(session, now=T0 + 5 * HOUR)
        stats = {
            (s.definition_version, s.state): (s.samples, s.p50_seconds, s.p95_seconds)
            for s in session.execute(select(DwellStat)).scalars()
        }

    hours = 3600.0
    assert stats[(2, "waiting")] == (
        5,
        pytest.approx(2 * hours),
        pytest.approx(2.8 * hours),  # 2h, 2h, 2h, 2h, 3h: between the 4th and 5th
    )
    assert (2, "on_hold") not in stats  # version 2 has no such state
    assert stats[(1, "on_hold")] == (1, pytest.approx(hours), pytest.approx(hours))
    assert stats[(2, "received")][0] == 6  # each left 'received' once on the way to hold
    assert stats[(1, "received")][0] == 1

    now = T0 + 12 * HOUR
    with sessions() as session, session.begin():
        findings = inspection.inspect(
            session, now=now, reasons=[Reason.DWELLING], settings=Settings(min_dwell_samples=5)
        )
    (finding,) = [f for f in findings if f.state == "waiting"]
    assert (finding.case_id, finding.since) == (waiting, T0 + HOUR)  # it entered on_hold then


def test_uptime_counts_a_ticket_up_from_its_entry_into_the_old_state(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    """Version 2 renames 'repairing' to 'fixing', the KPI's up state: a ticket that started
    its repair at 11:00 and was moved at 14:00 was down 2 hours, not 5."""
    publish_workflow(TICKET)
    assert publish_workflow(TICKET.replace("repairing", "fixing")) == 2
    october = datetime(2025, 10, 13, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    moved = _ticket(sessions, now=october, device_serial="CT-1")
    fire(sessions, moved, "start", now=october + 2 * HOUR)
    _migrate(sessions, moved, {"repairing": "fixing"}, now=october + 5 * HOUR)
    config = {
        "timezone": "Asia/Shanghai",
        "uptime": {
            "definition": "service_ticket",
            "up_states": ["fixing"],
            "device_field": "device_serial",
        },
    }
    now = october + 10 * HOUR

    with sessions() as session, session.begin():
        (row,) = kpis.monthly_kpis(session, config, month="2025-10", group_by=None, now=now)

    start, _ = kpis.month_bounds("2025-10", "Asia/Shanghai")
    available = (now - start).total_seconds()
    assert row.kpi == "device_uptime" and row.denominator == available
    assert row.numerator == available - 2 * 3600  # down from 09:00 to 11:00 only
