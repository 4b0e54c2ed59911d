"""SLA clocks, computed from a case's history. Pure: ``now`` is passed in.

A clock is never stored. It is derived by walking the history: the event that meets a start
condition starts it, entering a pause state (or an operator's ``sla_paused`` event) pauses it,
leaving the pause resumes it, and the event that meets a stop condition stops it. Because
paused spans come from the history and business time from the calendar, a clock recomputed
after a calendar or target change is exact: no paused time is lost, which is what goes wrong
in service desks that store a running total.

A clock runs once: after it stops it stays stopped, even if the case re-enters a start state.
A case that reaches a final state or is cancelled stops its running clocks there.

Elapsed and remaining time are measured the way the target is written: a target of whole days
on a business calendar counts working days (``3d`` = three working days), anything else counts
working time inside the calendar's windows; on ``24x7`` both are wall time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from engine.core.calendar import BusinessCalendar, Deadline
from engine.core.definition import SlaCondition, SlaSpec, WorkflowDefinition
from engine.core.durations import Duration
from engine.core.records import EventRecord
from engine.core.timer_plans import WALL_CLOCK, Calendars, TimerPlan, get_calendar, resolve_duration

ENTERING_EVENTS = frozenset({"created", "transition", "forced"})
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
SLA_PAUSED = "sla_paused"
SLA_RESUMED = "sla_resumed"
CASE_ENDING_EVENTS = frozenset({"cancelled"})


class ClockStatus(str, Enum):
    PENDING = "pending"  # the start condition has not happened yet
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"  # the case was cancelled while the clock ran, within its target


@dataclass(frozen=True)
class SlaClock:
    name: str
    status: ClockStatus
    target: timedelta
    elapsed: timedelta
    remaining: timedelta
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    due_at: datetime | None = None  # the breach instant while running
    provisional: bool = False
    warnings_reached: tuple[float, ...] = ()
    calendar: str = WALL_CLOCK
    unit: str = "time"  # "time" (working time) or "days" (working days)

    @property
    def fraction(self) -> float:
        return self.elapsed / self.target if self.target else 0.0

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "name": self.name,
            "status": self.status.value,
            "target_seconds": self.target.total_seconds(),
            "elapsed_seconds": self.elapsed.total_seconds(),
            "remaining_seconds": self.remaining.total_seconds(),
            "fraction": round(self.fraction, 4),
            "started_at": iso(self.started_at),
            "stopped_at": iso(self.stopped_at),
            "due_at": iso(self.due_at),
            "provisional": self.provisional,
            "warnings_reached": list(self.warnings_reached),
            "calendar": self.calendar,
            "unit": self.unit,
        }


class _Ruler:
    """Measures and adds time the way an SLA's target is counted."""

    def __init__(self, calendar: BusinessCalendar, target: Duration | timedelta) -> None:
        self.calendar = calendar
        self.wall = calendar.name == WALL_CLOCK
        self.days = isinstance(target, Duration) and target.whole_days and not self.wall
        if isinstance(target, Duration):
            self.target = timedelta(days=target.days) if self.days else target.timedelta
        else:
            self.target = target

    def between(self, a: datetime, b: datetime) -> timedelta:
        if self.wall:
            return b - a
        if self.days:
            return self.calendar.working_days_between(a, b)
        return self.calendar.working_time_between(a, b)

    def add(self, start: datetime, amount: timedelta) -> Deadline:
        if self.wall:
            return Deadline(at=start + amount)
        if self.days:
            return self.calendar.add_working_day_time(start, amount)
        return self.calendar.add_working_time(start, amount)


def _meets(condition: SlaCondition, event: EventRecord) -> bool:
    entered = event.event_type in ENTERING_EVENTS and (
        event.event_type == "created" or event.from_state != event.to_state
    )
    if entered and event.to_state in condition.states:
        return True
    return event.event_type == "transition" and event.trigger in condition.triggers


def _is_for(event: EventRecord, sla: SlaSpec, kind: str) -> bool:
    return event.event_type == kind and event.payload.get("sla") == sla.name


@dataclass
class _Walk:
    phase: ClockStatus = ClockStatus.PENDING
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    running_since: datetime | None = None
    banked: timedelta = timedelta(0)  # elapsed before the current running span
    manual_pause: bool = False


