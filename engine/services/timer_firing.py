"""Firing due timers: what an RQ job, the sweeper and the simulator call.

:func:`fire_due_timer` runs in the caller's transaction. It locks the timer row (``FOR
UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), re-checks
that the timer is still armed and that the case is still in the state entry the timer belongs
to, and only then fires. Two deliveries of one timer (a retried job, the sweeper racing the
scheduler, two workers) therefore fire it at most once: the second finds it no longer armed.
A delivery for a timer whose case moved on is a no-op, recorded on the timer row.

Failures: a domain error (the guard rejects, the trigger is not allowed) would fail the same
way again, so the timer is marked failed at once; anything else (a lost race, the database
unreachable) is retried with backoff up to :data:`MAX_ATTEMPTS`, then marked failed. Failed
timers keep their error for supervisors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from engine.core.definition import TimerKind
from engine.core.machine import Actor
from engine.core.messages import (
    PAYLOAD_KEY,
    SLA_RESUME_TIME_REACHED,
    TIMER_CASE_CLOSED,
    TIMER_GAVE_UP,
    TIMER_PERMANENT_ERROR,
    TIMER_STATE_LEFT,
    Message,
    error_record,
)
from engine.core.records import CaseRecord
from engine.core.sla import SLA_BREACHED, SLA_RESUME, SLA_WARNING
from engine.core.timer_plans import plan_timer
from engine.errors import (
    ActionFailed,
    CaseClosed,
    CaseNotFound,
    ConcurrencyConflict,
    DataInvalid,
    ExpressionError,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    SvcflowError,
    TimerNotFound,
    TriggerNotPermitted,
)
from engine.services import cases, scheduling
from engine.services.definitions import get_definition
from engine.store import case_store, observations
from engine.store.calendar_store import load_calendars
from engine.store.models import Case, CaseStatus, EventType, Timer, TimerStatus

MAX_ATTEMPTS = 5
BACKOFF = (timedelta(seconds=2), timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2))
# Errors that would happen again on retry: the definition and the case decide them.
PERMANENT_ERRORS: tuple[type[SvcflowError], ...] = (
    ActionFailed,
    CaseClosed,
    CaseNotFound,
    DataInvalid,
    ExpressionError,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    TriggerNotPermitted,
)
TIMER_ACTOR = Actor.system("timer")
timers = Timer.__table__
RESUME_REACHED = Message(SLA_RESUME_TIME_REACHED)


class FireResult(str, Enum):
    FIRED = "fired"
    STALE = "stale"  # the timer was no longer armed, or its case left the state entry
    NOT_DUE = "not_due"
    MISSING = "missing"


@dataclass(frozen=True)
class TimerOutcome:
    timer_id: int
    result: FireResult
    note: str = ""
    due_at: datetime | None = None


def _lock(session: Session, timer_id: int) -> Timer | None:
    return session.execute(
        select(Timer).where(Timer.id == timer_id).with_for_update()
    ).scalar_one_or_none()


# A due timer's fire, the hot path of the workers: Core statements built once, the case read
# once (locked, through its timer) and handed to the fire instead of being read again.
cases_table = Case.__table__
_LOCK_CASE = (
    select(cases_table)
    .where(
        cases_table.c.id
        == select(timers.c.case_id).where(timers.c.id == bindparam("b_timer")).scalar_subquery()
    )
    .with_for_update()
)
_LOCK_TIMER = select(timers).where(timers.c.id == bindparam("b_timer")).with_for_update()
_MARK_FIRED = (
    update(timers)
    .where(timers.c.id == bindparam("b_timer"))
    .values(
        status=TimerStatus.FIRED.value,
        attempts=bindparam("b_attempts"),
        updated_at=bindparam("b_now"),
        fired_at=bindparam("b_now"),
    )
)
_MARK_STALE = (
    update(timers)
    .where(timers.c.id == bindparam("b_timer"))
    .values(
        status=TimerStatus.CANCELLED.value,
        attempts=bindparam("b_attempts"),
        updated_at=bindparam("b_now"),
        note=bindparam("b_note"),
    )
)


def _lock_case_of(session: Session, timer_id: int) -> CaseRecord | None:
    """Lock the timer's case row before the timer row, and read it: the order a fire of the
    case takes (it updates the case, then cancels its timers). Holding the timer row while
    waiting for the case row deadlocks with a user's fire of that case on PostgreSQL."""
    row = session.connection().execute(_LOCK_CASE, {"b_timer": timer_id}).one_or_none()
    return case_store.case_record(row) if row is not None else None


