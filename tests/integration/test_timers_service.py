"""Timers and SLA clocks through the services, on SQLite and PostgreSQL.

Every test injects ``now``: a timer "falls due" because the test delivers it at its due instant,
the way an RQ job or the simulator would (:func:`tests.factories.deliver` is what the RQ job
``fire_timer`` does: fire in one transaction, count a failure in another).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.core.records import EventRecord
from engine.core.sla import BREACH_AFTER
from engine.errors import ConcurrencyConflict, TimerNotFound
from engine.services import cases, timer_firing
from engine.services.calendars import save_calendar
from engine.services.definitions import set_parameter
from engine.services.scheduling import DueTimer
from engine.store.models import Case, Timer, TimerStatus
from tests.conftest import ADMIN, T0
from tests.factories import create_case, deliver, fire

HOUR = timedelta(hours=1)

LIFECYCLE = """\
name: tst_lifecycle
title: {en: Timer lifecycle, zh: 定时器生命周期}
initial: waiting
data_schema:
  type: object
  required: [pings]
  properties:
    pings: {type: integer, minimum: 0}
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - name: expiry
        after: 1h
        trigger: expire
  - name: expired
    title: {en: Expired, zh: 已过期}
  - name: on_hold
    title: {en: On hold, zh: 暂停}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: ping
    source: waiting
    dest: waiting
    actions:
      - increment: pings
  - trigger: expire
    source: waiting
    dest: expired
  - trigger: reopen
    source: expired
    dest: waiting
  - trigger: hold
    source: waiting
    dest: on_hold
  - trigger: resume
    source: on_hold
    dest: waiting
  - trigger: finish
    source: [waiting, expired, on_hold]
    dest: done
"""

DURATIONS = """\
name: tst_durations
title: {en: Due times, zh: 到期时间}
initial: received
parameters:
  reply_within: {type: duration, default: 2h}
data_schema:
  type: object
  required: [priority, warranty_until]
  properties:
    priority: {enum: [emergency, normal]}
    warranty_until: {type: string}
states:
  - name: received
    title: {en: Received, zh: 已受理}
    timers:
      - {name: working_days, after: 3d, calendar: cn-workdays, trigger: overdue}
      - {name: working_hours, after: 8h, calendar: cn-workdays, trigger: overdue}
      - {name: by_param, after: {param: reply_within}, trigger: overdue}
      - name: by_priority
        after: {expr: "data.priority == 'emergency' ? duration('1h') : duration('2h')"}
        trigger: overdue
      - {name: warranty, at: "timestamp(data.warranty_until)", trigger: overdue}
  - name: late
    title: {en: Late, zh: 超时}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: overdue
    source: received
    dest: late
  - trigger: close
    source: [received, late]
    dest: closed
"""

STOCK_COUNT = """\
name: tst_stock_count
title: {en: Stock count, zh: 盘点}
initial: active
data_schema:
  type: object
  required: [counts]
  properties:
    counts: {type: integer, minimum: 0}
states:
  - name: active
    title: {en: Active, zh: 有效}
    timers:
      - name: monthly
        every: "0 9 L * *"
        trigger: count
  - name: retired
    title: {en: Retired, zh: 停用}
    final: true
transitions:
  - trigger: count
    source: active
    dest: active
    actions:
      - increment: counts
  - trigger: retire
    source: active
    dest: retired
"""

GUARDED = """\
name: tst_guarded
title: {en: Guarded escalation, zh: 有条件升级}
initial: open
data_schema:
  type: object
  required: [allowed]
  properties:
    allowed: {type: boolean}
states:
  - name: open
    title: {en: Open, zh: 打开}
    timers:
      - name: escalation
        after: 1h
        trigger: escalate
  - name: escalated
    title: {en: Escalated, zh: 已升级}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: escalate
    source: open
    dest: escalated
    guard: "data.allowed"
  - trigger: permit
    source: open
    dest: open
    actions:
      - set: {allowed: "true"}
  - trigger: close
    source: [open, escalated]
    dest: closed
