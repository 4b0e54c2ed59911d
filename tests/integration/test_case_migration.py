"""Moving running cases to another version, on SQLite and PostgreSQL: states renamed and data
transformed, SLA clocks carried over with their paused time, a dry run that writes nothing,
a migration interrupted half way and run again, triggers fired while it runs, and the cases
that cannot move said with their reasons.
"""

from __future__ import annotations

import dataclasses
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
from engine.services.definitions import set_parameter
from engine.store import case_store
from engine.store.models import Case, CaseEvent, CaseSla, Timer, TimerStatus
from tests.conftest import ADMIN, T0
from tests.factories import create_case, deliver, fire
from tests.tables import every_row
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


# A parent that lends a child case and waits for its news; the child tells it when it ends.
PARENT = """\
name: mig_parent
title: {en: Parent, zh: 父}
initial: open
states:
  - name: open
    title: {en: Open, zh: 开}
  - name: waiting
    title: {en: Waiting, zh: 等}
  - name: done
    title: {en: Done, zh: 完}
    final: true
transitions:
  - trigger: lend
    source: open
    dest: waiting
    actions:
      - spawn: {definition: mig_child, data: {}}
  - trigger: child_done
    source: waiting
    dest: done
    roles: [system]
"""
CHILD = """\
name: mig_child
title: {en: Child, zh: 子}
initial: out
parent:
  definition: mig_parent
  notify: {final: child_done}
states:
  - name: out
    title: {en: Out, zh: 出}
  - name: back
    title: {en: Back, zh: 回}
    final: true
transitions:
  - trigger: give_back
    source: out
    dest: back
"""


