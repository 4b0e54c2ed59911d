"""SLA clocks, computed from a case's history. Pure: ``now`` is passed in.

A clock is a fold over the history (:func:`advance`, one event at a time): the event that
meets a start condition starts it, entering a pause state (or an operator's ``sla_paused``
event) pauses it, leaving the pause resumes it, and the event that meets a stop condition
stops it. The engine keeps each clock's state (:class:`ClockState`) and advances it by every
new event, so a fire costs the same at event 10 and event 4,000; because paused spans come
from the history and business time from the calendar, a clock recomputed from the history
after a calendar or target change is exact: no paused time is lost, which is what goes wrong
in service desks that store a running total.

A clock runs once (``rounds: once``, the default): after it stops it stays stopped, even if
the case re-enters a start state. With ``rounds: repeat`` the start condition happening again
after the clock stopped starts a new *round* (a second rectification, a re-dispatch): each
round is a clock of its own, with its own start, stop, pauses, warnings and breach, and the
warnings and breach events name their round (``payload.round``). An event that stops a round
and meets the start condition too (a re-dispatch that ends one arrival and begins the next)
starts the next round at once; a start condition met while a round runs changes nothing.
A case that reaches a final state or is cancelled stops its running clocks there.

An SLA with ``when`` applies to some cases only: the condition is evaluated on the case as
each event leaves it (its data, parameters, ``case.state``), at the event that starts a round
and at every later event until the round stops, the stopping event included. A round whose
condition is false there ends *not applicable* at that event: no warning or breach, and no
place in the KPIs' denominators. A round whose breach was already recorded stays breached
(the breach is history, and may have had consequences). With ``counted_from`` a round starts
at its start condition but counts from the instant the expression gives, read at that event
(``case.created_at``: the report); the time before the event counts in full, pauses apply
from the event on, and an instant after the event is refused.

Elapsed and remaining time are measured the way the target is written: a target of whole days
on a business calendar counts working days (``3d``, ``3 working days``), anything else counts
working time inside the calendar's windows; on ``24x7`` both are wall time. A target in
calendar months (``12 months``) is wall time too, as long as the months from the clock's start
are (12 months from 29 Feb 2028 are 365 days, from 1 Mar 2027 366): paused time moves the end.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from engine.core.calendar import BusinessCalendar, Deadline, add_months
from engine.core.definition import SlaCondition, SlaSpec, WorkflowDefinition
from engine.core.durations import Duration
from engine.core.expressions import DecisionSource, compiled, make_context
from engine.core.migration import DROPPED_KEY, MIGRATED, as_current
from engine.core.records import EventRecord
from engine.core.timer_plans import (
    WALL_CLOCK,
    Calendars,
    TimerPlan,
    counted_from_instant,
    get_calendar,
    months_zone,
    resolve_duration,
)
from engine.errors import ExpressionError, written

ENTERING_EVENTS = frozenset({"created", "transition", "forced"})
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
SLA_PAUSED = "sla_paused"
SLA_RESUMED = "sla_resumed"
SLA_RESUME = "sla_resume"  # the timer that ends an operator's pause at its resume time
CASE_ENDING_EVENTS = frozenset({"cancelled"})
_OWN_EVENTS = frozenset({SLA_WARNING, SLA_BREACHED, SLA_PAUSED, SLA_RESUMED})
# How long after its deadline instant a breach is recorded: a second, RQ's own grain of time,
# so that an action at the deadline instant itself keeps the promise ("within 1 hour").
BREACH_AFTER = timedelta(seconds=1)


class ClockStatus(str, Enum):
    PENDING = "pending"  # the start condition has not happened yet
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"  # the case was cancelled while the clock ran, within its target
    NOT_APPLICABLE = "not_applicable"  # its ``when`` was false: neither met nor breached


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
    round: int = 1  # 1 for a clock that runs once; counts up with ``rounds: repeat``
    manual_pause: bool = False  # paused by an operator (sla_paused), not only by its state

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
            "round": self.round,
        }


class Ruler:
    """Measures and adds time the way an SLA's target is counted.

    A target in calendar months has no length of its own: ``now`` gives the length it has
    from now (for a clock not started yet), :meth:`started` the length from the clock's
    start."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        target: Duration | timedelta,
        now: datetime | None = None,
    ) -> None:
        self.calendar = calendar
        self.months = target.months if isinstance(target, Duration) else 0
        self.wall = calendar.name == WALL_CLOCK or self.months > 0
        self.days = isinstance(target, Duration) and target.whole_days and not self.wall
        if self.months:
            if now is None:
                raise ValueError("a target in calendar months needs the instant it runs from")
            self.target = self._months_from(now)
        elif isinstance(target, Duration):
            self.target = timedelta(days=target.days) if self.days else target.timedelta
        else:
            self.target = target

    def _months_from(self, start: datetime) -> timedelta:
        return add_months(start, self.months, months_zone(self.calendar)) - start

    def started(self, started_at: datetime | None) -> Ruler:
        """This ruler for a clock that started at ``started_at``: the same, unless its target
        is in months, whose length depends on the start."""
        if not self.months or started_at is None:
            return self
        moved = copy.copy(self)
        moved.target = self._months_from(started_at)
        return moved

    @property
    def unit(self) -> str:
        """ "days" (working days) or "time" (working time, or wall time on 24x7)."""
        return "days" if self.days else "time"

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


