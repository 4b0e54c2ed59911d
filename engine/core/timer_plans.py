"""Planning timers: when each timer of a state entry is due. Pure: ``now`` is passed in.

A state's timers are armed when a case enters the state and cancelled when it leaves; the
persistence side (engine/services/timers.py) stores the plans this module computes. Three kinds:

``after``  a duration from the state entry: wall time, or business time on a named calendar
           (whole days = working days, otherwise working time; see docs/calendars.md), or
           calendar months on the wall clock ("12 months", month-end aware); with
           ``counted_from`` (a CEL timestamp, e.g. ``case.created_at``) counted from that
           instant instead, which must not lie after the entry;
``at``     a CEL expression giving an instant (e.g. ``timestamp(data.warranty_until)``);
``every``  a cron schedule (croniter) in the calendar's time zone, Asia/Shanghai by default;
           after each occurrence fires, the next one is armed while the case stays in the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from engine.core.calendar import (
    DEFAULT_TIMEZONE,
    BusinessCalendar,
    Deadline,
    add_months,
    calendar_24x7,
)
from engine.core.definition import DurationValue, StateSpec, TimerKind, TimerSpec
from engine.core.durations import WALL_CLOCK, Duration, format_timedelta, parse_duration
from engine.core.expressions import DecisionSource, compiled, make_context
from engine.errors import ExpressionError, TimerPlanError, written

__all__ = ["DEFAULT_TIMEZONE", "WALL_CLOCK"]  # re-exported: callers import them from here


@dataclass(frozen=True)
class TimerPlan:
    """One timer to arm: fire ``trigger`` with ``payload`` at ``due_at``."""

    name: str
    kind: str
    trigger: str | None
    due_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    calendar: str | None = None
    provisional: bool = False
    sla: str | None = None


Calendars = Mapping[str, BusinessCalendar]
_WALL = calendar_24x7()


def get_calendar(calendars: Calendars, name: str | None, path: str) -> BusinessCalendar:
    if name is None or name == WALL_CLOCK:
        return _WALL  # built in and unchangeable: no need to consult the mapping
    try:
        return calendars[name]
    except KeyError:
        raise TimerPlanError(
            f"Calendar {name!r} used at {path} does not exist.",
            hint="Create it (svcflow calendars) or use a built-in one: 24x7, cn-workdays.",
            path=path,
            calendar=name,
        ) from None


def resolve_duration(
    value: DurationValue,
    *,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    path: str,
    decisions: DecisionSource | None = None,
    calendars: Calendars | None = None,
) -> Duration | timedelta:
    """A literal or parameter gives a :class:`Duration` (days keep their working-day meaning);
    an expression gives a ``timedelta`` (always working time). ``calendars`` are those an
    expression's business-time functions may use."""
    if value.literal is not None:
        return parse_duration(value.literal)
    if value.param is not None:
        return parse_duration(params[value.param])
    assert value.expr is not None
    context = make_context(data, {}, params, now, decisions=decisions, calendars=calendars)
    result = compiled(value.expr, f"{path}.expr").evaluate(context)
    if not isinstance(result, timedelta) or result <= timedelta(0):
        shown = format_timedelta(result) if isinstance(result, timedelta) else written(result)
        raise ExpressionError(
            f"Expression at {path}.expr gave {shown}, not a positive duration.",
            hint="Return a CEL duration, e.g. duration('2h').",
            path=f"{path}.expr",
        )
    return result


def counted_from_instant(
    source: str, path: str, context: Mapping[str, Any], *, latest: datetime
) -> datetime:
    """The instant a ``counted_from`` expression gives in ``context``: a timestamp no later
    than ``latest`` (the event that starts the clock, or the state entry), as aware UTC."""
    value = compiled(source, path).evaluate(context)
    if not isinstance(value, datetime):
        raise ExpressionError(
            f"Expression at {path} gave {written(value)}, not a timestamp.",
            hint="Return a CEL timestamp, e.g. case.created_at or timestamp(data.contract_date).",
            path=path,
        )
    value = value.astimezone(UTC)
    if value > latest:
        raise ExpressionError(
            f"Expression at {path} gave {value.isoformat().replace('+00:00', 'Z')}, after the "
            f"instant the clock starts at ({latest.isoformat().replace('+00:00', 'Z')}): a "
            "clock can count from an earlier instant only.",
            hint="Correct the date in the case data (it may not lie in the future), or count "
            "from an instant that has already happened, e.g. case.created_at.",
            path=path,
        )
    return value


