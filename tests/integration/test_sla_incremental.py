"""Property: SLA clocks advanced event by event (the state kept in ``case_slas``) always agree
with clocks recomputed from the whole history, whatever a case goes through: transitions in
and out of pause states, self-loops, operator pauses and resumes, warnings and breaches fired
by their timers, cancellation, time passing in random steps across working and non-working
hours, and a calendar edited half-way; for clocks with rounds, every round. The armed SLA
timers are exactly the plans of the recomputed clocks, and a timer row is replaced only when
its due instant moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from engine import errors
from engine.core.definition import SlaSpec
from engine.core.machine import Actor
from engine.core.records import EventRecord
from engine.core.sla import (
    ClockState,
    ClockStatus,
    Ruler,
    compute_clocks,
    plan_sla_timers,
    ruler_for,
    walk_rounds,
)
from engine.services import cases, operations, sla_clocks, timer_firing
from engine.services.calendars import save_calendar
from engine.services.definitions import get_definition, publish
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.models import CalendarRecord, CaseSla, Timer
from tests.conftest import ADMIN, T0

NAME = "prop_sla"
DEFINITION = f"""\
name: {NAME}
title: {{en: SLA property, zh: SLA 性质}}
initial: new
data_schema:
  type: object
  properties:
    fix_hours: {{type: integer, minimum: 1}}
parameters:
  answer_within:
    type: duration
    default: 5h
    title: {{en: Answer within, zh: 答复时限}}
states:
  - {{name: new, title: {{en: New, zh: 新}}}}
  - {{name: working, title: {{en: Working, zh: 处理中}}}}
  - {{name: waiting, title: {{en: Waiting for the customer, zh: 等待客户}}}}
  - {{name: done, title: {{en: Done, zh: 完成}}, final: true}}
transitions:
  - {{trigger: start, source: new, dest: working}}
  - {{trigger: wait, source: working, dest: waiting}}
  - {{trigger: resume, source: waiting, dest: working}}
  - {{trigger: note, source: new, dest: new}}
  - {{trigger: note, source: working, dest: working}}
  - {{trigger: note, source: waiting, dest: waiting}}
  - {{trigger: finish, source: [working, waiting], dest: done}}
  - {{trigger: escalate, source: new, dest: new}}
  - {{trigger: escalate, source: working, dest: working}}
  - {{trigger: escalate, source: waiting, dest: waiting}}
  - trigger: reprioritise
    source: new
    dest: new
    actions:
      - set: {{fix_hours: "has(data.fix_hours) ? data.fix_hours % 5 + 1 : 3"}}
  - trigger: reprioritise
    source: working
    dest: working
    actions:
      - set: {{fix_hours: "has(data.fix_hours) ? data.fix_hours % 5 + 1 : 3"}}
  - trigger: reprioritise
    source: waiting
    dest: waiting
    actions:
      - set: {{fix_hours: "has(data.fix_hours) ? data.fix_hours % 5 + 1 : 3"}}