def test_parent_and_child_links_stay_intact_or_the_case_is_refused(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    publish_workflow(PARENT)
    publish_workflow(CHILD)
    parent = create_case(sessions, "mig_parent").case.id
    fire(sessions, parent, "lend")
    with sessions() as session, session.begin():
        (child,) = [c.id for c in case_store.children_of(session, parent)]
    # Version 2 of the parent renames the news the child sends: the child could not reach it.
    assert publish_workflow(PARENT.replace("child_done", "loan_back")) == 2
    plan = MigrationPlan("mig_parent", 1, 2, ParamsChoice.KEEP, reason="rename the news")
    (refused,) = _run(sessions, plan, now=T0 + HOUR)
    assert refused.outcome is MoveOutcome.REFUSED
    assert f"running child case {child} (mig_child) sends child_done" in refused.reasons[0]
    # Version 3 keeps it: the parent moves, and the child's news still reaches it.
    assert publish_workflow(PARENT.replace("en: Parent,", "en: Parent 3,")) == 3
    (moved,) = _run(sessions, dataclasses.replace(plan, to_version=3), now=T0 + HOUR)
    assert moved.outcome is MoveOutcome.MOVED
    fire(sessions, child, "give_back", now=T0 + 2 * HOUR)
    after = _case(sessions, parent)
    assert (after.definition_version, after.state) == (3, "done")
    assert _case(sessions, child).parent_id == parent

    # A child moved to a version that names no parent would lose its link.
    other = create_case(sessions, "mig_parent").case.id
    fire(sessions, other, "lend")
    orphan_v2 = CHILD.replace(
        "parent:\n  definition: mig_parent\n  notify: {final: child_done}\n", ""
    )
    assert publish_workflow(orphan_v2) == 2
    child_plan = MigrationPlan("mig_child", 1, 2, ParamsChoice.KEEP, reason="no parent")
    moves = _run(sessions, child_plan, now=T0 + 3 * HOUR)
    assert {m.outcome for m in moves} == {MoveOutcome.REFUSED}
    assert "does not name that parent" in moves[0].reasons[0]


PARAMS_V1 = """\
name: mig_params
title: {en: Params, zh: 参数}
initial: open
parameters:
  limit: {type: integer, default: 3}
states:
  - name: open
    title: {en: Open, zh: 开}
  - name: done
    title: {en: Done, zh: 完}
    final: true
transitions:
  - trigger: finish
    source: open
    dest: done
    guard: "params.limit > 0"
"""


def test_parameters_are_kept_or_snapshotted_as_the_plan_says(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    publish_workflow(PARAMS_V1)
    kept, fresh = (create_case(sessions, "mig_params").case.id for _ in range(2))
    with sessions() as session, session.begin():
        set_parameter(session, "mig_params", "limit", 5, actor="owner", now=T0)
    v2 = PARAMS_V1.replace(
        "  limit: {type: integer, default: 3}\n",
        "  limit: {type: integer, default: 3}\n  window: {type: duration, default: 2h}\n",
    )
    assert publish_workflow(v2) == 2
    keep = MigrationPlan(
        "mig_params", 1, 2, ParamsChoice.KEEP, reason="r", where=f"case.id == {kept}"
    )
    _run(sessions, keep, now=T0 + HOUR)
    snapshot = dataclasses.replace(keep, params=ParamsChoice.SNAPSHOT, where=None)
    _run(sessions, snapshot, now=T0 + HOUR)
    assert _case(sessions, kept).params == {"limit": 3, "window": "2h"}
    assert _case(sessions, fresh).params == {"limit": 5, "window": "2h"}
    assert _history(sessions, fresh)[-1].payload["params"] == "snapshot"


@pytest.mark.usefixtures("two_versions")
def test_a_fire_that_lands_between_the_migrations_read_and_write_wins_and_is_kept(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration read the case, a trigger committed, then the migration wrote: the
    version guard refuses that write, and the case is read again and moved from where the
    trigger took it, with nothing of the first attempt left behind."""
    case_id = _v1_ticket(sessions)
    stale = _case(sessions, case_id)
    fire(sessions, case_id, "hold", now=T0 + HOUR)  # committed after the migration's read
    reads = iter([stale])
    real = case_store.get_case

    def read_once_stale(session: Session, wanted: int) -> Any:
        return next(reads, None) or real(session, wanted)

    monkeypatch.setattr(case_migration.case_store, "get_case", read_once_stale)
    (move,) = _run(sessions, _plan(), now=T0 + 2 * HOUR)
    assert (move.outcome, move.from_state, move.to_state) == (
        MoveOutcome.MOVED,
        "on_hold",
        "waiting",
    )
    history = _history(sessions, case_id)
    assert [e.event_type for e in history] == ["created", "transition", "migrated"]
    assert history[1].trigger == "hold"


@pytest.mark.usefixtures("two_versions")
def test_a_past_the_new_version_would_not_have_allowed_is_said_not_refused(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    started = _v1_ticket(sessions)
    fire(sessions, started, "start", now=T0 + HOUR)
    only_after_waiting = TICKET_V2.replace(
        "  - trigger: start\n    source: received\n", "  - trigger: start\n    source: waiting\n"
    )
    assert publish_workflow(only_after_waiting) == 3
    plan = dataclasses.replace(_plan(), to_version=3, where=f"case.id == {started}")

    (move,) = _run(sessions, plan, now=T0 + 2 * HOUR, dry_run=True)

    assert move.outcome is MoveOutcome.WOULD_MOVE
    assert move.warnings == (
        "event 2: 'start' from 'received' to 'repairing' is not a transition of version 3",
    )
    (fine,) = _run(sessions, dataclasses.replace(plan, to_version=2), now=T0, dry_run=True)
    assert fine.warnings == ()


# Version 3: a visit timer in 'received' at the instant the case's data names. A case the plan
# gives no readable instant cannot have that timer planned: the dry run must say so.
TICKET_V3 = TICKET_V2.replace(
    "    priority: {type: string, enum: [high, normal]}\n",
    "    priority: {type: string, enum: [high, normal]}\n    visit_at: {type: string}\n",
).replace(
    "      - {name: remind, after: 2h, trigger: remind}\n",
    "      - {name: remind, after: 2h, trigger: remind}\n"
    '      - {name: visit, at: "timestamp(data.visit_at)", trigger: remind}\n',
)


@pytest.mark.usefixtures("two_versions")
def test_the_dry_run_says_which_cases_cannot_have_their_timers_planned_and_writes_nothing(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    assert publish_workflow(TICKET_V3) == 3
    dated = _v1_ticket(sessions, team="icu")
    undated = _v1_ticket(sessions)
    held = _v1_ticket(sessions)
    fire(sessions, held, "hold", now=T0 + HOUR)
    plan = _plan(
        to_version=3,
        sets={
            "priority": "'normal'",
            "visit_at": "has(data.team) ? '2025-06-02T08:00:00Z' : 'when the engineer can'",
        },
    )
    before = every_row(sessions)

    dry = _run(sessions, plan, now=T0 + 2 * HOUR, dry_run=True)

    assert every_row(sessions) == before
    outcomes = {m.case_id: m for m in dry}
    assert outcomes[dated].outcome is MoveOutcome.WOULD_MOVE
    assert outcomes[held].outcome is MoveOutcome.WOULD_MOVE  # 'waiting' has no timer
    refused = outcomes[undated]
    assert refused.outcome is MoveOutcome.REFUSED
    (reason,) = refused.reasons
    assert "cannot be planned under version 3" in reason and "states[0].timers[1].at" in reason
    # Applying the same plan refuses the same case for the same reason, and moves the others.
    applied = {m.case_id: m for m in _run(sessions, plan, now=T0 + 2 * HOUR)}
    assert applied[undated].reasons == refused.reasons
    assert [applied[i].outcome for i in (dated, held)] == [MoveOutcome.MOVED] * 2
    assert _case(sessions, undated).definition_version == 1
    assert _armed(sessions, dated)["visit"] == T0.replace(
        year=2025, month=6, day=2, hour=8, minute=0, second=0, microsecond=0
    )


@pytest.mark.usefixtures("two_versions")
def test_the_dry_run_reports_every_per_case_problem_and_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    """Unmapped state, data invalid after the transforms, a --set or --where failing on the
    case: each said per case in the dry run, every table as it was."""
    unmapped = _v1_ticket(sessions, team="ops")
    fire(sessions, unmapped, "hold", now=T0 + HOUR)
    invalid = _v1_ticket(sessions, team="ops")
    failing_set = _v1_ticket(sessions, engineer="wang")
    failing_where = _v1_ticket(sessions, team="x", engineer="zhao")
    plan = _plan(
        state_map={},
        sets={
            "priority": "data.team == 'ops' ? 'someday' : (data.team == 'icu' ? 'high' : 'normal')"
        },
        where="!has(data.engineer) || data.engineer == 'wang' || data.missing",
    )
    before = every_row(sessions)

    dry = {m.case_id: m for m in _run(sessions, plan, now=T0 + 2 * HOUR, dry_run=True)}

    assert every_row(sessions) == before
    assert all(m.outcome is MoveOutcome.REFUSED for m in dry.values())
    assert "no counterpart in version 2" in dry[unmapped].reasons[0]
    assert "someday" in dry[unmapped].reasons[1]  # and its data after the transforms
    assert "someday" in dry[invalid].reasons[0]
    assert dry[failing_set].reasons[0].startswith("--set priority")  # it has no team
    assert dry[failing_where].reasons[0].startswith("--where")