def add_duration(
    calendar: BusinessCalendar, start: datetime, duration: Duration | timedelta
) -> Deadline:
    """``start`` + ``duration`` on ``calendar``: wall time on 24x7, else business time;
    calendar months on the wall clock in the calendar's zone (Asia/Shanghai for 24x7)."""
    if isinstance(duration, Duration) and duration.months:
        return Deadline(at=add_months(start, duration.months, months_zone(calendar)))
    if calendar.name == WALL_CLOCK:
        delta = duration.timedelta if isinstance(duration, Duration) else duration
        return Deadline(at=start + delta)
    if isinstance(duration, Duration) and duration.whole_days:
        return calendar.add_working_days(start, duration.days)
    delta = duration.timedelta if isinstance(duration, Duration) else duration
    return calendar.add_working_time(start, delta)


def months_zone(calendar: BusinessCalendar) -> str:
    """The zone calendar months are counted in on ``calendar``: its own, or for the wall clock
    (whose zone is UTC) the service contracts' local time, as ``every`` schedules are."""
    return DEFAULT_TIMEZONE if calendar.name == WALL_CLOCK else calendar.timezone


def elapsed(
    calendar: BusinessCalendar, start: datetime, end: datetime, duration: Duration | timedelta
) -> timedelta:
    """Business time between two instants, measured the way ``duration`` is counted."""
    if calendar.name == WALL_CLOCK or (isinstance(duration, Duration) and duration.months):
        return end - start
    if isinstance(duration, Duration) and duration.whole_days:
        return calendar.working_days_between(start, end)
    return calendar.working_time_between(start, end)


def next_occurrence(schedule: str, after: datetime, timezone: str) -> datetime:
    """The first cron occurrence strictly after ``after``, as aware UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    nxt: datetime = croniter(schedule, local).get_next(datetime)
    return nxt.astimezone(UTC)


def plan_timer(
    timer: TimerSpec,
    *,
    entered_at: datetime,
    after: datetime,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    calendars: Calendars,
    decisions: DecisionSource | None = None,
    case: Mapping[str, Any] | None = None,
) -> TimerPlan:
    """Plan one timer of a state entry that began at ``entered_at``.

    ``after`` is the instant the plan is made at; an ``every`` timer's next occurrence is the
    first one after it (so re-arming after a firing moves on to the next occurrence).
    ``case``: what expressions read as ``case`` (``id``, ``definition``, ``state``,
    ``created_at``).
    """
    calendar_name = timer.calendar_for(params)
    calendar = get_calendar(calendars, calendar_name, f"{timer.path}.calendar")

    def planned(due_at: datetime, *, provisional: bool = False) -> TimerPlan:
        return TimerPlan(
            name=timer.name,
            kind=timer.kind.value,
            trigger=timer.trigger,
            due_at=due_at,
            payload=dict(timer.payload),
            calendar=calendar_name,
            provisional=provisional,
        )

    def at_entry() -> dict[str, Any]:
        # What ``counted_from`` and ``at`` read: the case as the state entry found it.
        return make_context(
            data, {}, params, entered_at, case=case, decisions=decisions, calendars=calendars
        )

    if timer.kind is TimerKind.AFTER:
        assert timer.after is not None
        duration = resolve_duration(
            timer.after,
            data=data,
            params=params,
            now=entered_at,
            path=f"{timer.path}.after",
            decisions=decisions,
            calendars=calendars,
        )
        start = entered_at
        if timer.counted_from is not None:
            start = counted_from_instant(
                timer.counted_from, f"{timer.path}.counted_from", at_entry(), latest=entered_at
            )
        deadline = add_duration(calendar, start, duration)
        return planned(deadline.at, provisional=deadline.provisional)
    if timer.kind is TimerKind.AT:
        assert timer.at is not None
        value = compiled(timer.at, f"{timer.path}.at").evaluate(at_entry())
        if not isinstance(value, datetime):
            raise ExpressionError(
                f"Expression at {timer.path}.at gave {written(value)}, not a timestamp.",
                hint="Return a CEL timestamp, e.g. timestamp(data.warranty_until).",
                path=f"{timer.path}.at",
            )
        return planned(value.astimezone(UTC))
    assert timer.every is not None
    zone = calendar.timezone if calendar_name not in (None, WALL_CLOCK) else DEFAULT_TIMEZONE
    return planned(next_occurrence(timer.every, after, zone))


def plan_state_timers(
    state: StateSpec,
    *,
    entered_at: datetime,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    calendars: Calendars,
    decisions: DecisionSource | None = None,
) -> list[TimerPlan]:
    """Every timer of ``state`` for an entry at ``entered_at``."""
    return [
        plan_timer(
            timer,
            entered_at=entered_at,
            after=entered_at,
            data=data,
            params=params,
            calendars=calendars,
            decisions=decisions,
        )
        for timer in state.timers
    ]