"""

SLA = """\
name: tst_sla
title: {en: Response SLA, zh: 响应时限}
initial: open
data_schema:
  type: object
  properties:
    notes: {type: integer, minimum: 0}
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: working
    title: {en: Working, zh: 处理中}
  - name: waiting_customer
    title: {en: Waiting for the customer, zh: 等待客户}
  - name: escalated
    title: {en: Escalated, zh: 已升级}
  - name: resolved
    title: {en: Resolved, zh: 已解决}
    final: true
transitions:
  - trigger: note
    source: open
    dest: open
    actions:
      - increment: notes
  - trigger: start_work
    source: open
    dest: working
  - trigger: ask_customer
    source: [open, working]
    dest: waiting_customer
  - trigger: customer_replied
    source: waiting_customer
    dest: open
  - trigger: escalate
    source: open
    dest: escalated
  - trigger: resolve
    source: [open, working, escalated]
    dest: resolved
slas:
  - name: response
    title: {en: Response, zh: 响应}
    target: 4h
    start: {states: [open]}
    pause: {states: [waiting_customer]}
    stop: {states: [resolved]}
    warn_at: [0.5, 0.75]
    on_breach: {trigger: escalate}
"""

PROVISIONAL = """\
name: tst_provisional
title: {en: Year-end complaint, zh: 年末投诉}
initial: received
states:
  - name: received
    title: {en: Received, zh: 已受理}
    timers:
      - {name: answer, after: 5d, calendar: cn-workdays, trigger: overdue}
  - name: late
    title: {en: Late, zh: 超时}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: overdue
    source: received
    dest: late
  - trigger: close
    source: [received, late]
    dest: closed
slas:
  - name: answer
    title: {en: Answer, zh: 答复}
    target: 5d
    calendar: cn-workdays
    start: {states: [received]}
    stop: {states: [closed]}
"""


@dataclass(frozen=True)
class TimerRow:
    id: int
    name: str
    kind: str
    status: str
    due_at: datetime
    provisional: bool
    attempts: int
    note: str | None
    last_error: str | None
    state_entry_seq: int


def _timers(sessions: sessionmaker[Session], case_id: int) -> list[TimerRow]:
    with sessions() as session, session.begin():
        return [
            TimerRow(
                t.id,
                t.name,
                t.kind,
                t.status,
                t.due_at,
                t.provisional,
                t.attempts,
                t.note,
                t.last_error,
                t.state_entry_seq,
            )
            for t in timer_firing.case_timers(session, case_id)
        ]


def _armed(sessions: sessionmaker[Session], case_id: int) -> dict[str, TimerRow]:
    return {t.name: t for t in _timers(sessions, case_id) if t.status == TimerStatus.ARMED.value}


def _history(sessions: sessionmaker[Session], case_id: int) -> list[EventRecord]:
    with sessions() as session, session.begin():
        return cases.history(session, case_id)


def _run_until(sessions: sessionmaker[Session], until: datetime) -> list[datetime]:
    """Deliver every timer due by ``until``, each at its own due instant; the instants."""
    return [at for at, _ in _deliveries_until(sessions, until)]


def _deliveries_until(
    sessions: sessionmaker[Session], until: datetime
) -> list[tuple[datetime, Any]]:
    """Like :func:`_run_until`, with each delivery's outcome."""
    done = []
    for _ in range(1000):
        with sessions() as session, session.begin():
            due = timer_firing.due_for_delivery(session, until=until, limit=1)
        if not due:
            return done
        done.append((due[0].due_at, deliver(sessions, due[0].id, due[0].due_at)))
    raise AssertionError("timers kept falling due")


def _timer_transitions(events: list[EventRecord], trigger: str) -> list[EventRecord]:
    return [e for e in events if e.event_type == "transition" and e.trigger == trigger]