slas:
  - name: response
    title: {{en: Response, zh: 响应}}
    target: 2h
    start: {{states: [new]}}
    stop: {{triggers: [start]}}
    warn_at: [0.5]
    on_breach: {{trigger: escalate}}
  - name: resolution
    title: {{en: Resolution, zh: 解决}}
    target: 2d
    calendar: cn-workdays
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{states: [done]}}
    warn_at: [0.5, 0.8]
  - name: hours
    title: {{en: Working hours, zh: 工时}}
    target: 6h
    calendar: cn-workdays
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{states: [done]}}
    warn_at: [0.75]
  # A target from a parameter (fixed for the case's life) and one from the case's data,
  # which ``reprioritise`` changes while the clock runs: the fast path that skips a clock an
  # event cannot touch must still see a target that moved.
  - name: answer
    title: {{en: Answer, zh: 答复}}
    target: {{param: answer_within}}
    start: {{states: [new]}}
    stop: {{states: [done]}}
    warn_at: [0.5]
  - name: fix
    title: {{en: Fix, zh: 修复}}
    target:
      expr: "has(data.fix_hours) ? duration(string(data.fix_hours) + 'h') : duration('4h')"
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{states: [done]}}
    warn_at: [0.5]
  # Rounds: a spell of work is clocked each time the case enters ``working`` (a new round
  # after each wait), and ``reprioritise`` ends one round of ``redo`` and begins the next.
  - name: spell
    title: {{en: Spell of work, zh: 一段处理}}
    target: 3h
    calendar: cn-workdays
    rounds: repeat
    start: {{states: [working]}}
    stop: {{triggers: [wait]}}
    warn_at: [0.5]
    on_breach: {{trigger: escalate}}
  - name: redo
    title: {{en: Redo, zh: 重做}}
    target: 1h
    rounds: repeat
    start: {{triggers: [start, reprioritise]}}
    pause: {{states: [waiting]}}
    stop: {{triggers: [reprioritise]}}
  # A target in calendar months: its length depends on when the clock starts.
  - name: loan
    title: {{en: Loan, zh: 借用}}
    target: 1 month
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{states: [done]}}
    warn_at: [0.5]
  # A condition and an earlier instant: ``cond`` applies while fix_hours is not 2 (which
  # ``reprioritise`` cycles through, so rounds end not applicable half-way, or never run);
  # ``since`` counts from the case's creation though it starts in ``working``.
  - name: cond
    title: {{en: Conditional, zh: 有条件}}
    target: 3h
    rounds: repeat
    when: "!has(data.fix_hours) || data.fix_hours != 2"
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{triggers: [wait]}}
    warn_at: [0.5]
  - name: since
    title: {{en: Since creation, zh: 自创建起}}
    target: 1d
    calendar: cn-workdays
    counted_from: case.created_at
    start: {{states: [working]}}
    pause: {{states: [waiting]}}
    stop: {{states: [done]}}
    warn_at: [0.5]
