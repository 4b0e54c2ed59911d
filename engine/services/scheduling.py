"""Arming and cancelling timers in the transaction of the case change that causes them, and
handing the armed ones to delivery after that transaction commits.

The ``timers`` table is the source of truth. Delivery (RQ, see workers/timers.py) is told about
new timers only after commit, through the :class:`TimerDelivery` put in the session's ``info``
by whoever opens sessions (the web app, the worker). If that hand-over is lost (a crash between
commit and enqueue, a Redis flush), the sweeper finds the armed timers and delivers them again:
a timer can be late, never lost. Sessions without a delivery (CLI, simulation) just arm.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.orm import Session

from engine.core.definition import TimerKind, WorkflowDefinition
from engine.core.records import CaseRecord, EventRecord
from engine.core.timer_plans import TimerPlan, plan_timer
from engine.services import case_labels, sla_clocks
from engine.services.definitions import get_definition
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.database import inserted_id
from engine.store.models import CaseSla, CaseStatus, Timer, TimerStatus

log = logging.getLogger(__name__)

DELIVERY_KEY = "svcflow.timer_delivery"
_PENDING_KEY = "svcflow.timers_to_deliver"
timers = Timer.__table__
case_slas = CaseSla.__table__

# Built once, values bound per call: building an INSERT or UPDATE per call (and its cache key)
# cost more than executing it. Bind names differ from column names: an UPDATE reserves those
# for its SET clause.
_INSERT_TIMER = insert(timers)
_ARMED = timers.c.status == TimerStatus.ARMED.value
_CANCELLED = {
    "status": TimerStatus.CANCELLED.value,
    "updated_at": bindparam("b_now"),
    "note": bindparam("b_note"),
}
_CANCEL_ALL = (
    update(timers).where(_ARMED, timers.c.case_id == bindparam("b_case")).values(_CANCELLED)
)
_CANCEL_ENTRY = (
    update(timers)
    .where(
        _ARMED,
        timers.c.case_id == bindparam("b_case"),
        timers.c.state_entry_seq == bindparam("b_entry"),
        timers.c.sla.is_(None),
    )
    .values(_CANCELLED)
)
_CANCEL_STATE_TIMERS = (
    update(timers)
    .where(_ARMED, timers.c.case_id == bindparam("b_case"), timers.c.sla.is_(None))
    .values(_CANCELLED)
)
_CANCEL_IDS = (
    update(timers)
    .where(_ARMED, timers.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(_CANCELLED)
)
_FIRED_IN_ENTRY = select(timers.c.name, timers.c.due_at).where(
    timers.c.case_id == bindparam("b_case"),
    timers.c.state_entry_seq == bindparam("b_entry"),
    timers.c.status == TimerStatus.FIRED.value,
    timers.c.sla.is_(None),
)


@dataclass(frozen=True)
class DueTimer:
    """What delivery needs to know: which timer, when, and which attempt."""

    id: int
    due_at: datetime
    attempts: int = 0


class TimerDelivery(Protocol):
    def deliver(self, due: Sequence[DueTimer]) -> None: ...


def queue_for_delivery(session: Session, due: Sequence[DueTimer]) -> None:
    if due and session.info.get(DELIVERY_KEY) is not None:
        session.info.setdefault(_PENDING_KEY, []).extend(due)


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    delivery = session.info.get(DELIVERY_KEY)
    if not pending or delivery is None:
        return
    try:
        delivery.deliver(pending)
    except Exception as exc:  # the timers are committed; the sweeper will deliver them
        log.warning(
            "timer hand-over to delivery failed after commit (%s: %s); the sweeper "
            "will deliver them",
            type(exc).__name__,
            exc,
        )


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


# --- arming and cancelling ---------------------------------------------------------------------


def arm(
    session: Session, case_id: int, entry_seq: int, plans: Sequence[TimerPlan], now: datetime
) -> list[DueTimer]:
    armed = []
    conn = session.connection() if plans else None
    for plan in plans:
        assert conn is not None
        timer_id = inserted_id(
            conn.execute(
                _INSERT_TIMER,
                {
                    "case_id": case_id,
                    "state_entry_seq": entry_seq,
                    "name": plan.name,
                    "kind": plan.kind,
                    "sla": plan.sla,
                    "trigger": plan.trigger,
                    "payload": dict(plan.payload),
                    "calendar": plan.calendar,
                    "due_at": plan.due_at,
                    # Armed already due (a state entered in the past by a late report, a
                    # re-planned clock): expected from now, not hours ago.
                    "deliver_at": max(plan.due_at, now),
                    "provisional": plan.provisional,
                    "status": TimerStatus.ARMED.value,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        )
        armed.append(DueTimer(timer_id, plan.due_at))
    queue_for_delivery(session, armed)
    return armed


def _cancel(session: Session, statement: Any, *, now: datetime, note: str, **where: Any) -> None:
    """Cancel the armed timers ``statement`` (one of the ``_CANCEL_*``) matches."""
    session.connection().execute(statement, {"b_now": now, "b_note": note, **where})


def _fired_in_entry(session: Session, case_id: int, entry_seq: int) -> dict[str, datetime]:
    """Latest fired due time per timer name in one state entry."""
    rows = (
        session.connection()
        .execute(_FIRED_IN_ENTRY, {"b_case": case_id, "b_entry": entry_seq})
        .all()
    )
    fired: dict[str, datetime] = {}
    for name, due in rows:
        fired[name] = max(due, fired.get(name, due))
    return fired


def _plan_entry(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    now: datetime,
    *,
    fresh: bool = False,
) -> list[TimerPlan]:
    """The state timers still ahead in the case's current state entry (``fresh``: the entry
    just began, so none of its timers can have fired yet)."""
    calendars = LazyCalendars(session)
    fired = {} if fresh else _fired_in_entry(session, case.id, case.state_entry_seq)
    plans = []
    for timer in definition.state(case.state).timers:
        if timer.name in fired and timer.kind is not TimerKind.EVERY:
            continue  # one-shot timers fire once per state entry
        after = fired.get(timer.name, case.state_entered_at)
        plans.append(
            plan_timer(
                timer,
                entered_at=case.state_entered_at,
                after=after,
                data=case.data,
                params=case.params,
                calendars=calendars,
                decisions=definition.decisions,
                case={
                    "id": case.id,
                    "definition": case.definition_name,
                    "state": case.state,
                    "created_at": case.created_at,
                },
            )
        )
    return plans


def sync_after_event(
    session: Session,
    definition: WorkflowDefinition,
    *,
    case: CaseRecord,
    previous: CaseRecord | None,
    event: EventRecord,
    now: datetime,
) -> None:
    """Bring the case's armed timers (and its supervisor labels) in line with ``event``, just
    appended.

    This runs inside every fire, so it issues no statement that cannot matter: a definition
    without SLAs and a transition between states without timers cost nothing here, and SLA
    clocks are advanced by the one event (engine/services/sla_clocks.py), their timers
    touched only when a due instant moves; labels are written only when the event set one
    of their fields (a new case gets them in its INSERT).
    """
    if previous is not None:
        case_labels.relabel(session, definition, case, event)
    timed = definition.timed_states
    if case.status != CaseStatus.OPEN.value:
        if timed or definition.slas:
            _cancel(session, _CANCEL_ALL, b_case=case.id, now=now, note=f"case {case.status}")
        if definition.slas:
            sla_clocks.sync(session, definition, case, event, now=now)  # stops the clocks
        return
    if previous is None or previous.state_entry_seq != case.state_entry_seq:
        if previous is not None and previous.state in timed:
            _cancel(
                session,
                _CANCEL_ENTRY,
                b_case=case.id,
                b_entry=previous.state_entry_seq,
                now=now,
                note=f"left state {previous.state!r}",
            )
        if case.state in timed:
            plans = _plan_entry(session, definition, case, now, fresh=True)
            arm(session, case.id, case.state_entry_seq, plans, now)
    if definition.slas:
        _apply(session, case, sla_clocks.sync(session, definition, case, event, now=now), now)


def _apply(
    session: Session,
    case: CaseRecord,
    changes: sla_clocks.TimerChanges,
    now: datetime,
    note: str = "SLA re-planned",
) -> None:
    if changes.cancel:
        _cancel(session, _CANCEL_IDS, b_ids=list(changes.cancel), now=now, note=note)
    if changes.arm:
        arm(session, case.id, case.state_entry_seq, changes.arm, now)


def replan_case(
    session: Session, definition: WorkflowDefinition, case: CaseRecord, *, now: datetime, note: str
) -> None:
    """Re-plan every armed timer of a case (after a calendar or state change): its state
    timers afresh, its SLA clocks recomputed from the whole history."""
    _cancel(session, _CANCEL_STATE_TIMERS, b_case=case.id, now=now, note=note)
    if case.status != CaseStatus.OPEN.value:
        return
    arm(session, case.id, case.state_entry_seq, _plan_entry(session, definition, case, now), now)
    if definition.slas:
        changes = sla_clocks.recompute(session, definition, case, now=now)
        _apply(session, case, changes, now, note)


def planned_after_move(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    history: Sequence[EventRecord],
    *,
    now: datetime,
) -> list[TimerPlan]:
    """What :func:`replan_case` would arm for ``case`` under ``definition`` once ``history``
    (ending with the event that moves it) is written, computed without writing; raises the
    error that would stop the re-planning (a migration's dry run reports it per case)."""
    if case.status != CaseStatus.OPEN.value:
        return []
    plans = _plan_entry(session, definition, case, now)
    if definition.slas:
        plans += sla_clocks.planned_from_history(session, definition, case, history, now=now)
    return plans


def replan_calendar(session: Session, calendar: str, *, now: datetime) -> int:
    """Re-plan every case a change of ``calendar`` reaches: those with an armed timer on it,
    and those with an open SLA clock measured on it (a paused clock has no timer, but its
    banked time was counted on the old calendar). Stopped clocks keep what they measured
    when they stopped: a met or breached promise is a record. Returns the count of cases."""
    with_timers = select(timers.c.case_id).where(
        timers.c.status == TimerStatus.ARMED.value, timers.c.calendar == calendar
    )
    with_open_clocks = select(case_slas.c.case_id).where(
        case_slas.c.calendar == calendar, case_slas.c.stopped_at.is_(None)
    )
    case_ids = sorted(
        set(session.execute(with_timers).scalars())
        | set(session.execute(with_open_clocks).scalars())
    )
    for case_id in case_ids:
        case = case_store.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
        replan_case(session, definition, case, now=now, note=f"calendar {calendar!r} changed")
    return len(case_ids)
