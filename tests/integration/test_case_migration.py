"""Moving running cases to another version, on SQLite and PostgreSQL: states renamed and data
transformed, SLA clocks carried over with their paused time, a dry run that writes nothing,
a migration interrupted half way and run again, triggers fired while it runs, and the cases
that cannot move said with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.migration import MigrationPlan, ParamsChoice
from engine.core.sla import BREACH_AFTER
from engine.errors import ConcurrencyConflict, MigrationInvalid
from engine.services import case_migration, cases, timer_firing
from engine.services.case_migration import CaseMove, MoveOutcome
from engine.store.models import Case, CaseEvent, CaseSla, Timer, TimerStatus
from tests.conftest import ADMIN, T0
from tests.factories import create_case, deliver, fire
from tests.workflows import TICKET

HOUR = timedelta(hours=1)

# Version 2 of the service ticket: on_hold is renamed waiting (still the response SLA's
# pause), the team field is gone, every ticket has a priority, and the response SLA warns
# later.
TICKET_V2 = (
    TICKET.replace("on_hold", "waiting")
    .replace("    team: {type: string}\n", "    priority: {type: string, enum: [high, normal]}\n")
    .replace("required: [allowed]", "required: [allowed, priority]")
    .replace("warn_at: [0.5]", "warn_at: [0.75]")
)
assert TICKET_V2 != TICKET and "team" not in TICKET_V2


def _plan(**overrides: Any) -> MigrationPlan:
    values: dict[str, Any] = {
        "definition": "service_ticket",
        "from_version": 1,
        "to_version": 2,
        "params": ParamsChoice.KEEP,
        "state_map": {"on_hold": "waiting"},
        "sets": {"priority": "has(data.team) && data.team == 'icu' ? 'high' : 'normal'"},
        "drops": ("team",),
        "reason": "ticket v2: priorities",
    }
    values.update(overrides)
    return MigrationPlan(**values)


def _run(
    sessions: sessionmaker[Session],
    plan: MigrationPlan,
    *,
    now: Any,
    dry_run: bool = False,
    batch_size: int = 100,
    stop_after: int | None = None,
    between: Callable[[int], None] | None = None,
) -> list[CaseMove]:
    """What the CLI does: batches by id, each case in a transaction of its own."""
    with sessions() as session, session.begin():
        checked = case_migration.check(session, plan)
    moves: list[CaseMove] = []
    after_id = 0
    while True:
        with sessions() as session, session.begin():
            batch = case_migration.next_batch(session, checked, after_id=after_id, limit=batch_size)
        if not batch:
            return moves
        for case_id in batch:
            if stop_after is not None and len(moves) == stop_after:
                return moves  # interrupted
            if between is not None:
                between(case_id)
            with sessions() as session, session.begin():
                if dry_run:
                    move = case_migration.preview_case(session, checked, case_id, now=now)
                else:
                    move = case_migration.migrate_case(
                        session, checked, case_id, actor=ADMIN, now=now
                    )
            moves.append(move)
        after_id = batch[-1]


def _case(sessions: sessionmaker[Session], case_id: int) -> Any:
    with sessions() as session, session.begin():
        return cases.get_case(session, case_id)


def _history(sessions: sessionmaker[Session], case_id: int) -> list[Any]:
    with sessions() as session, session.begin():
        return cases.history(session, case_id)


def _armed(sessions: sessionmaker[Session], case_id: int) -> dict[str, Any]:
    with sessions() as session, session.begin():
        return {
            t.name: t.due_at
            for t in timer_firing.case_timers(session, case_id)
            if t.status == TimerStatus.ARMED.value
        }


@pytest.fixture
def two_versions(publish_workflow: Callable[[str], int]) -> None:
    assert publish_workflow(TICKET) == 1
    assert publish_workflow(TICKET_V2) == 2


def _v1_ticket(sessions: sessionmaker[Session], **data: Any) -> int:
    return create_case(sessions, "service_ticket", {"allowed": True, **data}, version=1).case.id


@pytest.mark.usefixtures("two_versions")
def test_renamed_state_and_transformed_data_move_with_a_migrated_event(
    sessions: sessionmaker[Session],
) -> None:
    held = _v1_ticket(sessions, team="icu", engineer="wang")
    fire(sessions, held, "hold", now=T0 + HOUR)
    plain = _v1_ticket(sessions)

    moves = _run(sessions, _plan(), now=T0 + 2 * HOUR)

    assert [(m.case_id, m.outcome, m.from_state, m.to_state) for m in moves] == [
        (held, MoveOutcome.MOVED, "on_hold", "waiting"),
        (plain, MoveOutcome.MOVED, "received", "received"),
    ]
    case = _case(sessions, held)
    assert (case.definition_version, case.state, case.status) == (2, "waiting", "open")
    assert case.data == {"allowed": True, "engineer": "wang", "priority": "high"}
    assert _case(sessions, plain).data == {"allowed": True, "priority": "normal"}
    last = _history(sessions, held)[-1]
    assert (last.event_type, last.from_state, last.to_state, last.actor) == (
        "migrated",
        "on_hold",
        "waiting",
        ADMIN.name,
    )
    assert last.payload["from_version"] == 1 and last.payload["to_version"] == 2
    assert last.payload["state_map"] == {"on_hold": "waiting"}
    assert last.payload["reason"] == "ticket v2: priorities"
    assert last.payload["dropped"] == ["team"]
    assert last.changes == {"priority": "high"}
    # The case now takes version 2's triggers, by their new names.
    outcome = fire(sessions, held, "unhold", now=T0 + 3 * HOUR)
    assert outcome.case.state == "received"


@pytest.mark.usefixtures("two_versions")
def test_sla_clock_keeps_its_elapsed_and_paused_time_across_versions(
    sessions: sessionmaker[Session],
) -> None:
    """The response SLA (4h, paused on hold) ran 1h, was paused 4h across the migration, and
    ran again: it is due 3h after the resume under version 2, exactly as on version 1."""
    migrated, stayed = _v1_ticket(sessions), _v1_ticket(sessions)
    for case_id in (migrated, stayed):
        fire(sessions, case_id, "hold", now=T0 + HOUR)
    _run(sessions, _plan(where=f"case.id == {migrated}"), now=T0 + 3 * HOUR)
    assert _case(sessions, migrated).state == "waiting"
    assert _case(sessions, stayed).definition_version == 1
    for case_id in (migrated, stayed):
        fire(sessions, case_id, "unhold", now=T0 + 5 * HOUR)

    due = T0 + 5 * HOUR + 3 * HOUR
    with sessions() as session, session.begin():
        rows = {
            r.case_id: r
            for r in session.execute(select(CaseSla).where(CaseSla.sla == "response")).scalars()
        }
    assert rows[migrated].due_at == rows[stayed].due_at == due
    assert rows[migrated].status == "running"
    assert _armed(sessions, migrated)["sla:response:sla_breached:1.0"] == due + BREACH_AFTER
    # Version 2 warns at 75% of 4h (3h of running time: 1h before, 2h after the resume).
    assert _armed(sessions, migrated)["sla:response:sla_warning:0.75"] == T0 + 7 * HOUR
    assert _armed(sessions, stayed)["sla:response:sla_warning:0.5"] == T0 + 6 * HOUR


@pytest.mark.usefixtures("two_versions")
def test_state_timers_are_planned_under_the_new_version_from_the_state_entry(
    sessions: sessionmaker[Session],
) -> None:
    case_id = _v1_ticket(sessions)
    before = _armed(sessions, case_id)
    assert before["remind"] == T0 + 2 * HOUR
    _run(sessions, _plan(), now=T0 + HOUR)
    after = _armed(sessions, case_id)
    # The entry into 'received' still counts from T0: the reminder is due when it was.
    assert after["remind"] == T0 + 2 * HOUR
    with sessions() as session, session.begin():
        statuses = sorted(
            session.execute(
                select(Timer.status).where(Timer.case_id == case_id, Timer.name == "remind")
            ).scalars()
        )
    assert statuses == ["armed", "cancelled"]  # v1's timer gave way to v2's


@pytest.mark.usefixtures("two_versions")
def test_dry_run_writes_nothing_and_says_why_a_case_cannot_move(
    sessions: sessionmaker[Session], row_count: Callable[[type[Any]], int]
) -> None:
    ok = _v1_ticket(sessions, team="icu")
    held = _v1_ticket(sessions)
    fire(sessions, held, "hold", now=T0 + HOUR)
    counts = {m: row_count(m) for m in (Case, CaseEvent, Timer, CaseSla)}
    with sessions() as session, session.begin():
        rows_before = session.execute(select(Case).order_by(Case.id)).scalars().all()
        before = [(c.definition_version, c.state, c.version, c.data) for c in rows_before]

    moves = _run(sessions, _plan(state_map={}), now=T0 + 2 * HOUR, dry_run=True)

    assert moves[0].outcome is MoveOutcome.WOULD_MOVE
    assert moves[0].changes == {"priority": "high"} and moves[0].dropped == ("team",)
    assert moves[1].outcome is MoveOutcome.REFUSED
    assert "state 'on_hold' has no counterpart in version 2" in moves[1].reasons[0]
    assert "--map-state on_hold=" in moves[1].reasons[0]
    assert {m: row_count(m) for m in (Case, CaseEvent, Timer, CaseSla)} == counts
    with sessions() as session, session.begin():
        rows_after = session.execute(select(Case).order_by(Case.id)).scalars().all()
        after = [(c.definition_version, c.state, c.version, c.data) for c in rows_after]
    assert after == before
    assert ok  # the first case is the one that would move


@pytest.mark.usefixtures("two_versions")
def test_data_the_new_version_refuses_is_a_reason_and_the_case_stays(
    sessions: sessionmaker[Session],
) -> None:
    case_id = _v1_ticket(sessions, team="icu")
    (move,) = _run(sessions, _plan(sets={"priority": "'urgent'"}), now=T0 + HOUR)
    assert move.outcome is MoveOutcome.REFUSED
    assert "priority" in move.reasons[0] and "urgent" in move.reasons[0]
    (kept,) = _run(sessions, _plan(sets={"priority": "'high'"}, drops=()), now=T0 + HOUR)
    assert kept.outcome is MoveOutcome.REFUSED
    assert "team" in kept.reasons[0]  # not declared by version 2
    case = _case(sessions, case_id)
    assert (case.definition_version, case.version) == (1, 1)


@pytest.mark.usefixtures("two_versions")
def test_an_interrupted_migration_resumes_and_moves_each_case_once(
    sessions: sessionmaker[Session],
) -> None:
    ids = [_v1_ticket(sessions) for _ in range(5)]
    first = _run(sessions, _plan(), now=T0 + HOUR, batch_size=2, stop_after=3)
    assert [m.case_id for m in first] == ids[:3]
    assert [_case(sessions, i).definition_version for i in ids] == [2, 2, 2, 1, 1]

    second = _run(sessions, _plan(), now=T0 + 2 * HOUR, batch_size=2)
    assert [m.case_id for m in second] == ids[3:]
    assert {m.outcome for m in first + second} == {MoveOutcome.MOVED}
    again = _run(sessions, _plan(), now=T0 + 3 * HOUR)
    assert again == []  # nothing left on version 1
    with sessions() as session, session.begin():
        migrated = session.execute(
            select(CaseEvent.case_id, func.count())
            .where(CaseEvent.event_type == "migrated")
            .group_by(CaseEvent.case_id)
        ).all()
    assert sorted(migrated) == [(i, 1) for i in ids]


@pytest.mark.usefixtures("two_versions")
def test_a_trigger_fired_during_the_migration_is_never_lost(
    sessions: sessionmaker[Session],
) -> None:
    ids = [_v1_ticket(sessions) for _ in range(3)]

    def fire_on_the_last(case_id: int) -> None:
        if case_id == ids[1]:  # the first is moved, the last not yet
            fire(sessions, ids[2], "hold", now=T0 + HOUR)

    moves = _run(sessions, _plan(), now=T0 + HOUR, between=fire_on_the_last)
    assert [(m.case_id, m.outcome, m.to_state) for m in moves] == [
        (ids[0], MoveOutcome.MOVED, "received"),
        (ids[1], MoveOutcome.MOVED, "received"),
        (ids[2], MoveOutcome.MOVED, "waiting"),  # moved from where the fire took it
    ]

    # A fire computed from the case as read before the migration wrote loses the version
    # check: nothing of it is written, and the case stays as migrated.
    late = _v1_ticket(sessions)
    with sessions() as session, session.begin():
        stale = cases.get_case(session, late)
    _run(sessions, _plan(), now=T0 + 2 * HOUR)
    with pytest.raises(ConcurrencyConflict), sessions() as session, session.begin():
        cases.fire(session, late, "start", actor=ADMIN, now=T0 + 2 * HOUR, case=stale)
    case = _case(sessions, late)
    assert (case.definition_version, case.state, case.version) == (2, "received", 2)


@pytest.mark.usefixtures("two_versions")
def test_a_timer_of_the_old_version_delivered_after_the_migration_does_nothing(
    sessions: sessionmaker[Session],
) -> None:
    case_id = _v1_ticket(sessions)
    with sessions() as session, session.begin():
        (old_remind,) = [
            t for t in timer_firing.case_timers(session, case_id) if t.name == "remind"
        ]
    _run(sessions, _plan(), now=T0 + HOUR)
    outcome = deliver(sessions, old_remind.id, T0 + 2 * HOUR)
    assert outcome is not None and "cancelled" in str(outcome)
    assert _case(sessions, case_id).version == 2  # created, migrated: nothing else


@pytest.mark.usefixtures("two_versions")
def test_a_plan_wrong_for_every_case_is_refused_with_every_problem(
    sessions: sessionmaker[Session],
) -> None:
    plan = _plan(
        state_map={"on_hold": "nowhere", "received": "closed"},
        sets={"colour": "'red'", "priority": "data.("},
        reason=" ",
    )
    with pytest.raises(MigrationInvalid) as caught, sessions() as session, session.begin():
        case_migration.check(session, plan)
    problems = caught.value.fields["problems"]
    assert any("no state 'nowhere'" in p for p in problems)
    assert any("final state 'closed'" in p for p in problems)
    assert any("no data field 'colour'" in p for p in problems)
    assert any("does not compile" in p for p in problems)
    assert any("reason is required" in p for p in problems)
