"""A case's SLA clocks as kept state: advanced by each event, read without the history.

Every event of a case advances each of its clocks by that one event (engine.core.sla.advance)
from the state kept in ``case_slas``: the cost of a fire does not grow with the history. The
history is read only to recompute a clock whose state is not kept or no longer fits (rows
from before migration 0007, a target whose unit changed, a calendar edited or swapped:
:func:`recompute`), and a hypothesis test checks that both ways always agree.

Only what changed is written: a clock whose state the event left alone costs no statement,
and its warning and breach timers are replaced only when their due instant moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from engine.core.definition import SlaSpec, WorkflowDefinition
from engine.core.records import CaseRecord, EventRecord
from engine.core.sla import (
    SLA_WARNING,
    ClockState,
    ClockStatus,
    Ruler,
    SlaClock,
    advance,
    clock_at,
    plan_clock,
    ruler_for,
    walk,
)
from engine.core.timer_plans import Calendars, TimerPlan
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.models import CaseSla, Timer, TimerStatus

case_slas = CaseSla.__table__
timers = Timer.__table__

_SELECT_ROWS = select(case_slas).where(case_slas.c.case_id == bindparam("case_id"))
_SELECT_ARMED = select(timers.c.id, timers.c.name, timers.c.sla, timers.c.due_at).where(
    timers.c.case_id == bindparam("case_id"),
    timers.c.status == TimerStatus.ARMED.value,
    timers.c.sla.is_not(None),
)


@dataclass
class TimerChanges:
    """What the clocks' timers need after an event: timer ids to cancel, plans to arm."""

    cancel: list[int] = field(default_factory=list)
    arm: list[TimerPlan] = field(default_factory=list)


@dataclass(frozen=True)
class _Clock:
    sla: SlaSpec
    ruler: Ruler
    state: ClockState
    row: Row[Any] | None  # as kept before this event


def kept_state(row: Row[Any] | None, ruler: Ruler) -> ClockState | None:
    """The state a row keeps, if it keeps one measured the way ``ruler`` measures."""
    if row is None or row.phase is None:
        return None
    if row.unit != ruler.unit or row.calendar != ruler.calendar.name:
        return None
    return ClockState(
        phase=ClockStatus(row.phase),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        running_since=row.running_since,
        banked=timedelta(seconds=row.banked_seconds or 0.0),
        manual_pause=bool(row.manual_pause),
        warned=frozenset(float(f) for f in row.warned or ()),
        warned_at=row.warned_at,
        breach_recorded=bool(row.breach_recorded),
        paused_at=row.paused_at,
        resume_at=row.resume_at,
    )


def _rows(session: Session, case_id: int) -> dict[str, Row[Any]]:
    return {r.sla: r for r in session.connection().execute(_SELECT_ROWS, {"case_id": case_id})}


def sync(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    event: EventRecord,
    *,
    now: datetime,
    full: bool = False,
) -> TimerChanges:
    """Advance the case's clocks by ``event`` (just appended), or recompute them from the
    history when ``full`` or their state is not kept; write what changed and return the
    timer changes it implies."""
    rows = _rows(session, case.id)
    calendars = LazyCalendars(session)
    history: list[EventRecord] | None = None
    changed: list[_Clock] = []
    for sla in definition.slas:
        ruler = ruler_for(sla, data=case.data, params=case.params, now=now, calendars=calendars)
        row = rows.get(sla.name)
        before = None if full else kept_state(row, ruler)
        if before is None:
            if history is None:
                history = case_store.events_of(session.connection(), case.id)
            after = walk(sla, history, ruler, definition.final_states)
        else:
            after = advance(before, sla, event, ruler, definition.final_states)
        moved_target = row is None or row.target_seconds != ruler.target.total_seconds()
        if before is None or after != before or moved_target:
            changed.append(_Clock(sla, ruler, after, row))
    if not changed:
        return TimerChanges()
    changes = _timer_changes(session, case.id, changed)
    _write(session, definition, case, changed, now=now)
    return changes