@dataclass(frozen=True)
class CaseFacts:
    """What an SLA's ``when`` and ``counted_from`` read beside the data, the same at every
    event of a case: its parameters, identity and creation instant, and what the
    expressions' functions need (decision tables, calendars)."""

    params: Mapping[str, Any]
    case_id: int = 0
    definition: str = ""
    created_at: datetime | None = None
    decisions: DecisionSource | None = None
    calendars: Calendars | None = None


@dataclass(frozen=True)
class CaseView:
    """The case as one event left it: what ``when`` and ``counted_from`` are evaluated on
    (``now`` is the event's instant, ``case.state`` the state it left the case in)."""

    facts: CaseFacts
    data: Mapping[str, Any]

    def _context(self, event: EventRecord) -> dict[str, Any]:
        facts = self.facts
        case = {
            "id": facts.case_id or event.case_id,
            "definition": facts.definition,
            "state": event.to_state,
            "created_at": facts.created_at or event.at,
        }
        return make_context(
            self.data,
            {},
            facts.params,
            event.at,
            case=case,
            decisions=facts.decisions,
            calendars=facts.calendars,
        )

    def applies(self, sla: SlaSpec, event: EventRecord) -> bool:
        if sla.when is None:
            return True
        path = f"{sla.path}.when"
        value = compiled(sla.when, path).evaluate(self._context(event))
        if not isinstance(value, bool):
            raise ExpressionError(
                f"Expression at {path} gave {written(value)}, not true or false.",
                hint="Write a condition, e.g. data.severity == 'complex'.",
                path=path,
            )
        return value

    def start_instant(self, sla: SlaSpec, event: EventRecord) -> datetime:
        """The instant a round started by ``event`` counts from."""
        if sla.counted_from is None:
            return event.at
        return counted_from_instant(
            sla.counted_from, f"{sla.path}.counted_from", self._context(event), latest=event.at
        )


def case_views(events: Sequence[EventRecord], facts: CaseFacts) -> list[CaseView]:
    """The case as each event left it (its data folded from the history's ``changes``)."""
    views: list[CaseView] = []
    data: dict[str, Any] = {}
    for event in events:
        created = event.event_type == "created"
        data = dict(event.changes) if created else {**data, **event.changes}
        if event.event_type == MIGRATED:  # fields the new version no longer has
            for name in event.payload.get(DROPPED_KEY) or ():
                data.pop(name, None)
        views.append(CaseView(facts, data))
    return views


def _meets(condition: SlaCondition, event: EventRecord) -> bool:
    entered = event.event_type in ENTERING_EVENTS and (
        event.event_type == "created" or event.from_state != event.to_state
    )
    if entered and event.to_state in condition.states:
        return True
    return event.event_type == "transition" and event.trigger in condition.triggers


def _is_for(event: EventRecord, sla: SlaSpec, kind: str) -> bool:
    return event.event_type == kind and event.payload.get("sla") == sla.name


def _of_round(event: EventRecord, state: ClockState) -> bool:
    """Whether a warning or breach event is the current round's: it names its round, or
    (every clock that runs once, and histories from before rounds) none, meaning the first."""
    return bool(event.payload.get("round", 1) == state.round)