def _mark(session: Session, timer: Row[Any], statement: Any, now: datetime, **more: Any) -> None:
    session.connection().execute(
        statement, {"b_timer": timer.id, "b_attempts": timer.attempts + 1, "b_now": now, **more}
    )
    loaded = session.identity_map.get(session.identity_key(Timer, timer.id))
    if loaded is not None:  # an ORM copy read earlier in this session is now out of date
        session.expire(loaded)


def fire_due_timer(
    session: Session, timer_id: int, *, now: datetime, actor: Actor = TIMER_ACTOR
) -> TimerOutcome:
    """Fire one timer if it is armed, due and still relevant. Domain errors propagate."""
    case = _lock_case_of(session, timer_id)
    timer = session.connection().execute(_LOCK_TIMER, {"b_timer": timer_id}).one_or_none()
    if timer is None or case is None:
        return TimerOutcome(timer_id, FireResult.MISSING, "no such timer")
    if timer.status != TimerStatus.ARMED.value:
        return TimerOutcome(timer_id, FireResult.STALE, f"timer is {timer.status}", timer.due_at)
    if timer.due_at > now:
        return TimerOutcome(timer_id, FireResult.NOT_DUE, "delivered early", timer.due_at)
    if case.status != CaseStatus.OPEN.value or (
        timer.sla is None and case.state_entry_seq != timer.state_entry_seq
    ):
        note = f"stale delivery at {now.isoformat()}: case is {case.status} in {case.state!r}"
        _mark(session, timer, _MARK_STALE, now, b_note=note)
        return TimerOutcome(timer_id, FireResult.STALE, note, timer.due_at)

    _mark(session, timer, _MARK_FIRED, now)
    observations.note(
        session,
        "timer_fired",
        timer_id=timer.id,
        case_id=timer.case_id,
        timer_kind=timer.kind,
        # Lag from when it could first run: a timer armed already due is not late for that.
        lag_seconds=(now - max(timer.due_at, timer.created_at)).total_seconds(),
    )
    if timer.kind == SLA_RESUME:
        note = _end_pause(session, timer, case, now=now, actor=actor)
    elif timer.kind in (SLA_WARNING, SLA_BREACHED):
        note = _fire_sla(session, timer, case, now=now, actor=actor)
    else:
        assert timer.trigger is not None
        fired = cases.fire(
            session, case.id, timer.trigger, timer.payload, actor=actor, now=now, case=case
        )
        note = f"fired {timer.trigger!r}"
        if timer.kind == TimerKind.EVERY.value:
            _rearm_every(session, timer, fired.case, now=now)
    return TimerOutcome(timer_id, FireResult.FIRED, note, timer.due_at)


def _fire_sla(
    session: Session, timer: Row[Any], case: CaseRecord, *, now: datetime, actor: Actor
) -> str:
    """Record the warning or breach in the history; on a breach, fire the SLA's trigger when
    the case's current state allows it (the escalation is recorded either way)."""
    event_type = EventType.SLA_WARNING if timer.kind == SLA_WARNING else EventType.SLA_BREACHED
    payload = {**timer.payload, "due_at": timer.due_at.isoformat()}
    recorded = cases.record_event(
        session, case.id, event_type, payload, actor=actor, now=now, case=case
    )
    if event_type is not EventType.SLA_BREACHED or not timer.trigger:
        return f"recorded {event_type.value}"
    case = recorded.case  # as the breach left it, in this transaction
    allowed = cases.allowed_triggers(session, case)
    if timer.trigger not in allowed:
        return f"recorded breach; {timer.trigger!r} not allowed in {case.state!r}"
    try:
        # The breach is recorded whatever happens to its escalation trigger: a guard or a
        # payload schema that rejects it must not roll the breach record back with it.
        with session.begin_nested():
            cases.fire(
                session,
                case.id,
                timer.trigger,
                {"sla": timer.sla},
                actor=actor,
                now=now,
                case=case,
            )
    except PERMANENT_ERRORS as exc:
        return f"recorded breach; {timer.trigger!r} was refused: {exc.message}"
    return f"recorded breach and fired {timer.trigger!r}"


