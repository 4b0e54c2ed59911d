"""Timer plans: when each timer of a state entry is due, on the wall clock or a business calendar.

One definition holds every kind of timer: ``waiting`` the well-formed ones, ``broken`` the ones
whose due time cannot be computed (a bad expression result, a calendar that does not exist).
Instants are written in Asia/Shanghai local time with ``sh()`` and compared as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.calendar import calendar_24x7, cn_workdays
from engine.core.definition import TimerSpec, parse_source
from engine.core.timer_plans import TimerPlan, plan_state_timers, plan_timer
from engine.core.validation import load_definition
from engine.errors import ExpressionError, SvcflowError, TimerPlanError

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = cn_workdays()
CALENDARS = {"24x7": calendar_24x7(), "cn-workdays": CN}

SOURCE = """
name: timer_plans
title: {en: Timer plans, zh: 定时计划}
initial: waiting
parameters:
  remind_after: {type: duration, default: 2h}
  work_for: {type: duration, default: 3d}
data_schema:
  type: object
  properties:
    priority: {enum: [emergency, normal]}
    warranty_until: {type: string}
    lag: {}
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - {name: wall, after: 8h, trigger: remind, payload: {reason: wall}}
      - {name: working_days, after: 3d, calendar: cn-workdays, trigger: remind}
      - {name: working_time, after: {param: work_for}, calendar: cn-workdays, trigger: remind}
      - {name: reminder, after: {param: remind_after}, trigger: remind}
      - name: by_priority
        after: {expr: "data.priority == 'emergency' ? duration('1h') : duration('2h')"}
        trigger: remind
      - name: by_priority_cn
        after: {expr: "data.priority == 'emergency' ? duration('1h') : duration('2h')"}
        calendar: cn-workdays
        trigger: remind
      - {name: warranty, at: "timestamp(data.warranty_until)", trigger: expire}
      - {name: stocktake, every: "0 9 L * *", trigger: remind}
  - name: broken
    title: {en: Broken, zh: 故障}
    timers:
      - {name: lag, after: {expr: data.lag}, trigger: remind}
      - {name: lag_duration, after: {expr: "duration(data.lag)"}, trigger: remind}
      - {name: raw_at, at: data.warranty_until, trigger: expire}
      - {name: plant, after: 2h, calendar: plant-b, trigger: remind}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - {trigger: remind, source: [waiting, broken], dest: waiting}
  - {trigger: break_down, source: waiting, dest: broken}
  - {trigger: expire, source: [waiting, broken], dest: done}