@dataclass(frozen=True)
class ClockState:
    """A clock's progress after a prefix of the history: all the next event needs.

    Folding :func:`advance` over a history gives the same state as walking it in one go, so
    the engine keeps this state per case and SLA (``case_slas``) and advances it by each new
    event, in time independent of the history's length. ``banked`` is measured in the
    ruler's unit (working time, or working days as a timedelta of days) on its calendar:
    when either changes the state is recomputed from the history instead."""

    phase: ClockStatus = ClockStatus.PENDING
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    running_since: datetime | None = None
    banked: timedelta = timedelta(0)  # elapsed before the current running span
    manual_pause: bool = False
    warned: frozenset[float] = frozenset()  # warning fractions recorded in the history
    warned_at: datetime | None = None  # the first recorded warning
    breach_recorded: bool = False
    paused_at: datetime | None = None  # when the operator's pause in force began
    resume_at: datetime | None = None  # when an operator's pause ends by itself
    round: int = 1  # which round of the SLA this state is (always 1 with ``rounds: once``)


def advance(
    state: ClockState,
    sla: SlaSpec,
    event: EventRecord,
    ruler: Ruler,
    finals: frozenset[str],
    *,
    view: CaseView | None = None,
) -> ClockState:
    """The clock's current round after ``event``, given its state before it. A round that
    stops stays stopped; the next one, if ``event`` starts it, is :func:`next_round`'s.
    ``view``: the case as ``event`` left it, needed by an SLA with ``when`` or
    ``counted_from`` (:attr:`SlaSpec.reads_case`)."""
    if sla.reads_case and view is None:
        raise ValueError(f"SLA {sla.name!r} reads the case: advance() needs its view")
    if _is_for(event, sla, SLA_WARNING) and _of_round(event, state):
        fraction = event.payload.get("fraction")
        if isinstance(fraction, int | float):
            first = event.at if state.warned_at is None else min(state.warned_at, event.at)
            state = replace(state, warned=state.warned | {float(fraction)}, warned_at=first)
    elif _is_for(event, sla, SLA_BREACHED) and _of_round(event, state):
        state = replace(state, breach_recorded=True)
    if state.phase is ClockStatus.PENDING:
        if not _meets(sla.start, event):
            return state
        if view is not None and not view.applies(sla, event):
            return replace(
                state, phase=ClockStatus.NOT_APPLICABLE, started_at=event.at, stopped_at=event.at
            )
        since = event.at if view is None else view.start_instant(sla, event)
        if event.to_state in sla.pause.states:
            # Counted from an earlier instant: the time up to the start counts in full.
            banked = ruler.between(since, event.at) if since < event.at else timedelta(0)
            return replace(state, phase=ClockStatus.PAUSED, started_at=since, banked=banked)
        return replace(state, phase=ClockStatus.RUNNING, started_at=since, running_since=since)
    if state.phase in (ClockStatus.MET, ClockStatus.CANCELLED, ClockStatus.NOT_APPLICABLE):
        return state  # a round runs once
    cancelled = event.event_type in CASE_ENDING_EVENTS
    finished = event.event_type in ENTERING_EVENTS and event.to_state in finals
    not_applicable = view is not None and not state.breach_recorded and not view.applies(sla, event)
    if _meets(sla.stop, event) or cancelled or finished or not_applicable:
        banked = state.banked
        if state.phase is ClockStatus.RUNNING and state.running_since is not None:
            banked += ruler.between(state.running_since, event.at)
        if not_applicable:
            return replace(
                state,
                phase=ClockStatus.NOT_APPLICABLE,
                stopped_at=event.at,
                running_since=None,
                banked=banked,
            )
        # A cancelled case kept no promise and broke none (unless already late, which
        # clock_at reports as breached); a finished one met it.
        return replace(
            state,
            phase=ClockStatus.CANCELLED if cancelled else ClockStatus.MET,
            stopped_at=event.at,
            running_since=None,
            banked=banked,
        )
    manual, paused_at, resume_at = state.manual_pause, state.paused_at, state.resume_at
    if _is_for(event, sla, SLA_PAUSED):
        manual, paused_at, resume_at = True, event.at, _instant(event.payload.get("resume_at"))
    elif _is_for(event, sla, SLA_RESUMED):
        manual, paused_at, resume_at = False, None, None
    if (paused_at, resume_at) != (state.paused_at, state.resume_at):
        state = replace(state, paused_at=paused_at, resume_at=resume_at)
    pause = manual or event.to_state in sla.pause.states
    if state.phase is ClockStatus.RUNNING and pause and state.running_since is not None:
        return replace(
            state,
            phase=ClockStatus.PAUSED,
            running_since=None,
            banked=state.banked + ruler.between(state.running_since, event.at),
            manual_pause=manual,
        )
    if state.phase is ClockStatus.PAUSED and not pause:
        return replace(
            state, phase=ClockStatus.RUNNING, running_since=event.at, manual_pause=manual
        )
    return state if manual == state.manual_pause else replace(state, manual_pause=manual)