def _end_pause(
    session: Session, timer: Row[Any], case: CaseRecord, *, now: datetime, actor: Actor
) -> str:
    """An operator's pause reached the resume time it was given: record ``sla_resumed``, as
    the operator would have (the clock runs again unless its state pauses it too). It counts
    at the resume time, not when delivered: a worker outage adds no time to the pause (nor
    goes back before the case's latest event)."""
    latest = case_store.event_at(session, case.id, case.version)
    at = min(now, max(timer.due_at, latest.at))
    cases.record_event(
        session,
        case.id,
        EventType.SLA_RESUMED,
        {
            "sla": timer.sla,
            "reason": str(RESUME_REACHED),
            PAYLOAD_KEY: {"reason": RESUME_REACHED.to_dict()},
        },
        actor=actor,
        now=now,
        at=at,
        context={"received_at": now.isoformat()} if at != now else None,
        case=case,
    )
    return f"resumed {timer.sla!r}"


def _rearm_every(session: Session, timer: Row[Any], case: CaseRecord, *, now: datetime) -> None:
    """Arm the next occurrence of a cron timer while the case stays in the same state entry
    (``case``: as the fire left it)."""
    if case.status != CaseStatus.OPEN.value or case.state_entry_seq != timer.state_entry_seq:
        return
    definition = get_definition(session, case.definition_name, case.definition_version)
    spec = next((t for t in definition.state(case.state).timers if t.name == timer.name), None)
    if spec is None:
        return
    plan = plan_timer(
        spec,
        entered_at=case.state_entered_at,
        # The next occurrence after this one, or after now if delivery was behind: missed
        # occurrences (workers down, a state entered in the past) collapse into this fire.
        after=max(timer.due_at, now),
        data=case.data,
        params=case.params,
        calendars=load_calendars(session),
        decisions=definition.decisions,
    )
    scheduling.arm(session, case.id, case.state_entry_seq, [plan], now)


def record_failure(
    session: Session, timer_id: int, error: BaseException, *, now: datetime
) -> scheduling.DueTimer | None:
    """Count a failed attempt in its own transaction, on the timer row and in its case's
    history (``timer_failed``: attempt, error, and the retry's time or that it gave up).
    Returns the retry to deliver, or None when the timer is now failed for good."""
    timer = _lock(session, timer_id)
    if timer is None or timer.status != TimerStatus.ARMED.value:
        return None
    timer.attempts += 1
    timer.updated_at = now
    timer.last_error = _describe(error)
    timer.failure = {"error": error_record(error)}
    permanent = isinstance(error, PERMANENT_ERRORS)
    retry: scheduling.DueTimer | None = None
    if permanent or timer.attempts >= MAX_ATTEMPTS:
        note = (
            Message(TIMER_PERMANENT_ERROR)
            if permanent
            else Message(TIMER_GAVE_UP, {"attempts": timer.attempts})
        )
        timer.status = TimerStatus.FAILED.value
        timer.note = str(note)
        timer.failure = {**timer.failure, "note": note.to_dict()}
    else:
        retry_at = now + BACKOFF[min(timer.attempts - 1, len(BACKOFF) - 1)]
        timer.deliver_at = retry_at  # the sweeper steps in only once the retry is late
        retry = scheduling.DueTimer(timer.id, retry_at, timer.attempts)
    session.flush()
    _record_in_history(session, timer, retry, now=now)
    return retry