def _walk(
    sla: SlaSpec, events: Sequence[EventRecord], ruler: _Ruler, finals: frozenset[str]
) -> _Walk:
    w = _Walk()
    for event in events:
        if w.phase is ClockStatus.PENDING:
            if _meets(sla.start, event):
                w.phase, w.started_at, w.running_since = ClockStatus.RUNNING, event.at, event.at
                if event.to_state in sla.pause.states:
                    w.phase, w.running_since = ClockStatus.PAUSED, None
            continue
        cancelled = event.event_type in CASE_ENDING_EVENTS
        finished = event.event_type in ENTERING_EVENTS and event.to_state in finals
        if _meets(sla.stop, event) or cancelled or finished:
            if w.phase is ClockStatus.RUNNING and w.running_since is not None:
                w.banked += ruler.between(w.running_since, event.at)
            # A cancelled case kept no promise and broke none (unless already late, which
            # compute_clock reports as breached); a finished one met it.
            w.phase = ClockStatus.CANCELLED if cancelled else ClockStatus.MET
            w.stopped_at, w.running_since = event.at, None
            return w
        if _is_for(event, sla, SLA_PAUSED):
            w.manual_pause = True
        elif _is_for(event, sla, SLA_RESUMED):
            w.manual_pause = False
        pause = w.manual_pause or event.to_state in sla.pause.states
        if w.phase is ClockStatus.RUNNING and pause and w.running_since is not None:
            w.banked += ruler.between(w.running_since, event.at)
            w.phase, w.running_since = ClockStatus.PAUSED, None
        elif w.phase is ClockStatus.PAUSED and not pause:
            w.phase, w.running_since = ClockStatus.RUNNING, event.at
    return w


def compute_clock(
    sla: SlaSpec,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
    finals: frozenset[str] = frozenset(),
) -> SlaClock:
    calendar = get_calendar(calendars, sla.calendar, f"{sla.path}.calendar")
    target = resolve_duration(
        sla.target, data=data, params=params, now=now, path=f"{sla.path}.target"
    )
    ruler = _Ruler(calendar, target)
    w = _walk(sla, events, ruler, finals)
    elapsed = w.banked
    due: Deadline | None = None
    if w.phase is ClockStatus.RUNNING and w.running_since is not None:
        elapsed += ruler.between(w.running_since, max(now, w.running_since))
        if ruler.target > w.banked:
            due = ruler.add(w.running_since, ruler.target - w.banked)
    status = w.phase
    breach_recorded = any(_is_for(e, sla, SLA_BREACHED) for e in events)
    if status is not ClockStatus.PENDING and (elapsed > ruler.target or breach_recorded):
        # A recorded breach stands even if the clock stopped exactly at its target after it.
        status = ClockStatus.BREACHED
    elif status is ClockStatus.RUNNING and elapsed == ruler.target:
        status = ClockStatus.BREACHED
    reached = tuple(f for f in sla.warn_at if elapsed >= ruler.target * f)
    return SlaClock(
        name=sla.name,
        status=status,
        target=ruler.target,
        elapsed=elapsed,
        remaining=max(ruler.target - elapsed, timedelta(0)),
        started_at=w.started_at,
        stopped_at=w.stopped_at,
        due_at=due.at if due else None,
        provisional=bool(due and due.provisional),
        warnings_reached=reached,
        calendar=calendar.name,
        unit="days" if ruler.days else "time",
    )


def compute_clocks(
    definition: WorkflowDefinition,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
) -> list[SlaClock]:
    return [
        compute_clock(
            sla,
            events,
            data=data,
            params=params,
            now=now,
            calendars=calendars,
            finals=definition.final_states,
        )
        for sla in definition.slas
    ]


def plan_sla_timers(
    definition: WorkflowDefinition,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
) -> list[TimerPlan]:
    """Timers for the warnings and breaches still ahead of each running clock.

    Warnings and breaches already recorded in the history are not planned again, so
    re-planning after every event (which is what the engine does) never repeats one.
    """
    plans: list[TimerPlan] = []
    for sla in definition.slas:
        calendar = get_calendar(calendars, sla.calendar, f"{sla.path}.calendar")
        target = resolve_duration(
            sla.target, data=data, params=params, now=now, path=f"{sla.path}.target"
        )
        ruler = _Ruler(calendar, target)
        w = _walk(sla, events, ruler, definition.final_states)
        if w.phase is not ClockStatus.RUNNING or w.running_since is None:
            continue
        warned = {e.payload.get("fraction") for e in events if _is_for(e, sla, SLA_WARNING)}
        breached = any(_is_for(e, sla, SLA_BREACHED) for e in events)
        marks: list[tuple[str, float]] = [(SLA_WARNING, f) for f in sla.warn_at if f not in warned]
        if not breached:
            marks.append((SLA_BREACHED, 1.0))
        for kind, fraction in marks:
            still = ruler.target * fraction - w.banked
            still = max(timedelta(0), still)
            deadline = ruler.add(w.running_since, still)
            payload: dict[str, Any] = {"sla": sla.name}
            if kind == SLA_WARNING:
                payload["fraction"] = fraction
            plans.append(
                TimerPlan(
                    name=f"sla:{sla.name}:{kind}:{fraction}",
                    kind=kind,
                    trigger=sla.breach_trigger if kind == SLA_BREACHED else None,
                    due_at=deadline.at,
                    payload=payload,
                    calendar=sla.calendar,
                    provisional=deadline.provisional,
                    sla=sla.name,
                )
            )
    return plans