@pytest.fixture
def lifecycle_case(sessions: sessionmaker[Session], publish_workflow: Any) -> int:
    """A tst_lifecycle case created at T0: waiting, its expiry timer due at T0 + 1h."""
    publish_workflow(LIFECYCLE)
    return create_case(sessions, "tst_lifecycle", {"pings": 0}).case.id


@pytest.fixture
def sla_case(sessions: sessionmaker[Session], publish_workflow: Any) -> int:
    """A tst_sla case created at T0: open, its response clock running (4h, warnings at 2h
    and 3h)."""
    publish_workflow(SLA)
    return create_case(sessions, "tst_sla", {}).case.id


# --- arming and cancelling ---------------------------------------------------------------------


def test_entering_a_state_arms_its_timers_in_the_same_transaction(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(LIFECYCLE)
    with sessions() as session, session.begin():
        case_id = cases.create_case(
            session, "tst_lifecycle", {"pings": 0}, actor=ADMIN, now=T0
        ).case.id
        inside = [(t.name, t.status, t.due_at) for t in timer_firing.case_timers(session, case_id)]
    assert inside == [("expiry", "armed", T0 + HOUR)]
    assert [(t.name, t.status) for t in _timers(sessions, case_id)] == [("expiry", "armed")]


def test_a_rolled_back_transaction_leaves_no_timer(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(LIFECYCLE)
    with pytest.raises(RuntimeError), sessions() as session, session.begin():
        case_id = cases.create_case(
            session, "tst_lifecycle", {"pings": 0}, actor=ADMIN, now=T0
        ).case.id
        assert len(timer_firing.case_timers(session, case_id)) == 1
        raise RuntimeError("the caller gives up after arming")
    with sessions() as session, session.begin():
        assert session.execute(select(func.count()).select_from(Timer)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 0


def test_leaving_cancels_a_self_loop_keeps_and_coming_back_arms_anew(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    case_id = lifecycle_case
    first = _armed(sessions, case_id)["expiry"]

    fire(sessions, case_id, "ping", now=T0 + timedelta(minutes=20))
    kept = _armed(sessions, case_id)["expiry"]
    assert (kept.id, kept.due_at) == (first.id, T0 + HOUR)  # same timer, same deadline

    fire(sessions, case_id, "hold", now=T0 + timedelta(minutes=40))
    (row,) = _timers(sessions, case_id)
    assert (row.id, row.status, row.note) == (first.id, "cancelled", "left state 'waiting'")
    assert _armed(sessions, case_id) == {}

    # Coming back is a new state entry with a full hour of its own.
    fire(sessions, case_id, "resume", now=T0 + 2 * HOUR)
    assert _armed(sessions, case_id)["expiry"].due_at == T0 + 3 * HOUR
    fire(sessions, case_id, "finish", now=T0 + 150 * timedelta(minutes=1))
    assert [(t.status, t.note) for t in _timers(sessions, case_id)] == [
        ("cancelled", "left state 'waiting'"),
        ("cancelled", "case completed"),
    ]


def test_re_entering_a_state_arms_a_fresh_timer_from_the_new_entry(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    case_id = lifecycle_case
    _run_until(sessions, T0 + HOUR)
    reopened_at = T0 + 5 * HOUR
    fire(sessions, case_id, "reopen", now=reopened_at)
    armed = _armed(sessions, case_id)["expiry"]
    assert armed.due_at == reopened_at + HOUR
    assert [t.status for t in _timers(sessions, case_id)] == ["fired", "armed"]


# --- firing ------------------------------------------------------------------------------------


def test_a_due_timer_fires_once_and_history_names_the_timer(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    case_id = lifecycle_case
    timer_id = _armed(sessions, case_id)["expiry"].id

    first = deliver(sessions, timer_id, T0 + HOUR)
    again = deliver(sessions, timer_id, T0 + HOUR + timedelta(seconds=5))

    assert first.result is timer_firing.FireResult.FIRED
    assert again.result is timer_firing.FireResult.STALE
    assert again.note == "timer is fired"
    events = _history(sessions, case_id)
    (expired,) = _timer_transitions(events, "expire")
    assert (expired.actor, expired.at, expired.to_state) == ("timer", T0 + HOUR, "expired")
    assert len(events) == 2
    (row,) = _timers(sessions, case_id)
    assert (row.status, row.attempts) == ("fired", 1)


def test_delivered_before_due_changes_nothing(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    case_id = lifecycle_case
    before = _timers(sessions, case_id)
    outcome = deliver(sessions, before[0].id, T0 + HOUR - timedelta(microseconds=1))
    assert outcome.result is timer_firing.FireResult.NOT_DUE
    assert outcome.due_at == T0 + HOUR
    assert _timers(sessions, case_id) == before
    assert [e.event_type for e in _history(sessions, case_id)] == ["created"]


def test_a_delivery_after_the_case_moved_on_is_a_recorded_no_op(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    case_id = lifecycle_case
    timer_id = _armed(sessions, case_id)["expiry"].id
    fire(sessions, case_id, "hold", now=T0 + timedelta(minutes=30))

    outcome = deliver(sessions, timer_id, T0 + HOUR)

    assert outcome.result is timer_firing.FireResult.STALE
    assert outcome.note == "timer is cancelled"
    (row,) = _timers(sessions, case_id)
    assert (row.status, row.note) == ("cancelled", "left state 'waiting'")
    assert [e.trigger for e in _history(sessions, case_id)] == [None, "hold"]


def test_a_late_delivery_for_an_old_state_entry_cancels_the_timer_with_a_note(
    sessions: sessionmaker[Session], lifecycle_case: int
) -> None:
    """The defence behind the cancel-on-leave: should a timer of an earlier state entry still
    be armed (a cancel lost to a race), its delivery re-checks the case and does nothing."""
    case_id = lifecycle_case
    timer_id = _armed(sessions, case_id)["expiry"].id
    fire(sessions, case_id, "hold", now=T0 + timedelta(minutes=30))
    fire(sessions, case_id, "resume", now=T0 + timedelta(minutes=45))  # a new entry of 'waiting'
    with sessions() as session, session.begin():
        session.get_one(Timer, timer_id).status = TimerStatus.ARMED.value

    outcome = deliver(sessions, timer_id, T0 + HOUR)

    assert outcome.result is timer_firing.FireResult.STALE
    stale = next(t for t in _timers(sessions, case_id) if t.id == timer_id)
    assert stale.status == "cancelled"
    assert stale.note == ("stale delivery at 2025-09-30T03:00:00+00:00: case is open in 'waiting'")
    assert [e.trigger for e in _history(sessions, case_id)] == [None, "hold", "resume"]
    # The timer of the current entry is untouched and fires on its own schedule.
    current = _armed(sessions, case_id)["expiry"]
    assert current.due_at == T0 + timedelta(minutes=105)


def test_a_user_fire_racing_the_timer_of_its_case_does_not_deadlock(
    sessions: sessionmaker[Session], publish_workflow, db_engine: Engine, dialect: str
) -> None:
    """PostgreSQL runs the two side by side. A user's fire updates the case row and then
    cancels the case's timers; the timer's fire must not hold the timer row while it waits for
    the case row, or each waits for the other and PostgreSQL aborts one as a deadlock.

    A third connection holds the case row so the two queue up in a known order: the user
    first, then the timer. The user's fire wins; the timer's delivery then finds it cancelled.
    """
    if dialect != "postgresql":
        pytest.skip("SQLite runs write transactions one at a time")
    publish_workflow(LIFECYCLE)
    case_id = create_case(sessions, "tst_lifecycle", {"pings": 0}).case.id
    timer_id = _armed(sessions, case_id)["expiry"].id
    outcomes: dict[str, Any] = {}

    def user() -> None:
        try:
            fire(sessions, case_id, "hold", now=T0 + HOUR)
            outcomes["user"] = "held"
        except Exception as exc:
            outcomes["user"] = exc

    def timer() -> None:
        try:
            with sessions() as session, session.begin():
                outcomes["timer"] = timer_firing.fire_due_timer(
                    session, timer_id, now=T0 + HOUR
                ).result
        except Exception as exc:
            outcomes["timer"] = exc

    def waiting_for_locks() -> int:
        with db_engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            )

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 30
        while waiting_for_locks() < count:  # polls the other threads; no time is skipped
            assert time.monotonic() < deadline, f"expected {count} waiting transaction(s)"
            time.sleep(0.02)

    with db_engine.connect() as blocker, blocker.begin():
        blocker.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
        threads = [threading.Thread(target=user), threading.Thread(target=timer)]
        threads[0].start()
        wait_for(1)
        threads[1].start()
        wait_for(2)
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes == {"user": "held", "timer": timer_firing.FireResult.STALE}
    assert [e.trigger for e in _history(sessions, case_id)] == [None, "hold"]
    (row,) = _timers(sessions, case_id)
    assert (row.status, row.note) == ("cancelled", "left state 'waiting'")


# --- when timers are due -----------------------------------------------------------------------


def test_due_times_on_calendars_parameters_expressions_and_instants(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(DURATIONS)
    emergency = create_case(
        sessions,
        "tst_durations",
        {"priority": "emergency", "warranty_until": "2025-12-31T16:00:00Z"},
    ).case.id
    normal = create_case(
        sessions,
        "tst_durations",
        {"priority": "normal", "warranty_until": "2026-01-01T00:00:00+08:00"},
    ).case.id
    due = {name: row.due_at for name, row in _armed(sessions, emergency).items()}
    assert due == {
        # Tue 30 Sep 10:00 + 3 working days: 1-8 Oct are holidays, Sat 11 Oct is a make-up
        # working day, so the deadline is Sat 11 Oct 10:00 in Shanghai.
        "working_days": datetime(2025, 10, 11, 2, 0, tzinfo=UTC),
        # 7 working hours on 30 Sep (10-12, 13-18), the holidays, then 09:00-10:00 on 9 Oct.
        "working_hours": datetime(2025, 10, 9, 2, 0, tzinfo=UTC),
        "by_param": T0 + 2 * HOUR,
        "by_priority": T0 + HOUR,
        "warranty": datetime(2025, 12, 31, 16, 0, tzinfo=UTC),
    }
    other = _armed(sessions, normal)
    assert other["by_priority"].due_at == T0 + 2 * HOUR
    assert other["warranty"].due_at == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)


def test_the_working_day_deadline_fires_at_its_instant_and_not_before(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(DURATIONS)
    case_id = create_case(
        sessions, "tst_durations", {"priority": "normal", "warranty_until": "2026-06-01T00:00:00Z"}
    ).case.id
    deadline = datetime(2025, 10, 11, 2, 0, tzinfo=UTC)
    timer_id = _armed(sessions, case_id)["working_days"].id
    early = deliver(sessions, timer_id, deadline - timedelta(seconds=1))
    on_time = deliver(sessions, timer_id, deadline)
    assert (early.result, on_time.result) == (
        timer_firing.FireResult.NOT_DUE,
        timer_firing.FireResult.FIRED,
    )
    (late,) = _timer_transitions(_history(sessions, case_id), "overdue")
    assert late.at == deadline
    # The case left 'received': its other timers are cancelled, not fired.
    assert {t.name: t.status for t in _timers(sessions, case_id)} == {
        "working_days": "fired",
        "working_hours": "cancelled",
        "by_param": "cancelled",
        "by_priority": "cancelled",
        "warranty": "cancelled",
    }


def test_a_parameter_duration_uses_the_case_snapshot(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(DURATIONS)
    data = {"priority": "normal", "warranty_until": "2026-06-01T00:00:00Z"}
    before = create_case(sessions, "tst_durations", data).case.id
    with sessions() as session, session.begin():
        set_parameter(session, "tst_durations", "reply_within", "5h", actor="test", now=T0)
    after = create_case(sessions, "tst_durations", data).case.id
    # Re-planning the older case (as a calendar save does) still uses its own snapshot.
    with sessions() as session, session.begin():
        save_calendar(session, "cn-workdays", actor="test", now=T0, overrides={})
    assert _armed(sessions, before)["by_param"].due_at == T0 + 2 * HOUR
    assert _armed(sessions, after)["by_param"].due_at == T0 + 5 * HOUR


def test_a_monthly_cron_re_arms_after_each_firing_including_28_february_2027(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(STOCK_COUNT)
    start = datetime(2027, 1, 15, tzinfo=UTC)
    case_id = create_case(sessions, "tst_stock_count", {"counts": 0}, now=start).case.id

    fired = _run_until(sessions, datetime(2027, 4, 1, tzinfo=UTC))

    # 09:00 in Shanghai on the last day of each month; February 2027 has 28 days.
    assert fired == [
        datetime(2027, 1, 31, 1, 0, tzinfo=UTC),
        datetime(2027, 2, 28, 1, 0, tzinfo=UTC),
        datetime(2027, 3, 31, 1, 0, tzinfo=UTC),
    ]
    assert [e.at for e in _timer_transitions(_history(sessions, case_id), "count")] == fired
    with sessions() as session, session.begin():
        assert cases.get_case(session, case_id).data["counts"] == 3
    assert _armed(sessions, case_id)["monthly"].due_at == datetime(2027, 4, 30, 1, 0, tzinfo=UTC)

    fire(sessions, case_id, "retire", now=datetime(2027, 4, 2, tzinfo=UTC))
    assert _armed(sessions, case_id) == {}


# --- failures ----------------------------------------------------------------------------------


def test_a_guard_that_rejects_the_timer_trigger_fails_the_timer_at_once(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(GUARDED)
    case_id = create_case(sessions, "tst_guarded", {"allowed": False}).case.id
    timer_id = _armed(sessions, case_id)["escalation"].id

    retry = deliver(sessions, timer_id, T0 + HOUR)

    assert retry is None  # permanent: no retry is scheduled
    (row,) = _timers(sessions, case_id)
    assert (row.status, row.attempts, row.note) == ("failed", 1, "permanent error")
    assert row.last_error is not None and row.last_error.startswith("GuardRejected:")
    # No transition; the failure itself is in the history, for whoever reads the case.
    assert [e.event_type for e in _history(sessions, case_id)] == ["created", "timer_failed"]

    # An operator fixes the data and retries: the timer is armed again and now fires.
    fire(sessions, case_id, "permit", now=T0 + 2 * HOUR)
    with sessions() as session, session.begin():
        again = timer_firing.retry_failed(session, timer_id, now=T0 + 3 * HOUR, note="data fixed")
    assert again == DueTimer(timer_id, T0 + 3 * HOUR, 1)
    assert deliver(sessions, timer_id, T0 + 3 * HOUR).result is timer_firing.FireResult.FIRED
    (escalated,) = _timer_transitions(_history(sessions, case_id), "escalate")
    assert (escalated.actor, escalated.at) == ("timer", T0 + 3 * HOUR)


def test_a_transient_error_is_retried_with_backoff_then_fails(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(GUARDED)
    case_id = create_case(sessions, "tst_guarded", {"allowed": True}).case.id
    timer_id = _armed(sessions, case_id)["escalation"].id
    conflict = ConcurrencyConflict("Case changed while the timer fired.", case_id=case_id)

    now = T0 + HOUR
    retries = []
    for _ in range(timer_firing.MAX_ATTEMPTS):
        with sessions() as session, session.begin():
            retry = timer_firing.record_failure(session, timer_id, conflict, now=now)
        retries.append(retry)
        if retry is not None:
            now = retry.due_at

    backoff = timer_firing.BACKOFF
    assert [r.attempts for r in retries if r] == [1, 2, 3, 4]
    assert [r.due_at for r in retries if r] == [
        T0 + HOUR + backoff[0],
        T0 + HOUR + backoff[0] + backoff[1],
        T0 + HOUR + backoff[0] + backoff[1] + backoff[2],
        T0 + HOUR + backoff[0] + backoff[1] + backoff[2] + backoff[3],
    ]
    assert retries[-1] is None
    (row,) = _timers(sessions, case_id)
    assert (row.status, row.attempts) == ("failed", timer_firing.MAX_ATTEMPTS)
    assert row.note == f"gave up after {timer_firing.MAX_ATTEMPTS} attempts"
    assert row.last_error is not None and row.last_error.startswith("ConcurrencyConflict:")
    with sessions() as session, session.begin():  # a failed timer counts no more failures
        assert timer_firing.record_failure(session, timer_id, conflict, now=now) is None
        assert [t.id for t in timer_firing.failed_timers(session)] == [timer_id]

    with sessions() as session, session.begin():
        timer_firing.retry_failed(session, timer_id, now=now, note="retried by operator")
    assert deliver(sessions, timer_id, now).result is timer_firing.FireResult.FIRED
    assert len(_timer_transitions(_history(sessions, case_id), "escalate")) == 1


def test_only_failed_timers_can_be_retried(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(GUARDED)
    case_id = create_case(sessions, "tst_guarded", {"allowed": True}).case.id
    timer_id = _armed(sessions, case_id)["escalation"].id
    with (
        pytest.raises(TimerNotFound, match=f"No failed timer with id {timer_id}"),
        sessions() as session,
        session.begin(),
    ):
        timer_firing.retry_failed(session, timer_id, now=T0, note="oops")


# --- SLA clocks --------------------------------------------------------------------------------


def _sla_events(events: list[EventRecord]) -> list[tuple[str, Any, datetime]]:
    return [
        (e.event_type, e.payload.get("fraction"), e.at)
        for e in events
        if e.event_type.startswith("sla_")
    ]


def test_sla_warnings_and_breach_land_at_their_instants_and_the_breach_escalates(
    sessions: sessionmaker[Session], sla_case: int
) -> None:
    case_id = sla_case
    _run_until(sessions, T0 + 10 * HOUR)
    events = _history(sessions, case_id)
    assert _sla_events(events) == [
        ("sla_warning", 0.5, T0 + 2 * HOUR),
        ("sla_warning", 0.75, T0 + 3 * HOUR),
        ("sla_breached", None, T0 + 4 * HOUR + BREACH_AFTER),  # the deadline is in time
    ]
    (escalated,) = _timer_transitions(events, "escalate")
    assert (escalated.actor, escalated.at, escalated.payload) == (
        "timer",
        T0 + 4 * HOUR + BREACH_AFTER,
        {"sla": "response"},
    )
    assert _armed(sessions, case_id) == {}  # the breached clock plans nothing more


def test_a_breach_in_a_state_without_the_trigger_is_only_recorded(
    sessions: sessionmaker[Session], sla_case: int
) -> None:
    case_id = sla_case
    fire(sessions, case_id, "start_work", now=T0 + HOUR)
    outcomes = _deliveries_until(sessions, T0 + 10 * HOUR)
    events = _history(sessions, case_id)
    assert _sla_events(events)[-1] == ("sla_breached", None, T0 + 4 * HOUR + BREACH_AFTER)
    assert _timer_transitions(events, "escalate") == []
    with sessions() as session, session.begin():
        assert cases.get_case(session, case_id).state == "working"
    at, breach = outcomes[-1]
    assert at == T0 + 4 * HOUR + BREACH_AFTER
    assert breach.result is timer_firing.FireResult.FIRED
    assert breach.note == "recorded breach; 'escalate' not allowed in 'working'"


def test_a_pause_state_shifts_the_sla_by_exactly_the_paused_span(
    sessions: sessionmaker[Session], sla_case: int
) -> None:
    case_id = sla_case
    paused_at, resumed_at = T0 + HOUR, T0 + HOUR + timedelta(hours=2, minutes=17)
    fire(sessions, case_id, "ask_customer", now=paused_at)
    assert [t.kind for t in _armed(sessions, case_id).values()] == []  # nothing runs paused
    fire(sessions, case_id, "customer_replied", now=resumed_at)
    paused = resumed_at - paused_at
    due = {t.name: t.due_at for t in _armed(sessions, case_id).values()}
    assert due == {
        "sla:response:sla_warning:0.5": T0 + 2 * HOUR + paused,
        "sla:response:sla_warning:0.75": T0 + 3 * HOUR + paused,
        "sla:response:sla_breached:1.0": T0 + 4 * HOUR + paused + BREACH_AFTER,
    }
    _run_until(sessions, T0 + 10 * HOUR)
    assert [(kind, at) for kind, _, at in _sla_events(_history(sessions, case_id))] == [
        ("sla_warning", T0 + 2 * HOUR + paused),
        ("sla_warning", T0 + 3 * HOUR + paused),
        ("sla_breached", T0 + 4 * HOUR + paused + BREACH_AFTER),
    ]


def test_re_planning_after_every_event_never_repeats_a_warning(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(SLA)
    case_id = create_case(sessions, "tst_sla", {"notes": 0}).case.id
    _run_until(sessions, T0 + 2 * HOUR)  # the 50 % warning
    for minutes in (130, 140, 150):  # events after it re-plan the clock each time
        fire(sessions, case_id, "note", now=T0 + timedelta(minutes=minutes))
    fire(sessions, case_id, "ask_customer", now=T0 + timedelta(minutes=160))
    fire(sessions, case_id, "customer_replied", now=T0 + timedelta(minutes=200))  # 40 min paused
    _run_until(sessions, T0 + 10 * HOUR)
    warnings = [
        (f, at) for kind, f, at in _sla_events(_history(sessions, case_id)) if kind == "sla_warning"
    ]
    assert warnings == [(0.5, T0 + 2 * HOUR), (0.75, T0 + 3 * HOUR + timedelta(minutes=40))]
    fired = [t.name for t in _timers(sessions, case_id) if t.status == "fired"]
    assert sorted(fired) == [
        "sla:response:sla_breached:1.0",
        "sla:response:sla_warning:0.5",
        "sla:response:sla_warning:0.75",
    ]


# --- provisional deadlines ---------------------------------------------------------------------


def test_a_deadline_in_an_uncovered_year_is_provisional_until_the_year_is_loaded(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    from chinese_calendar import constants

    assert 2027 not in {d.year for d in constants.holidays}, "pick a later uncovered year"
    publish_workflow(PROVISIONAL)
    received = datetime(2026, 12, 28, 2, 0, tzinfo=UTC)  # Mon 28 Dec 2026 10:00 Shanghai
    case_id = create_case(sessions, "tst_provisional", {}, now=received).case.id
    armed = _armed(sessions, case_id)
    # 2027 follows the weekly pattern: Tue, Wed, Thu, Fri 1 Jan, Mon 4 Jan.
    assert {n: (t.due_at, t.provisional) for n, t in armed.items()} == {
        "answer": (datetime(2027, 1, 4, 2, 0, tzinfo=UTC), True),
        "sla:answer:sla_breached:1.0": (datetime(2027, 1, 4, 2, 0, 1, tzinfo=UTC), True),
    }

    with sessions() as session, session.begin():
        save_calendar(
            session,
            "cn-workdays",
            actor="admin",
            now=received + HOUR,
            overrides={"holidays_add": ["2027-01-01"], "covered_years_add": [2027]},
        )

    armed = _armed(sessions, case_id)
    assert {n: (t.due_at, t.provisional) for n, t in armed.items()} == {
        "answer": (datetime(2027, 1, 5, 2, 0, tzinfo=UTC), False),
        "sla:answer:sla_breached:1.0": (datetime(2027, 1, 5, 2, 0, 1, tzinfo=UTC), False),
    }
    replaced = [t for t in _timers(sessions, case_id) if t.status == "cancelled"]
    assert {t.note for t in replaced} == {"calendar 'cn-workdays' changed"}
    assert len(replaced) == 2