def _ends_case(event: EventRecord, finals: frozenset[str]) -> bool:
    return event.event_type in CASE_ENDING_EVENTS or (
        event.event_type in ENTERING_EVENTS and event.to_state in finals
    )


def next_round(
    state: ClockState,
    sla: SlaSpec,
    event: EventRecord,
    ruler: Ruler,
    finals: frozenset[str],
    *,
    view: CaseView | None = None,
) -> ClockState | None:
    """The round ``event`` starts, given the current round as ``event`` left it
    (:func:`advance`), or None. Only an SLA with ``rounds: repeat`` has more than one: its
    next round starts at an event that meets the start condition once the current round has
    stopped (met, in time or late, or not applicable), including the event that stopped it;
    never at an event that ends the case (a final state, a cancellation)."""
    if not sla.repeats or state.phase not in _ROUND_OVER:
        return None
    if not _meets(sla.start, event) or _ends_case(event, finals):
        return None
    return advance(ClockState(round=state.round + 1), sla, event, ruler, finals, view=view)


_ROUND_OVER = frozenset({ClockStatus.MET, ClockStatus.NOT_APPLICABLE})


def touches(
    phase: ClockStatus,
    manual_pause: bool,
    sla: SlaSpec,
    event: EventRecord,
    finals: frozenset[str],
) -> bool:
    """Whether :func:`advance` could change a clock in ``phase`` (paused by an operator when
    ``manual_pause``) for ``event``; decided from the definition alone, without a ruler.
    False only when the event certainly leaves the clock's state as it is: it neither
    starts, stops, pauses nor resumes it, starts no new round (:func:`next_round`) and is no
    SLA event of its own. Most events of a case with several clocks touch one or none."""
    if event.event_type in _OWN_EVENTS and event.payload.get("sla") == sla.name:
        return True
    if phase is ClockStatus.PENDING:
        return _meets(sla.start, event)
    if phase in _ROUND_OVER:
        return sla.repeats and _meets(sla.start, event) and not _ends_case(event, finals)
    if phase is ClockStatus.CANCELLED:
        return False
    if sla.when is not None and _may_change_condition(sla.when, sla.path, event):
        return True  # may make the round not applicable
    if phase is not ClockStatus.RUNNING and phase is not ClockStatus.PAUSED:
        return True  # not a phase advance keeps: let it decide
    if event.event_type in CASE_ENDING_EVENTS or _meets(sla.stop, event):
        return True
    if event.event_type in ENTERING_EVENTS and event.to_state in finals:
        return True
    pause = manual_pause or event.to_state in sla.pause.states
    return pause if phase is ClockStatus.RUNNING else not pause


def _may_change_condition(source: str, path: str, event: EventRecord) -> bool:
    """Whether ``event`` may change what a ``when`` gives: it changes a data field the
    condition reads (any, if it reads data through a decision table or without naming
    fields), moves the case when it reads ``case``, or is a migration (which drops fields)."""
    if event.event_type == MIGRATED:
        return True
    expression = compiled(source, f"{path}.when")
    if "case" in expression.variables and event.from_state != event.to_state:
        return True
    if not event.changes:
        return False
    fields = None if "decisions" in expression.variables else expression.data_fields
    return fields is None or not fields.isdisjoint(event.changes)


def measure_of(calendar: str | None, target: Duration | timedelta) -> tuple[float, str] | None:
    """The target in seconds and its unit as :class:`Ruler` counts them on the calendar named
    ``calendar`` (an SLA's), without the calendar itself: only whether it is the wall clock
    matters. None for a target in months, whose length depends on the clock's start. Kept
    beside :class:`Ruler` so that the two cannot drift apart."""
    if isinstance(target, Duration) and target.months:
        return None
    wall = calendar in (None, WALL_CLOCK)
    days = isinstance(target, Duration) and target.whole_days and not wall
    if isinstance(target, Duration):
        amount = timedelta(days=target.days) if days else target.timedelta
    else:
        amount = target
    return amount.total_seconds(), "days" if days else "time"