"""
USER = Actor("prop", frozenset({"admin"}))
TRIGGERS = ["start", "wait", "resume", "note", "finish", "reprioritise"]
CLOCKS = [
    "response",
    "resolution",
    "hours",
    "answer",
    "fix",
    "spell",
    "redo",
    "loan",
    "cond",
    "since",
]

step = st.one_of(
    st.tuples(st.just("fire"), st.sampled_from(TRIGGERS)),
    st.tuples(st.just("pause"), st.sampled_from(CLOCKS)),
    st.tuples(st.just("resume_sla"), st.sampled_from(CLOCKS)),
    # A pause given a resume time (hours ahead): a timer ends it.
    st.tuples(
        st.just("pause_until"),
        st.tuples(
            st.sampled_from(CLOCKS),
            st.integers(min_value=1, max_value=40),
        ),
    ),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=60 * 60 * 30)),  # seconds
    # A day off from tomorrow on: an edit of days already measured re-derives open clocks and
    # leaves stopped ones as recorded (tested on their own below).
    st.tuples(st.just("calendar"), st.integers(min_value=1, max_value=20)),
    st.tuples(st.just("cancel"), st.just("")),
)


def reference_rounds(
    sla: SlaSpec, events: Sequence[EventRecord], ruler: Ruler, finals: frozenset[str]
) -> list[ClockState]:
    """The clock's rounds by a plain reading of its rules over the whole history, written
    apart from engine.core.sla.advance: the reference both the engine's paths must match. A
    round starts at the start condition (the first, or with ``rounds: repeat`` any met once
    the round before has stopped, the stopping event included, unless that event ends the
    case), is paused in a pause state or by an operator, and stops at the stop condition, a
    final state or a cancellation."""
    done: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None

    def begin(e: EventRecord) -> dict[str, Any]:
        paused = e.to_state in sla.pause.states
        return {
            "phase": ClockStatus.PAUSED if paused else ClockStatus.RUNNING,
            "started": e.at,
            "stopped": None,
            "since": None if paused else e.at,
            "banked": timedelta(0),
            "manual": False,
            "paused_at": None,
            "resume_at": None,
        }

    for e in events:
        entered = e.event_type in ("created", "transition", "forced") and (
            e.event_type == "created" or e.from_state != e.to_state
        )

        def meets(condition: Any, e: EventRecord = e, entered: bool = entered) -> bool:
            return (entered and e.to_state in condition.states) or (
                e.event_type == "transition" and e.trigger in condition.triggers
            )

        ends = e.event_type == "cancelled" or (entered and e.to_state in finals)
        again = sla.repeats and meets(sla.start) and not ends
        if current is None:
            if not done and meets(sla.start):
                current = begin(e)
            continue
        if current["phase"] in (ClockStatus.MET, ClockStatus.CANCELLED):
            if again and current["phase"] is ClockStatus.MET:
                done.append(current)
                current = begin(e)
            continue
        if meets(sla.stop) or ends:
            if current["since"] is not None:
                current["banked"] += ruler.between(current["since"], e.at)
            current["phase"] = (
                ClockStatus.CANCELLED if e.event_type == "cancelled" else ClockStatus.MET
            )
            current["stopped"], current["since"] = e.at, None
            if again:
                done.append(current)
                current = begin(e)
            continue
        if e.event_type == "sla_paused" and e.payload.get("sla") == sla.name:
            current["manual"], current["paused_at"] = True, e.at
            given = e.payload.get("resume_at")
            current["resume_at"] = datetime.fromisoformat(given) if given else None
        if e.event_type == "sla_resumed" and e.payload.get("sla") == sla.name:
            current["manual"], current["paused_at"], current["resume_at"] = False, None, None
        paused = current["manual"] or e.to_state in sla.pause.states
        if current["phase"] is ClockStatus.RUNNING and paused and current["since"] is not None:
            current["banked"] += ruler.between(current["since"], e.at)
            current["phase"], current["since"] = ClockStatus.PAUSED, None
        elif current["phase"] is ClockStatus.PAUSED and not paused:
            current["phase"], current["since"] = ClockStatus.RUNNING, e.at
    rounds = [*done, current] if current is not None else []
    states = []
    for number, fields in enumerate(rounds or [None], start=1):
        mine = [
            e
            for e in events
            if e.payload.get("sla") == sla.name and e.payload.get("round", 1) == number
        ]
        warnings = [e for e in mine if e.event_type == "sla_warning"]
        recorded = {
            "warned": frozenset(float(e.payload["fraction"]) for e in warnings),
            "warned_at": min((e.at for e in warnings), default=None),
            "breach_recorded": any(e.event_type == "sla_breached" for e in mine),
            "round": number,
        }
        if fields is None:  # never started
            states.append(ClockState(**recorded))
            continue
        states.append(
            ClockState(
                phase=fields["phase"],
                started_at=fields["started"],
                stopped_at=fields["stopped"],
                running_since=fields["since"],
                banked=fields["banked"],
                manual_pause=fields["manual"],
                paused_at=fields["paused_at"],
                resume_at=fields["resume_at"],
                **recorded,
            )
        )
    return states


def _armed_sla_timers(session: Session, case_id: int) -> set[tuple[str, datetime]]:
    rows = session.execute(
        select(Timer.name, Timer.due_at).where(
            Timer.case_id == case_id, Timer.status == "armed", Timer.sla.is_not(None)
        )
    ).all()
    return {(r.name, r.due_at) for r in rows}


def _check(session: Session, case_id: int, now: datetime) -> None:
    """Kept state == recomputed state == the reference's, for every clock; the clocks read
    from kept state == clocks from the history; armed timers == the recomputed plans."""
    case = case_store.get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    history = case_store.events_of(session.connection(), case_id)
    calendars = LazyCalendars(session)
    for sla in definition.slas:
        ruler = ruler_for(sla, data=case.data, params=case.params, now=now, calendars=calendars)
        facts = sla_clocks.facts_of(definition, case, calendars)
        recomputed = walk_rounds(sla, history, ruler, definition.final_states, facts)
        if not sla.reads_case:  # the reference below reads neither when nor counted_from
            assert recomputed == reference_rounds(sla, history, ruler, definition.final_states)
        rows = (
            session.connection()
            .execute(
                select(CaseSla.__table__)
                .where(CaseSla.case_id == case_id, CaseSla.sla == sla.name)
                .order_by(CaseSla.round)
            )
            .all()
        )
        kept = [sla_clocks.kept_state(row, ruler) for row in rows]
        assert kept == recomputed, (
            sla.name,
            [(e.event_type, e.trigger, e.to_state) for e in history],
        )
        assert [(r.round, r.phase) for r in rows] == [
            (state.round, state.phase.value) for state in recomputed
        ]
        if not sla.repeats:
            assert len(recomputed) == 1
    kept_clocks = sla_clocks.clocks(session, definition, case, now=now)
    assert kept_clocks == compute_clocks(
        definition, history, data=case.data, params=case.params, now=now, calendars=calendars
    )
    planned = set()
    if case.status == "open":
        planned = {
            (p.name, p.due_at)
            for p in plan_sla_timers(
                definition,
                history,
                data=case.data,
                params=case.params,
                now=now,
                calendars=calendars,
            )
        }
    assert _armed_sla_timers(session, case_id) == planned


def _fire_due_sla_timers(sessions: sessionmaker[Session], case_id: int, now: datetime) -> None:
    """Deliver every SLA timer due by ``now``, as a worker would, each at its due instant."""
    while True:
        with sessions() as session:
            due = session.execute(
                select(Timer.id, Timer.due_at)
                .where(
                    Timer.case_id == case_id,
                    Timer.status == "armed",
                    Timer.sla.is_not(None),
                    Timer.due_at <= now,
                )
                .order_by(Timer.due_at, Timer.id)
                .limit(1)
            ).first()
        if due is None:
            return
        with sessions() as session, session.begin():
            timer_firing.fire_due_timer(session, due.id, now=due.due_at)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, max_size=25))
# An operator's pause outliving the pause state it was given in, across a working-day edge.
@example(
    steps=[
        ("fire", "start"),
        ("wait", 3600),
        ("pause", "resolution"),
        ("fire", "wait"),
        ("resume_sla", "resolution"),
        ("wait", 86_400),
        ("fire", "resume"),
        ("wait", 7200),
    ]
)
# A pause given a resume time, ended by its timer while the case waits in a pause state.
@example(
    steps=[
        ("fire", "start"),
        ("pause_until", ("resolution", 2)),
        ("fire", "wait"),
        ("wait", 3 * 3600),
        ("fire", "resume"),
        ("wait", 3600),
    ]
)
# A self-loop that touches no clock's state but moves a running clock's target (the fast path
# may skip a clock only when its target cannot have moved), then self-loops that move nothing.
@example(
    steps=[
        ("fire", "start"),
        ("wait", 600),
        ("fire", "reprioritise"),
        ("fire", "note"),
        ("wait", 3600),
        ("fire", "reprioritise"),
        ("fire", "wait"),
        ("fire", "reprioritise"),
        ("fire", "resume"),
    ]
)
# Rounds: spell breached in its first round, a second spell after the wait; redo restarted by
# each reprioritise, one of its rounds paused by an operator when it stops, then breached.
@example(
    steps=[
        ("fire", "start"),
        ("wait", 6 * 3600),
        ("fire", "wait"),
        ("fire", "resume"),
        ("fire", "reprioritise"),
        ("pause", "redo"),
        ("fire", "reprioritise"),
        ("wait", 2 * 3600),
        ("fire", "wait"),
        ("fire", "resume"),
        ("fire", "finish"),
    ]
)
# A round restarted at the instant its predecessor started is due when that one was: its
# breach is its own, not the met round's (the kept timer once carried the old round).
@example(steps=[("fire", "start"), ("fire", "reprioritise"), ("wait", 4798)])
def test_clocks_kept_by_events_agree_with_clocks_recomputed_from_history(
    sessions: sessionmaker[Session], steps: list[tuple[str, Any]]
) -> None:
    with sessions() as session, session.begin():
        # Each example starts from the built-in calendar: hypothesis runs many examples, and
        # replays a failing one, on this test's one database.
        session.execute(delete(CalendarRecord))
        publish(session, DEFINITION, actor="test", now=T0)
        case_id = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
    now = T0
    days_off: set[date] = set()
    for kind, arg in steps:
        try:
            with sessions() as session, session.begin():
                if kind == "fire":
                    cases.fire(session, case_id, arg, {}, actor=USER, now=now)
                elif kind in ("pause", "resume_sla"):
                    operations.set_sla_paused(
                        session, case_id, arg, kind == "pause", actor=USER, reason="r", now=now
                    )
                elif kind == "pause_until":
                    operations.set_sla_paused(
                        session,
                        case_id,
                        arg[0],
                        True,
                        actor=USER,
                        reason="r",
                        now=now,
                        resume_at=now + timedelta(hours=arg[1]),
                    )
                elif kind == "cancel":
                    cases.cancel_case(session, case_id, actor=USER, now=now, reason="r")
                elif kind == "calendar":
                    days_off.add((now + timedelta(days=arg)).date())
                    save_calendar(
                        session,
                        "cn-workdays",
                        actor="test",
                        now=now,
                        overrides={"holidays_add": sorted(d.isoformat() for d in days_off)},
                    )
        except errors.SvcflowError:
            pass  # refused (wrong state, clock not running, case closed): nothing changed
        if kind == "wait":
            _fire_due_sla_timers(sessions, case_id, now + timedelta(seconds=arg))
            now += timedelta(seconds=arg)
        with sessions() as session, session.begin():
            _check(session, case_id, now)


def test_self_loops_add_no_timer_rows_and_read_no_history(
    sessions: sessionmaker[Session],
) -> None:
    """286 self-loop fires once left a repair ticket with 1,148 timer rows: every fire
    cancelled and re-armed every SLA timer. Now a fire that moves no due instant touches none."""
    with sessions() as session, session.begin():
        publish(session, DEFINITION, actor="test", now=T0)
        case_id = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
        cases.fire(session, case_id, "start", {}, actor=USER, now=T0)

    def timer_rows() -> list[tuple[int, str]]:
        with sessions() as session:
            return [
                (r.id, r.status)
                for r in session.execute(
                    select(Timer.id, Timer.status).where(Timer.case_id == case_id)
                )
            ]

    before = timer_rows()
    for n in range(50):
        with sessions() as session, session.begin():
            cases.fire(session, case_id, "note", {}, actor=USER, now=T0 + timedelta(minutes=n))

    assert timer_rows() == before
    # resolution 0.5, 0.8, 1; hours 0.75, 1; answer 0.5, 1; fix 0.5, 1; spell 0.5, 1; redo 1;
    # loan 0.5, 1; cond 0.5, 1; since 0.5, 1
    assert len([s for _, s in before if s == "armed"]) == 18


def test_a_calendar_edit_re_derives_a_paused_clock_and_leaves_a_stopped_one_as_recorded(
    sessions: sessionmaker[Session],
) -> None:
    """Both clocks ran on Tuesday 30 September 2025 from 10:00; then one was paused (no timer
    is armed for it) and the other stopped. Declaring that Tuesday a day off afterwards
    re-derives the paused clock (its banked hours came from a day that is no longer a working
    day); the stopped one keeps what it measured, its result being a record."""
    with sessions() as session, session.begin():
        session.execute(delete(CalendarRecord))
        publish(session, DEFINITION, actor="test", now=T0)
        paused = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
        stopped = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
        for case_id in (paused, stopped):
            cases.fire(session, case_id, "start", {}, actor=USER, now=T0)
        cases.fire(session, paused, "wait", {}, actor=USER, now=T0 + timedelta(hours=3))
        cases.fire(session, stopped, "finish", {}, actor=USER, now=T0 + timedelta(hours=3))

    def hours(case_id: int) -> float:
        with sessions() as session:
            row = session.execute(
                select(CaseSla.banked_seconds).where(
                    CaseSla.case_id == case_id, CaseSla.sla == "hours"
                )
            ).scalar_one()
        return float(row) / 3600

    assert (hours(paused), hours(stopped)) == (2.0, 2.0)  # 10:00-13:00 less the lunch hour
    with sessions() as session, session.begin():
        save_calendar(
            session,
            "cn-workdays",
            actor="test",
            now=T0 + timedelta(hours=4),
            overrides={"holidays_add": ["2025-09-30"]},
        )
        _check(session, paused, T0 + timedelta(hours=4))

    assert (hours(paused), hours(stopped)) == (0.0, 2.0)
