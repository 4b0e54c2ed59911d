"""What the hot paths (a fire, a due timer, a fire's response) read, and the caches that let
them read less staying correct: a calendar edited by another process is honoured, an edit in
the same transaction too, and counters are read only by a step that reads them.

Statements are counted with a ``before_cursor_execute`` listener on the test's engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.services import cases, operations, scheduling, timer_firing
from engine.services.calendars import load_calendars, save_calendar
from engine.services.case_detail import case_detail
from engine.services.definitions import get_definition
from engine.store.database import create_db_engine, session_factory
from engine.store.models import CaseSla, Timer
from tests.conftest import ADMIN, T0

HOUR = timedelta(hours=1)
HOLIDAY = date(2025, 10, 14)  # a working Tuesday, unless a calendar edit says otherwise

COUNTED = """\
name: it_counted
title: {en: Counted, zh: 计数}
initial: open
data_schema:
  type: object
  required: [serial]
  properties:
    serial: {type: string}
counters:
  repairs: {key: data.serial}
states:
  - {name: open, title: {en: Open, zh: 打开}}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - {trigger: note, source: open, dest: open}
  - trigger: repair
    source: open
    dest: open
    actions:
      - count: repairs
  - trigger: finish
    source: open
    dest: done
    guard: "counters.repairs >= 2"
"""

TIMED = """\
name: it_timed
title: {en: Timed, zh: 定时}
initial: waiting
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - {name: expiry, after: 1h, trigger: expire}
  - {name: working, title: {en: Working, zh: 处理中}}
  - {name: expired, title: {en: Expired, zh: 已过期}}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - {trigger: expire, source: waiting, dest: expired}
  - {trigger: start, source: [waiting, expired], dest: working}
  - {trigger: note, source: [waiting, working], dest: working}
  - {trigger: finish, source: working, dest: done}
slas:
  - name: response
    title: {en: Response, zh: 响应}
    target: 2h
    start: {states: [waiting]}
    stop: {triggers: [start]}
    warn_at: [0.5]
  - name: work
    title: {en: Work, zh: 工作}
    target: 1d
    calendar: cn-workdays
    start: {states: [working]}
    stop: {states: [done]}
"""


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _reads(seen: list[str], table: str) -> int:
    return len([s for s in seen if s.startswith("SELECT") and re.search(rf"\bFROM {table}\b", s)])


def test_counters_are_read_only_by_a_step_that_reads_them(
    sessions: sessionmaker[Session], db_engine: Engine, publish_workflow
) -> None:
    """A step whose guards and actions do not read ``counters`` reads none and records none
    in its event's context; a ``count`` action still adds to its counter."""
    publish_workflow(COUNTED)
    with sessions() as session, session.begin():
        case_id = cases.create_case(session, "it_counted", {"serial": "SN-1"}, actor=ADMIN, now=T0)
        case_id = case_id.case.id
    with statements(db_engine) as seen, sessions() as session, session.begin():
        noted = cases.fire(session, case_id, "note", {}, actor=ADMIN, now=T0)
        repaired = cases.fire(session, case_id, "repair", {}, actor=ADMIN, now=T0)
        cases.fire(session, case_id, "repair", {}, actor=ADMIN, now=T0)
    assert _reads(seen, "counters") == 0
    assert noted.event.context is None
    assert repaired.event.context is None
    with statements(db_engine) as seen, sessions() as session, session.begin():
        finished = cases.fire(session, case_id, "finish", {}, actor=ADMIN, now=T0)
    assert _reads(seen, "counters") == 1
    assert finished.event.context == {"counters": {"repairs": 2}}
    assert finished.case.state == "done"