def recompute(
    session: Session, definition: WorkflowDefinition, case: CaseRecord, *, now: datetime
) -> TimerChanges:
    """Every clock of the case from its whole history (a calendar edited, an operator's
    request): the state kept is replaced, and the timers follow."""
    events = case_store.events_of(session.connection(), case.id)
    if not events:
        return TimerChanges()
    return sync(session, definition, case, events[-1], now=now, full=True)


def _timer_changes(session: Session, case_id: int, changed: Sequence[_Clock]) -> TimerChanges:
    """Keep each armed timer whose plan is unchanged (same name, same due instant); cancel
    the others of the changed clocks, arm the plans not already armed."""
    names = {c.sla.name for c in changed}
    armed = [
        r
        for r in session.connection().execute(_SELECT_ARMED, {"case_id": case_id})
        if r.sla in names
    ]
    wanted = [plan for c in changed for plan in plan_clock(c.sla, c.state, c.ruler)]
    have = {(r.name, r.due_at): r.id for r in armed}
    keep = {have[(p.name, p.due_at)] for p in wanted if (p.name, p.due_at) in have}
    return TimerChanges(
        cancel=[r.id for r in armed if r.id not in keep],
        arm=[p for p in wanted if (p.name, p.due_at) not in have],
    )


def _write(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    changed: Sequence[_Clock],
    *,
    now: datetime,
) -> None:
    conn = session.connection()
    for clock in changed:
        shown = clock_at(clock.sla, clock.state, clock.ruler, now)
        values = _values(clock, shown, _warn_at(clock), now)
        if clock.row is None:
            conn.execute(
                insert(case_slas).values(
                    case_id=case.id, definition_name=definition.name, sla=clock.sla.name, **values
                )
            )
        else:
            conn.execute(update(case_slas).where(case_slas.c.id == clock.row.id).values(**values))


def _warn_at(clock: _Clock) -> datetime | None:
    """The clock's first warning instant: one recorded, or the earliest still planned.

    A delivered warning is no longer planned, but the clock is still past it: without the
    recorded one the "past warning" query would only ever see warnings whose timer is late."""
    planned = [
        p.due_at for p in plan_clock(clock.sla, clock.state, clock.ruler) if p.kind == SLA_WARNING
    ]
    moments = [*planned, *([clock.state.warned_at] if clock.state.warned_at else [])]
    return min(moments) if moments else None


def _values(
    clock: _Clock, shown: SlaClock, warn_at: datetime | None, now: datetime
) -> dict[str, Any]:
    state = clock.state
    return {
        "status": shown.status.value,
        "target_seconds": shown.target.total_seconds(),
        "elapsed_seconds": shown.elapsed.total_seconds(),
        "started_at": state.started_at,
        "stopped_at": state.stopped_at,
        "due_at": shown.due_at,
        "warn_at": warn_at,
        "updated_at": now,
        "phase": state.phase.value,
        "running_since": state.running_since,
        "banked_seconds": state.banked.total_seconds(),
        "manual_pause": state.manual_pause,
        "warned": sorted(state.warned),
        "warned_at": state.warned_at,
        "breach_recorded": state.breach_recorded,
        "paused_at": state.paused_at,
        "resume_at": state.resume_at,
        "unit": clock.ruler.unit,
        "calendar": clock.ruler.calendar.name,
    }


def clocks(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    *,
    now: datetime,
    history: Sequence[EventRecord] | None = None,
    calendars: Calendars | None = None,
) -> list[SlaClock]:
    """The case's clocks as of ``now``, from the state kept (the history is read only for a
    clock without one)."""
    if not definition.slas:
        return []
    rows = _rows(session, case.id)
    calendars = calendars if calendars is not None else LazyCalendars(session)
    out = []
    for sla in definition.slas:
        ruler = ruler_for(sla, data=case.data, params=case.params, now=now, calendars=calendars)
        state = kept_state(rows.get(sla.name), ruler)
        if state is None:
            if history is None:
                history = case_store.events_of(session.connection(), case.id)
            state = walk(sla, history, ruler, definition.final_states)
        out.append(clock_at(sla, state, ruler, now))
    return out