def _instant(value: Any) -> datetime | None:
    """A resume time as the history keeps it (ISO 8601 text), or None."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def walk_rounds(
    sla: SlaSpec,
    events: Sequence[EventRecord],
    ruler: Ruler,
    finals: frozenset[str],
    facts: CaseFacts | None = None,
) -> list[ClockState]:
    """Every round of the clock after the whole history (recomputation from scratch), the
    first first; at least one (pending, if its start condition never happened). ``facts``:
    needed by an SLA that reads the case (``when``, ``counted_from``)."""
    rounds = [ClockState()]
    # Events before a migration are read with their states renamed as it mapped them, so a
    # clock of the version the case is on now measures its past (engine/core/migration.py).
    current = as_current(events)
    views: list[CaseView | None] = [None] * len(current)
    if sla.reads_case:
        if facts is None:
            raise ValueError(f"SLA {sla.name!r} reads the case: walk_rounds() needs its facts")
        views = list(case_views(current, facts))
    for event, view in zip(current, views, strict=True):
        rounds[-1] = advance(rounds[-1], sla, event, ruler, finals, view=view)
        started = next_round(rounds[-1], sla, event, ruler, finals, view=view)
        if started is not None:
            rounds.append(started)
    return rounds


def walk(
    sla: SlaSpec,
    events: Sequence[EventRecord],
    ruler: Ruler,
    finals: frozenset[str],
    facts: CaseFacts | None = None,
) -> ClockState:
    """The clock's current (latest) round after the whole history."""
    return walk_rounds(sla, events, ruler, finals, facts)[-1]


def ruler_for(
    sla: SlaSpec,
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
    decisions: DecisionSource | None = None,
) -> Ruler:
    """How ``sla`` measures time for a case (its calendar, and its target in its unit)."""
    calendar = get_calendar(calendars, sla.calendar_for(params), f"{sla.path}.calendar")
    target = resolve_duration(
        sla.target,
        data=data,
        params=params,
        now=now,
        path=f"{sla.path}.target",
        decisions=decisions,
        calendars=calendars,
    )
    return Ruler(calendar, target, now)


def clock_at(sla: SlaSpec, state: ClockState, ruler: Ruler, now: datetime) -> SlaClock:
    """The clock as of ``now``, from its state after the history so far."""
    ruler = ruler.started(state.started_at)
    elapsed = state.banked
    due: Deadline | None = None
    if state.phase is ClockStatus.RUNNING and state.running_since is not None:
        elapsed += ruler.between(state.running_since, max(now, state.running_since))
        if ruler.target > state.banked:
            due = ruler.add(state.running_since, ruler.target - state.banked)
    status = state.phase
    # "Within" the target: a clock is breached once it runs past its target, not at it.
    over = elapsed > ruler.target or state.breach_recorded
    if status not in (ClockStatus.PENDING, ClockStatus.NOT_APPLICABLE) and over:
        status = ClockStatus.BREACHED
    reached = tuple(f for f in sla.warn_at if elapsed >= ruler.target * f)
    return SlaClock(
        name=sla.name,
        status=status,
        target=ruler.target,
        elapsed=elapsed,
        remaining=max(ruler.target - elapsed, timedelta(0)),
        started_at=state.started_at,
        stopped_at=state.stopped_at,
        due_at=due.at if due else None,
        provisional=bool(due and due.provisional),
        warnings_reached=reached,
        calendar=ruler.calendar.name,
        unit=ruler.unit,
        round=state.round,
        manual_pause=state.manual_pause,
    )


def compute_clock(
    sla: SlaSpec,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
    finals: frozenset[str] = frozenset(),
    decisions: DecisionSource | None = None,
) -> SlaClock:
    """The clock's current (latest) round as of ``now``."""
    return compute_rounds(
        sla,
        events,
        data=data,
        params=params,
        now=now,
        calendars=calendars,
        finals=finals,
        decisions=decisions,
    )[-1]


def compute_rounds(
    sla: SlaSpec,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
    finals: frozenset[str] = frozenset(),
    decisions: DecisionSource | None = None,
) -> list[SlaClock]:
    """Every round of the clock as of ``now``, the first first (one for ``rounds: once``)."""
    ruler = ruler_for(
        sla, data=data, params=params, now=now, calendars=calendars, decisions=decisions
    )
    facts = history_facts(events, params=params, calendars=calendars, decisions=decisions)
    return [
        clock_at(sla, state, ruler, now) for state in walk_rounds(sla, events, ruler, finals, facts)
    ]