def test_a_calendar_edited_by_another_process_is_honoured_by_the_next_transaction(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Calendars are kept for one transaction only: an edit committed elsewhere is seen by
    this process's next transaction, as it was when every use read them."""
    with sessions() as session, session.begin():
        assert load_calendars(session)["cn-workdays"].is_working_day(HOLIDAY)

    elsewhere = create_db_engine(db_url)  # another process's engine and sessions
    try:
        with session_factory(elsewhere)() as session, session.begin():
            save_calendar(
                session,
                "cn-workdays",
                actor="admin",
                now=T0,
                overrides={"holidays_add": [HOLIDAY.isoformat()]},
            )
    finally:
        elsewhere.dispose()

    with sessions() as session, session.begin():
        assert not load_calendars(session)["cn-workdays"].is_working_day(HOLIDAY)


def test_calendars_are_read_once_per_transaction_and_an_edit_in_it_is_seen(
    sessions: sessionmaker[Session], db_engine: Engine
) -> None:
    with statements(db_engine) as seen, sessions() as session, session.begin():
        first = load_calendars(session)
        load_calendars(session)
        assert _reads(seen, "calendars") == 1
        save_calendar(
            session,
            "cn-workdays",
            actor="admin",
            now=T0,
            overrides={"holidays_add": [HOLIDAY.isoformat()]},
        )
        assert first["cn-workdays"].is_working_day(HOLIDAY)
        assert not load_calendars(session)["cn-workdays"].is_working_day(HOLIDAY)
    with statements(db_engine) as seen, sessions() as session, session.begin():
        assert not load_calendars(session)["cn-workdays"].is_working_day(HOLIDAY)
    assert _reads(seen, "calendars") == 1  # a new transaction reads them again


def test_a_due_timer_reads_its_case_once(
    sessions: sessionmaker[Session], db_engine: Engine, publish_workflow
) -> None:
    publish_workflow(TIMED)
    with sessions() as session, session.begin():
        case_id = cases.create_case(session, "it_timed", {}, actor=ADMIN, now=T0).case.id
        timer_id = session.execute(
            select(Timer.id).where(Timer.case_id == case_id, Timer.name == "expiry")
        ).scalar_one()
    with statements(db_engine) as seen, sessions() as session, session.begin():
        outcome = timer_firing.fire_due_timer(session, timer_id, now=T0 + HOUR)
    assert outcome.result is timer_firing.FireResult.FIRED
    case_reads = [s for s in seen if s.startswith("SELECT") and re.search(r"\bFROM cases\b", s)]
    assert len(case_reads) == 1, case_reads  # the read that locks it, through its timer
    with sessions() as session:
        assert cases.get_case(session, case_id).state == "expired"
        assert session.get(Timer, timer_id).status == "fired"  # type: ignore[union-attr]


def test_a_fire_s_response_starts_from_the_clocks_the_fire_kept(
    sessions: sessionmaker[Session], db_engine: Engine, publish_workflow
) -> None:
    """The response to a fire (case_detail in the fire's transaction) does not read the
    clocks the fire has just written; a fresh transaction does, and they agree."""
    publish_workflow(TIMED)
    with sessions() as session, session.begin():
        case_id = cases.create_case(session, "it_timed", {}, actor=ADMIN, now=T0).case.id
    now = T0 + timedelta(minutes=10)
    with statements(db_engine) as seen, sessions() as session, session.begin():
        outcome = cases.fire(session, case_id, "start", {}, actor=ADMIN, now=now)
        in_fire = case_detail(session, outcome.case, now=now)
    assert _reads(seen, "case_slas") == 1  # the fire's own read of the kept clocks
    with sessions() as session, session.begin():
        fresh = case_detail(session, case_id, now=now)
    assert in_fire.clocks == fresh.clocks
    assert [c.status.value for c in fresh.clocks] == ["met", "running"]
    assert [(t.name, t.due_at) for t in in_fire.timers] == [
        (t.name, t.due_at) for t in fresh.timers
    ]


# --- the bundled repair ticket ---------------------------------------------------------------

HOTLINE = Actor("token:hotline", frozenset({"integrator"}))
ENGINEER = Actor("token:wechat-bot", frozenset({"integrator"}))
OPERATOR = Actor("ops", frozenset({"supervisor"}))
TICKET = {
    "customer": "Ruijin Hospital",
    "device_serial": "CT-0042",
    "fault": "no image",
    "priority": "normal",
}
MINUTE = timedelta(minutes=1)


def _dispatched_ticket(sessions: sessionmaker[Session], publish_workflow: Any) -> int:
    """A repair ticket logged at T0, contacted and dispatched: seven clocks, four running."""
    publish_workflow("repair_ticket.yaml")
    with sessions() as session, session.begin():
        case_id = cases.create_case(session, "repair_ticket", dict(TICKET), actor=HOTLINE, now=T0)
        case_id = case_id.case.id
        contact = {"at": (T0 + 5 * MINUTE).isoformat()}
        cases.fire(session, case_id, "contact", contact, actor=HOTLINE, now=T0 + 5 * MINUTE)
        cases.fire(
            session, case_id, "dispatch", {"engineer": "Li"}, actor=HOTLINE, now=T0 + 6 * MINUTE
        )
    return case_id


def _confirm_visit(session: Session, case_id: int, now: datetime) -> None:
    out = cases.fire(
        session, case_id, "confirm_visit", {"confirmed_with": "设备科"}, actor=ENGINEER, now=now
    )
    assert out.case.state == "dispatched"


def test_a_repair_ticket_self_loop_costs_the_same_statements_at_any_history_length(
    sessions: sessionmaker[Session], db_engine: Engine, publish_workflow: Any
) -> None:
    """issue 11: a fire on a ticket with SLAs once re-read the whole history and re-armed
    every SLA timer. A ``confirm_visit`` self-loop (which touches no clock after the first)
    issues the same few statements at 4 events and at 60: it reads no history, writes no
    clock and no timer."""
    case_id = _dispatched_ticket(sessions, publish_workflow)
    now = T0 + 10 * MINUTE
    with sessions() as session, session.begin():
        _confirm_visit(session, case_id, now)  # stops visit_confirmation: a clock changes

    def one_fire(at: datetime) -> list[str]:
        with statements(db_engine) as seen, sessions() as session, session.begin():
            _confirm_visit(session, case_id, at)
        return [s for s in seen if s.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")]

    early = one_fire(now + MINUTE)
    with sessions() as session, session.begin():
        for n in range(55):
            _confirm_visit(session, case_id, now + 2 * MINUTE + n * MINUTE // 10)
    late = one_fire(now + 10 * MINUTE)

    assert len(early) == len(late), (early, late)
    assert not [s for s in late if re.search(r"\bFROM case_events\b", s)]
    assert not [s for s in late if re.search(r"^(INSERT INTO|UPDATE) (timers|case_slas)\b", s)]
    # The case read, its update, the event, the clocks' kept state, and at commit the event's
    # feed position (engine/store/event_feed.py): nothing else.
    assert len(late) <= 5, late


def _kept_and_armed(session: Session, case_id: int) -> tuple[dict[str, tuple[Any, ...]], set[Any]]:
    """The clocks' kept state (what the next event starts from) and the armed SLA timers."""
    kept = {
        r.sla: (
            r.phase,
            r.started_at,
            r.stopped_at,
            r.running_since,
            float(r.banked_seconds or 0),
            bool(r.manual_pause),
            sorted(r.warned or ()),
            r.warned_at,
            bool(r.breach_recorded),
            r.paused_at,
            r.resume_at,
            float(r.target_seconds),
            r.unit,
            r.calendar,
        )
        for r in session.execute(select(CaseSla).where(CaseSla.case_id == case_id)).scalars()
    }
    armed = {
        (t.name, t.due_at)
        for t in session.execute(
            select(Timer).where(
                Timer.case_id == case_id, Timer.status == "armed", Timer.sla.is_not(None)
            )
        ).scalars()
    }
    return kept, armed


def _assert_fast_path_equals_full_recomputation(
    sessions: sessionmaker[Session], case_id: int, now: datetime
) -> None:
    """What the fires left (clocks advanced event by event, clocks skipped as untouched) is
    what a recomputation from the whole history gives; the recomputation is rolled back."""
    with sessions() as session:
        session.begin()
        fast = _kept_and_armed(session, case_id)
        case = cases.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
        scheduling.replan_case(session, definition, case, now=now, note="test: recompute")
        session.flush()
        full = _kept_and_armed(session, case_id)
        session.rollback()
    assert fast == full


def _deliver_due(sessions: sessionmaker[Session], case_id: int, until: datetime) -> int:
    """Deliver the case's armed timers due by ``until``, each at its due instant."""
    delivered = 0
    while True:
        with sessions() as session:
            due = session.execute(
                select(Timer.id, Timer.due_at)
                .where(Timer.case_id == case_id, Timer.status == "armed", Timer.due_at <= until)
                .order_by(Timer.due_at, Timer.id)
                .limit(1)
            ).first()
        if due is None:
            return delivered
        with sessions() as session, session.begin():
            timer_firing.fire_due_timer(session, due.id, now=due.due_at)
        delivered += 1


def test_a_repair_ticket_s_clocks_after_the_fast_path_equal_a_full_recomputation(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """A ticket through self-loops (skipped clocks), a data change that moves the arrival
    target (an expression), an operator's pause with a resume time ended by its timer,
    warnings and breaches with their escalations: after every step, the state the fast path
    kept equals the state recomputed from the history, and so do the armed SLA timers."""
    case_id = _dispatched_ticket(sessions, publish_workflow)
    now = T0 + 10 * MINUTE
    _assert_fast_path_equals_full_recomputation(sessions, case_id, now)

    def step(do: Any) -> None:
        with sessions() as session, session.begin():
            do(session)
        _assert_fast_path_equals_full_recomputation(sessions, case_id, now)

    step(lambda s: _confirm_visit(s, case_id, now))
    now += MINUTE
    step(lambda s: _confirm_visit(s, case_id, now))
    now += MINUTE
    step(
        lambda s: operations.set_sla_paused(
            s,
            case_id,
            "resolution",
            True,
            actor=OPERATOR,
            reason="the customer asked to wait",
            now=now,
            resume_at=now + HOUR,
        )
    )
    now += MINUTE
    step(lambda s: _confirm_visit(s, case_id, now))
    # Past the resume time and the arrival clock's warning and breach: the timers fire.
    now += 3 * HOUR
    assert _deliver_due(sessions, case_id, now) >= 3
    _assert_fast_path_equals_full_recomputation(sessions, case_id, now)
    with sessions() as session:
        kinds = [e.event_type for e in cases.history(session, case_id)]
    assert {"sla_paused", "sla_resumed", "sla_warning", "sla_breached"} <= set(kinds), kinds
    step(lambda s: _confirm_visit(s, case_id, now))
    now += MINUTE
    step(lambda s: cases.fire(s, case_id, "arrive", {}, actor=ENGINEER, now=now))
    now += MINUTE
    step(lambda s: cases.cancel_case(s, case_id, actor=OPERATOR, now=now, reason="duplicate"))


def test_the_transaction_s_memos_end_with_it(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """Calendars and clock rows kept for a transaction are gone when it ends (committed or
    rolled back): nothing a later transaction reads comes from them."""
    case_id = _dispatched_ticket(sessions, publish_workflow)
    with sessions() as session:
        with session.begin():
            _confirm_visit(session, case_id, T0 + HOUR)
            assert {k for k in session.info if k.startswith("svcflow.")} >= {"svcflow.sla_rows"}
        assert not [k for k in session.info if k in ("svcflow.sla_rows", "svcflow.calendars")]
        session.begin()
        _confirm_visit(session, case_id, T0 + HOUR)
        load_calendars(session)
        session.rollback()
        assert not [k for k in session.info if k in ("svcflow.sla_rows", "svcflow.calendars")]