"""
DEFINITION = load_definition(parse_source(SOURCE))
TIMERS: dict[str, TimerSpec] = {t.name: t for s in DEFINITION.states for t in s.timers}
DEFAULTS = DEFINITION.default_params()


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Asia/Shanghai wall-clock time as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def plan(
    name: str,
    entered_at: datetime,
    *,
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    after: datetime | None = None,
) -> TimerPlan:
    return plan_timer(
        TIMERS[name],
        entered_at=entered_at,
        after=after or entered_at,
        data=data or {},
        params={**DEFAULTS, **(params or {})},
        calendars=CALENDARS,
    )


# --- after --------------------------------------------------------------------------------------


def test_after_without_calendar_counts_wall_clock_time_through_the_night() -> None:
    # 8 hours from 16:00 on the eve of National Day is midnight, holidays or not.
    due = plan("wall", sh(2025, 9, 30, 16))
    assert due == TimerPlan(
        name="wall",
        kind="after",
        trigger="remind",
        due_at=sh(2025, 10, 1),
        payload={"reason": "wall"},
        calendar=None,
        provisional=False,
    )
    assert due.due_at.tzinfo is UTC


def test_whole_days_on_cn_workdays_are_working_days_across_national_day_2025() -> None:
    # Tue 30 Sep is day 0; 1-8 Oct are off; Thu 9, Fri 10 and Sat 11 Oct (调休) are days 1-3.
    due = plan("working_days", sh(2025, 9, 30, 10))
    assert due.due_at == datetime(2025, 10, 11, 2, tzinfo=UTC)  # Sat 11 Oct 10:00 +08:00
    assert due.calendar == "cn-workdays"
    assert not due.provisional


@pytest.mark.parametrize(
    ("duration", "entered_at", "due_at"),
    [
        # 16-18 on 30 Sep, the holidays skipped, then 9 Oct 09-12 and 13-16.
        ("8h", sh(2025, 9, 30, 16), sh(2025, 10, 9, 16)),
        # 11-12, the lunch break, 13-14.
        ("2h", sh(2025, 3, 17, 11), sh(2025, 3, 17, 14)),
        # Counting begins when the afternoon window opens.
        ("1h", sh(2025, 3, 17, 12, 30), sh(2025, 3, 17, 14)),
        # A deadline that fills the morning window is its end, not the afternoon's start.
        ("3h", sh(2025, 3, 17, 9), sh(2025, 3, 17, 12)),
        # Friday evening to Monday morning: the weekend is not working time.
        ("1h30m", sh(2025, 3, 14, 17), sh(2025, 3, 17, 9, 30)),
    ],
)
def test_hours_on_cn_workdays_are_working_time(
    duration: str, entered_at: datetime, due_at: datetime
) -> None:
    assert plan("working_time", entered_at, params={"work_for": duration}).due_at == due_at


def test_param_duration_reads_the_deployed_parameter_and_falls_back_to_its_default() -> None:
    entered = sh(2025, 3, 17, 11)
    assert plan("reminder", entered).due_at == entered + timedelta(hours=2)
    assert plan("reminder", entered, params={"remind_after": "45m"}).due_at == entered + timedelta(
        minutes=45
    )
    # The same parameter on cn-workdays keeps its working-day meaning.
    assert plan("working_time", sh(2025, 9, 30, 10)).due_at == sh(2025, 10, 11, 10)


@pytest.mark.parametrize(("priority", "wall", "working"), [("emergency", 1, 13), ("normal", 2, 14)])
def test_expression_duration_is_chosen_by_case_data(priority: str, wall: int, working: int) -> None:
    entered = sh(2025, 3, 17, 11, 30)
    data = {"priority": priority}
    assert plan("by_priority", entered, data=data).due_at == entered + timedelta(hours=wall)
    # On cn-workdays an expression's duration is working time: 11:30-12:00, lunch, 13:00 on.
    assert plan("by_priority_cn", entered, data=data).due_at == sh(2025, 3, 17, working, 30)


@pytest.mark.parametrize(
    ("name", "lag"), [("lag", 5), ("lag", "2h"), ("lag", None), ("lag_duration", "0s")]
)
def test_expression_that_gives_no_positive_duration_names_its_element(name: str, lag: Any) -> None:
    with pytest.raises(ExpressionError) as caught:
        plan(name, sh(2025, 3, 17, 9), data={"lag": lag})
    assert caught.value.fields["path"] == "states[1].timers[{}].after.expr".format(
        0 if name == "lag" else 1
    )
    assert caught.value.fields["path"] in caught.value.message
    assert "duration" in (caught.value.hint or "")


def test_expression_duration_from_data_is_accepted() -> None:
    entered = sh(2025, 3, 17, 9)
    assert plan("lag_duration", entered, data={"lag": "90m"}).due_at == entered + timedelta(
        minutes=90
    )


# --- at -----------------------------------------------------------------------------------------


def test_at_takes_the_instant_of_a_timestamp_expression_as_utc() -> None:
    due = plan("warranty", sh(2025, 3, 17, 9), data={"warranty_until": "2027-03-01T09:00:00+08:00"})
    assert due.due_at == datetime(2027, 3, 1, 1, tzinfo=UTC)
    assert due.due_at.tzinfo is UTC
    assert (due.kind, due.trigger, due.provisional) == ("at", "expire", False)


def test_at_expression_that_gives_no_timestamp_names_its_element() -> None:
    with pytest.raises(ExpressionError, match="not a timestamp") as caught:
        plan("raw_at", sh(2025, 3, 17, 9), data={"warranty_until": "2027-03-01T09:00:00Z"})
    assert caught.value.fields["path"] == "states[1].timers[2].at"
    assert "states[1].timers[2].at" in caught.value.message


# --- every --------------------------------------------------------------------------------------


def test_every_runs_cron_in_shanghai_time_by_default() -> None:
    # "L": the last day of the month, at 09:00 local (01:00 UTC).
    first = plan("stocktake", sh(2027, 2, 1))
    assert first.due_at == sh(2027, 2, 28, 9) == datetime(2027, 2, 28, 1, tzinfo=UTC)
    assert first.kind == "every"
    # Re-armed right after it fired, it moves on to the next occurrence, not the same one.
    second = plan("stocktake", sh(2027, 2, 1), after=first.due_at)
    assert second.due_at == sh(2027, 3, 31, 9)
    # Strictly after: a microsecond before the occurrence still gets it.
    almost = plan("stocktake", sh(2027, 2, 1), after=first.due_at - timedelta(microseconds=1))
    assert almost.due_at == first.due_at


def test_every_rearmed_month_by_month_lands_on_each_last_day() -> None:
    due, seen = sh(2027, 12, 31, 10), []
    for _ in range(13):
        due = plan("stocktake", sh(2027, 12, 31, 10), after=due).due_at
        seen.append(due.astimezone(SHANGHAI))
    assert [(d.year, d.month, d.day, d.hour) for d in seen[:3]] == [
        (2028, 1, 31, 9),
        (2028, 2, 29, 9),  # a leap year
        (2028, 3, 31, 9),
    ]
    assert all((d + timedelta(days=1)).day == 1 for d in seen)
    assert all((d.hour, d.minute) == (9, 0) for d in seen)


# --- errors and provisional deadlines -----------------------------------------------------------


def test_unknown_calendar_names_the_calendar_and_the_element() -> None:
    with pytest.raises(TimerPlanError) as caught:
        plan("plant", sh(2025, 3, 17, 9))
    error = caught.value
    assert isinstance(error, SvcflowError)
    assert error.code == "timer-plan-error"
    assert error.fields == {"path": "states[1].timers[3].calendar", "calendar": "plant-b"}
    assert "'plant-b'" in error.message
    assert "states[1].timers[3].calendar" in error.message
    assert "cn-workdays" in (error.hint or "")


def test_deadline_crossing_a_year_without_holiday_data_is_provisional() -> None:
    # chinese_calendar 1.11 ships 2004-2026; the 2027 schedule is not in it.
    assert CN.covered_years is not None
    assert 2026 in CN.covered_years
    assert 2027 not in CN.covered_years
    # Wed 30 Dec 2026: Thu 31 Dec, then Fri 1 Jan 2027 counted as an ordinary Friday (the
    # weekly pattern), then Mon 4 Jan.
    due = plan("working_days", sh(2026, 12, 30, 10))
    assert (due.due_at, due.provisional) == (sh(2027, 1, 4, 10), True)
    # Inside the covered years and on the wall clock, nothing is provisional.
    assert not plan("working_days", sh(2026, 12, 1, 10)).provisional
    assert not plan("wall", sh(2026, 12, 31, 20)).provisional


def test_state_plans_every_timer_of_the_entry() -> None:
    entered = sh(2025, 9, 30, 10)
    plans = plan_state_timers(
        DEFINITION.state("waiting"),
        entered_at=entered,
        data={"priority": "normal", "warranty_until": "2027-03-01T09:00:00+08:00"},
        params=DEFAULTS,
        calendars=CALENDARS,
    )
    assert {p.name: p.due_at for p in plans} == {
        "wall": sh(2025, 9, 30, 18),
        "working_days": sh(2025, 10, 11, 10),
        "working_time": sh(2025, 10, 11, 10),
        "reminder": sh(2025, 9, 30, 12),
        "by_priority": sh(2025, 9, 30, 12),
        "by_priority_cn": sh(2025, 9, 30, 12),
        "warranty": sh(2027, 3, 1, 9),
        "stocktake": sh(2025, 10, 31, 9),
    }
    assert [p.name for p in plans] == [t.name for t in DEFINITION.state("waiting").timers]


# --- properties ---------------------------------------------------------------------------------

ENTRIES = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 6, 30)).map(
    lambda d: d.replace(microsecond=0, tzinfo=SHANGHAI).astimezone(UTC)
)
# (text, expected measure): whole days count working days, anything else working time.
WORKING_DAYS = st.integers(1, 60).map(lambda n: (f"{n}d", timedelta(days=n)))
WORKING_TIME = (
    st.tuples(st.integers(0, 200), st.integers(0, 59), st.integers(0, 59))
    .filter(any)
    .map(
        lambda hms: (
            "".join(f"{v}{u}" for v, u in zip(hms, "hms", strict=True) if v),
            timedelta(hours=hms[0], minutes=hms[1], seconds=hms[2]),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(ENTRIES, min_size=2, max_size=2),
    duration=WORKING_DAYS | WORKING_TIME,
)
def test_after_on_cn_workdays_measures_back_to_its_duration_and_is_monotonic(
    entries: list[datetime], duration: tuple[str, timedelta]
) -> None:
    text, expected = duration
    measure = CN.working_days_between if text.endswith("d") else CN.working_time_between
    early, late = sorted(entries)
    due_early = plan("working_time", early, params={"work_for": text}).due_at
    due_late = plan("working_time", late, params={"work_for": text}).due_at
    assert measure(early, due_early) == expected
    assert measure(late, due_late) == expected
    assert early < due_early <= due_late
    # It is the earliest such instant: a microsecond before, the duration has not elapsed.
    assert measure(early, due_early - timedelta(microseconds=1)) < expected