def history_facts(
    events: Sequence[EventRecord],
    *,
    params: Mapping[str, Any],
    calendars: Calendars | None,
    decisions: DecisionSource | None,
    definition: str = "",
) -> CaseFacts:
    """A case's facts as its history gives them: created by its first event."""
    first = events[0] if events else None
    return CaseFacts(
        params=params,
        case_id=first.case_id if first else 0,
        definition=definition,
        created_at=first.at if first else None,
        decisions=decisions,
        calendars=calendars,
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
    """Every round of every SLA of the definition, in the definition's order, each SLA's
    rounds first to latest (a clock that runs once has exactly one)."""
    walked = _walk_every_sla(
        definition, events, data=data, params=params, now=now, calendars=calendars
    )
    return [clock_at(sla, state, ruler, now) for sla, ruler, rounds in walked for state in rounds]


def plan_sla_timers(
    definition: WorkflowDefinition,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
) -> list[TimerPlan]:
    """Timers for the warnings and breaches still ahead of each running clock (its current
    round), from the whole history (the incremental path plans from kept states with
    :func:`plan_clock`)."""
    walked = _walk_every_sla(
        definition, events, data=data, params=params, now=now, calendars=calendars
    )
    return [plan for sla, ruler, rounds in walked for plan in plan_clock(sla, rounds[-1], ruler)]


def _walk_every_sla(
    definition: WorkflowDefinition,
    events: Sequence[EventRecord],
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    calendars: Calendars,
) -> Iterator[tuple[SlaSpec, Ruler, list[ClockState]]]:
    """Each SLA of the definition, in its order, with how it measures time for the case and
    its rounds walked through the whole history. The facts name the definition, as the
    incremental path's do (engine/services/sla_clocks.py): ``case.definition`` in a ``when``
    reads the same on both paths."""
    facts = history_facts(
        events,
        params=params,
        calendars=calendars,
        decisions=definition.decisions,
        definition=definition.name,
    )
    for sla in definition.slas:
        ruler = ruler_for(
            sla,
            data=data,
            params=params,
            now=now,
            calendars=calendars,
            decisions=definition.decisions,
        )
        yield sla, ruler, walk_rounds(sla, events, ruler, definition.final_states, facts)


def plan_clock(sla: SlaSpec, state: ClockState, ruler: Ruler) -> list[TimerPlan]:
    """Timers for the warnings and breaches still ahead of one clock in ``state``, and the
    end of an operator's pause given a resume time.

    Warnings and breaches already recorded in the history are not planned again, so
    re-planning after an event never repeats one. The timers of an SLA with rounds name
    their round in their payload, which the events they record keep."""
    own: dict[str, Any] = {"sla": sla.name}
    if sla.repeats:
        own["round"] = state.round
    if state.phase is ClockStatus.PAUSED and state.manual_pause and state.resume_at:
        return [
            TimerPlan(
                name=f"sla:{sla.name}:{SLA_RESUME}",
                kind=SLA_RESUME,
                trigger=None,
                due_at=state.resume_at,
                payload=dict(own),
                calendar=ruler.calendar.name,
                provisional=False,
                sla=sla.name,
            )
        ]
    if state.phase is not ClockStatus.RUNNING or state.running_since is None:
        return []
    ruler = ruler.started(state.started_at)
    marks: list[tuple[str, float]] = [
        (SLA_WARNING, f) for f in sla.warn_at if f not in state.warned
    ]
    if not state.breach_recorded:
        marks.append((SLA_BREACHED, 1.0))
    plans = []
    for kind, fraction in marks:
        still = max(timedelta(0), ruler.target * fraction - state.banked)
        deadline = ruler.add(state.running_since, still)
        # The promise is "within" the target: what happens at the deadline instant is in
        # time, so the breach is recorded at the first instant after it.
        due = deadline.at + BREACH_AFTER if kind == SLA_BREACHED else deadline.at
        payload = dict(own)
        if kind == SLA_WARNING:
            payload["fraction"] = fraction
        plans.append(
            TimerPlan(
                name=f"sla:{sla.name}:{kind}:{fraction}",
                kind=kind,
                trigger=sla.breach_trigger if kind == SLA_BREACHED else None,
                due_at=due,
                payload=payload,
                calendar=ruler.calendar.name,
                provisional=deadline.provisional,
                sla=sla.name,
            )
        )
    return plans