def _describe(error: BaseException) -> str:
    """The error for the timer row and the history: an svcflow error's hint included, and a
    refusing guard's expressions, which whoever fixes the cause needs."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, SvcflowError) and error.fields.get("reasons"):
        text += " [" + "; ".join(error.fields.get("guards", [])) + "]"
    return text[:2000]


def _record_in_history(
    session: Session, timer: Timer, retry: scheduling.DueTimer | None, *, now: datetime
) -> None:
    """The failure, in the case's history. A case changed at this very moment by someone
    else (a lost race) keeps the failure on the timer row only: the attempt is not lost."""
    payload = {
        "timer_id": timer.id,
        "timer": timer.name,
        "attempt": timer.attempts,
        "error": timer.last_error,
        # The error as data (engine/core/messages.py error_record), for a reader in another
        # language: its code and a guard's own words; ``error`` stays the English text.
        "error_detail": (timer.failure or {}).get("error"),
        "retry_at": retry.due_at.isoformat() if retry else None,
        "gave_up": retry is None,
    }
    try:
        with session.begin_nested():
            cases.record_event(
                session,
                timer.case_id,
                EventType.TIMER_FAILED,
                payload,
                actor=TIMER_ACTOR,
                now=now,
            )
    except ConcurrencyConflict:
        pass


def failed_timer(session: Session, timer_id: int) -> Timer:
    timer = session.get(Timer, timer_id)
    if timer is None or timer.status != TimerStatus.FAILED.value:
        raise TimerNotFound(
            f"No failed timer with id {timer_id}.",
            hint="List failed timers with `svcflow timers failed`.",
            timer_id=timer_id,
        )
    return timer


def stale_reason(session: Session, timer: Timer) -> Message | None:
    """Why a timer can no longer fire (its case closed, or left the state entry it belongs
    to); None when it still can."""
    case = cases.get_case(session, timer.case_id)
    if case.status != CaseStatus.OPEN.value:
        return Message(TIMER_CASE_CLOSED, {"case_id": case.id, "status": case.status})
    if timer.sla is None and case.state_entry_seq != timer.state_entry_seq:
        return Message(TIMER_STATE_LEFT, {"case_id": case.id, "state": case.state})
    return None


def cancel_failed(session: Session, timer_id: int, *, now: datetime, note: str) -> None:
    """Dismiss a failed timer that can no longer fire (an operator's decision)."""
    timer = _lock(session, timer_id)
    if timer is None or timer.status != TimerStatus.FAILED.value:
        raise TimerNotFound(
            f"No failed timer with id {timer_id}.",
            hint="List failed timers with `svcflow timers failed`.",
            timer_id=timer_id,
        )
    timer.status, timer.updated_at, timer.note = TimerStatus.CANCELLED.value, now, note
    session.flush()


def retry_failed(
    session: Session, timer_id: int, *, now: datetime, note: str
) -> scheduling.DueTimer:
    """Re-arm a failed timer (an operator's decision); it is delivered at once."""
    timer = _lock(session, timer_id)
    if timer is None or timer.status != TimerStatus.FAILED.value:
        raise TimerNotFound(
            f"No failed timer with id {timer_id}.",
            hint="List failed timers with `svcflow timers failed`.",
            timer_id=timer_id,
        )
    timer.status, timer.updated_at, timer.note = TimerStatus.ARMED.value, now, note
    timer.deliver_at = now
    session.flush()
    due = scheduling.DueTimer(timer.id, now, timer.attempts)
    scheduling.queue_for_delivery(session, [due])
    return due


def due_for_delivery(
    session: Session, *, until: datetime, after: datetime | None = None, limit: int = 10_000
) -> list[scheduling.DueTimer]:
    """Armed timers due by ``until`` (and after ``after``), earliest first: what the sweeper
    makes sure is queued, and the simulator fires."""
    query = select(timers.c.id, timers.c.due_at, timers.c.attempts).where(
        timers.c.status == TimerStatus.ARMED.value, timers.c.due_at <= until
    )
    if after is not None:
        query = query.where(timers.c.due_at > after)
    rows = session.execute(query.order_by(timers.c.due_at, timers.c.id).limit(limit)).all()
    return [scheduling.DueTimer(r.id, r.due_at, r.attempts) for r in rows]


def claim_overdue(
    session: Session, *, now: datetime, tolerance: timedelta, limit: int = 10_000
) -> list[scheduling.DueTimer]:
    """Armed timers whose expected delivery is more than ``tolerance`` behind ``now``: their
    hand-over was lost somewhere (a flushed or restarted Redis, a killed worker, a dead
    scheduler), whatever Redis says about their jobs. Each one's ``deliver_at`` moves to
    ``now``, so it is handed over again at most once per tolerance however many sweepers
    look; the caller delivers them after commit. A fire re-checks everything under row locks,
    so a delivery that was only slow, not lost, costs one no-op.

    Rows a fire holds locked right now are skipped (PostgreSQL): that delivery is under way."""
    rows = session.execute(
        select(timers.c.id, timers.c.due_at, timers.c.attempts)
        .where(timers.c.status == TimerStatus.ARMED.value, timers.c.deliver_at < now - tolerance)
        .order_by(timers.c.deliver_at, timers.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(
            update(timers).where(timers.c.id.in_([r.id for r in rows])).values(deliver_at=now)
        )
    return [scheduling.DueTimer(r.id, r.due_at, r.attempts) for r in rows]


def first_deliveries_in(
    session: Session, *, after: datetime, until: datetime, part: int = 0, parts: int = 1
) -> list[scheduling.DueTimer]:
    """Armed, never-attempted timers due in ``(after, until]`` whose id falls in ``part`` of
    ``parts`` (``id % parts == part``), earliest first: what one batch delivery job fires
    (see workers/timers.py, ``fire_due_second``)."""
    query = select(timers.c.id, timers.c.due_at, timers.c.attempts).where(
        timers.c.status == TimerStatus.ARMED.value,
        timers.c.attempts == 0,
        timers.c.due_at > after,
        timers.c.due_at <= until,
    )
    if parts > 1:
        query = query.where(timers.c.id % parts == part)
    rows = session.execute(query.order_by(timers.c.due_at, timers.c.id)).all()
    return [scheduling.DueTimer(r.id, r.due_at, r.attempts) for r in rows]


def next_due(session: Session) -> datetime | None:
    return session.execute(
        select(timers.c.due_at)
        .where(timers.c.status == TimerStatus.ARMED.value)
        .order_by(timers.c.due_at)
        .limit(1)
    ).scalar_one_or_none()


def case_timers(session: Session, case_id: int) -> Sequence[Timer]:
    return (
        session.execute(
            select(Timer).where(Timer.case_id == case_id).order_by(Timer.due_at, Timer.id)
        )
        .scalars()
        .all()
    )


_ARMED_OF_CASE = (
    select(timers)
    .where(timers.c.case_id == bindparam("b_case"), timers.c.status == TimerStatus.ARMED.value)
    .order_by(timers.c.due_at, timers.c.id)
)


def armed_timers(session: Session, case_id: int) -> Sequence[Row[Any]]:
    """The case's armed timers, earliest first: rows with a timer's attributes (a Core
    statement built once; a case read and every fire's response ask for them)."""
    return session.connection().execute(_ARMED_OF_CASE, {"b_case": case_id}).all()


def failed_timers(session: Session, limit: int = 500) -> Sequence[Timer]:
    return (
        session.execute(
            select(Timer)
            .where(Timer.status == TimerStatus.FAILED.value)
            .order_by(Timer.updated_at.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def timer_case(session: Session, timer_id: int) -> int:
    case_id = session.execute(
        select(Timer.case_id).where(Timer.id == timer_id)
    ).scalar_one_or_none()
    if case_id is None:
        raise TimerNotFound(f"No timer with id {timer_id}.", timer_id=timer_id)
    return int(case_id)
