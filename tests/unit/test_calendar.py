"""Business calendars: worked examples, properties of the deadline arithmetic, errors.

Instants are written in Asia/Shanghai local time with ``sh()`` for readability and compared as
aware UTC datetimes, which is what the calendar takes and returns.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.calendar import (
    BusinessCalendar,
    Deadline,
    WorkingWindow,
    apply_overrides,
    calendar_24x7,
    cn_workdays,
)
from engine.errors import CalendarError, SvcflowError

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = cn_workdays()
H24 = calendar_24x7()
# A deliberately irregular calendar: a half-hour offset, a Saturday window, a window to 24:00,
# a holiday on a working day and make-up Sundays with their own windows; only 2025 is covered.
ODD = BusinessCalendar(
    name="odd",
    timezone="Asia/Kolkata",
    weekly={
        0: (WorkingWindow(time(8, 30), time(12)), WorkingWindow(time(13), time(17, 30))),
        1: (WorkingWindow(time(8, 30), time(17, 30)),),
        2: (WorkingWindow(time(8, 30), time(12)), WorkingWindow(time(20), time(0))),
        4: (WorkingWindow(time(0), time(6)), WorkingWindow(time(6), time(7))),
        5: (WorkingWindow(time(10), time(14)),),
    },
    holidays=frozenset({date(2025, 1, 1), date(2025, 10, 1), date(2025, 10, 2)}),
    makeup_workdays=frozenset({date(2025, 1, 5), date(2025, 9, 28)}),
    makeup_windows=(WorkingWindow(time(10), time(16)),),
    covered_years=frozenset({2025}),
)
CALENDARS = (CN, H24, ODD)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Asia/Shanghai wall-clock time as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


# --- worked examples --------------------------------------------------------------------------


def test_library_data_matches_the_national_day_2025_schedule() -> None:
    assert all(chinese_calendar.is_holiday(date(2025, 10, d)) for d in range(1, 9))
    assert chinese_calendar.is_workday(date(2025, 9, 28))  # Sunday, make-up day
    assert chinese_calendar.is_workday(date(2025, 10, 11))  # Saturday, make-up day
    assert [CN.is_working_day(date(2025, 10, d)) for d in range(8, 13)] == [
        False,
        True,
        True,
        True,
        False,
    ]


def test_three_working_days_across_national_day_2025() -> None:
    # Tue 30 Sep counts as day 0; 1-8 Oct are off; Thu 9, Fri 10, Sat 11 (调休) are days 1-3.
    deadline = CN.add_working_days(sh(2025, 9, 30, 10), 3)
    assert deadline == Deadline(sh(2025, 10, 11, 10), provisional=False, uncovered_years=())
    assert CN.working_days_between(sh(2025, 9, 30, 10), sh(2025, 10, 11, 10)) == timedelta(days=3)
    assert CN.working_days_between(sh(2025, 9, 30, 10), sh(2025, 10, 9, 10)) == timedelta(days=1)
    # Half a working day from 30 Sep 12:00 ends at 24:00 that day (1 Oct 00:00), the earliest
    # instant it has elapsed, not on 9 Oct after the holidays.
    half = CN.add_working_day_time(sh(2025, 9, 30, 12), timedelta(hours=12))
    assert half.at == sh(2025, 10, 1)


def test_eight_working_hours_across_national_day_2025() -> None:
    # 16:00-18:00 on 30 Sep (2h), then 9 Oct 09:00-12:00 (3h) and 13:00-16:00 (3h).
    deadline = CN.add_working_time(sh(2025, 9, 30, 16), timedelta(hours=8))
    assert deadline.at == sh(2025, 10, 9, 16)
    assert CN.working_time_between(sh(2025, 9, 30, 0), sh(2025, 10, 9, 0)) == timedelta(hours=8)


def test_lunch_break_is_not_working_time() -> None:
    monday = (2025, 3, 17)
    assert CN.add_working_time(sh(*monday, 11), timedelta(hours=2)).at == sh(*monday, 14)
    assert CN.add_working_time(sh(*monday, 12, 30), timedelta(hours=1)).at == sh(*monday, 14)
    assert CN.working_time_between(sh(*monday, 11), sh(*monday, 14)) == timedelta(hours=2)


def test_a_deadline_that_fills_a_window_is_its_end_not_the_next_start() -> None:
    monday = (2025, 3, 17)
    assert CN.add_working_time(sh(*monday, 9), timedelta(hours=3)).at == sh(*monday, 12)
    assert CN.add_working_time(sh(*monday, 9), timedelta(hours=8)).at == sh(*monday, 18)
    assert CN.next_working_instant(sh(*monday, 12)) == sh(*monday, 13)


def test_weekend_is_skipped() -> None:
    friday = (2025, 3, 14)
    assert CN.add_working_time(sh(*friday, 17), timedelta(hours=2)).at == sh(2025, 3, 17, 10)
    # From Saturday, counting begins Monday 00:00; one working day ends at Monday 24:00.
    assert CN.add_working_days(sh(2025, 3, 15, 10), 1).at == sh(2025, 3, 18)
    # Five working days end at Friday 24:00, not after the following weekend.
    assert CN.add_working_days(sh(2025, 3, 15, 10), 5).at == sh(2025, 3, 22)
    assert CN.add_working_days(sh(*friday, 10), 1).at == sh(2025, 3, 17, 10)


def test_makeup_sunday_28_september_2025_is_worked() -> None:
    assert CN.is_working_day(date(2025, 9, 28))
    assert CN.working_intervals(date(2025, 9, 28)) == [
        (sh(2025, 9, 28, 9), sh(2025, 9, 28, 12)),
        (sh(2025, 9, 28, 13), sh(2025, 9, 28, 18)),
    ]
    assert CN.add_working_time(sh(2025, 9, 27, 10), timedelta(hours=1)).at == sh(2025, 9, 28, 10)
    assert CN.add_working_days(sh(2025, 9, 27, 10), 1).at == sh(2025, 9, 29)


def test_holidays_have_no_working_intervals() -> None:
    assert not CN.is_working_day(date(2025, 10, 1))
    assert CN.working_intervals(date(2025, 10, 1)) == []
    assert CN.next_working_instant(sh(2025, 10, 1, 10)) == sh(2025, 10, 9, 9)


def test_24x7_counts_wall_clock_time() -> None:
    start = datetime(2025, 9, 30, 16, 17, tzinfo=UTC)
    assert H24.add_working_time(start, timedelta(hours=8)).at == start + timedelta(hours=8)
    assert H24.add_working_days(start, 3).at == start + timedelta(days=3)
    assert H24.next_working_instant(start) == start
    assert H24.add_working_days(start, 10_000) == Deadline(start + timedelta(days=10_000))


def test_zero_duration_returns_the_start_even_off_hours() -> None:
    holiday = sh(2025, 10, 1, 3)
    assert CN.add_working_time(holiday, timedelta(0)).at == holiday
    assert CN.add_working_days(holiday, 0).at == holiday


def test_calendar_takes_any_aware_datetime_and_returns_utc() -> None:
    local = datetime(2025, 9, 30, 16, tzinfo=SHANGHAI)
    deadline = CN.add_working_time(local, timedelta(hours=8))
    assert deadline.at.tzinfo is UTC
    assert deadline.at == sh(2025, 10, 9, 16)


# --- coverage and overrides -------------------------------------------------------------------


def test_library_years_are_covered() -> None:
    assert CN.covered_years is not None
    assert {2004, 2025, 2026} <= CN.covered_years
    assert 2027 not in CN.covered_years


def test_deadline_crossing_an_uncovered_year_is_provisional_not_refused() -> None:
    deadline = CN.add_working_time(sh(2026, 12, 31, 16), timedelta(hours=8))
    assert deadline == Deadline(sh(2027, 1, 1, 16), provisional=True, uncovered_years=(2027,))


def test_loading_next_years_schedule_makes_the_deadline_final() -> None:
    # An administrator loads a (made-up) 2027 schedule before the library ships it.
    loaded = cn_workdays(holidays_add=[date(2027, 1, 1)], covered_years_add=[2027])
    deadline = loaded.add_working_time(sh(2026, 12, 31, 16), timedelta(hours=8))
    assert deadline == Deadline(sh(2027, 1, 4, 16), provisional=False, uncovered_years=())


def test_holiday_loaded_without_coverage_still_gives_provisional_deadlines() -> None:
    loaded = cn_workdays(holidays_add=[date(2027, 1, 1)])
    deadline = loaded.add_working_time(sh(2026, 12, 31, 16), timedelta(hours=8))
    assert deadline == Deadline(sh(2027, 1, 4, 16), provisional=True, uncovered_years=(2027,))


def test_overrides_turn_a_holiday_into_a_workday_and_back() -> None:
    worked = apply_overrides(CN, workdays_add=[date(2025, 10, 8)])
    assert worked.is_working_day(date(2025, 10, 8))
    assert date(2025, 10, 8) not in worked.holidays
    off = apply_overrides(worked, holidays_add=[date(2025, 10, 8)])
    assert off == CN


def test_far_deadline_in_uncovered_years_follows_the_weekly_pattern() -> None:
    # 520 weeks of 5 working days from Monday 7 Jan 2030 00:00 end at Friday 24:00.
    deadline = CN.add_working_days(sh(2030, 1, 7), 2600)
    assert deadline.at == sh(2030, 1, 12) + timedelta(weeks=519)
    assert deadline.uncovered_years == tuple(range(2030, 2040))


def test_to_dict_round_trips_through_json() -> None:
    for calendar in (*CALENDARS, cn_workdays(workdays_add=[date(2027, 2, 20)])):
        stored = json.loads(json.dumps(calendar.to_dict()))
        assert BusinessCalendar.from_dict(stored) == calendar
        assert stored == calendar.to_dict()
    assert H24.to_dict()["weekly"]["sun"] == [["00:00", "24:00"]]
    assert CN.to_dict()["weekly"]["mon"] == [["09:00", "12:00"], ["13:00", "18:00"]]


# --- errors -----------------------------------------------------------------------------------


def test_naive_datetime_is_refused_with_a_fix() -> None:
    with pytest.raises(CalendarError, match="aware UTC datetime"):
        CN.add_working_time(datetime(2025, 9, 30, 10), timedelta(hours=1))
    with pytest.raises(CalendarError, match="not an aware datetime"):
        CN.working_time_between(sh(2025, 1, 2), datetime(2025, 1, 3))


def test_negative_duration_is_refused() -> None:
    with pytest.raises(CalendarError, match="cannot lie before its start"):
        CN.add_working_time(sh(2025, 1, 2), timedelta(seconds=-1))
    with pytest.raises(CalendarError, match="cannot lie before its start"):
        CN.add_working_days(sh(2025, 1, 2), -1)
    with pytest.raises(CalendarError, match="cannot lie before its start"):
        CN.add_working_day_time(sh(2025, 1, 2), timedelta(hours=-1))


@pytest.mark.parametrize(("start", "end"), [(time(18), time(9)), (time(9), time(9))])
def test_empty_or_reversed_window_is_refused(start: time, end: time) -> None:
    with pytest.raises(CalendarError, match="start must be before end") as caught:
        WorkingWindow(start, end)
    assert caught.value.code == "calendar-error"
    assert isinstance(caught.value, SvcflowError)
    assert "time(0, 0)" in (caught.value.hint or "")


def test_malformed_calendars_are_refused() -> None:
    nine_to_five = (WorkingWindow(time(9), time(17)),)
    with pytest.raises(CalendarError, match="overlap"):
        cn_workdays(windows=(WorkingWindow(time(9), time(12)), WorkingWindow(time(11), time(18))))
    with pytest.raises(CalendarError, match="no working window"):
        BusinessCalendar(name="never", timezone="UTC", weekly={})
    with pytest.raises(CalendarError, match="Unknown time zone"):
        BusinessCalendar(name="x", timezone="Asia/Nowhere", weekly={0: nine_to_five})
    with pytest.raises(CalendarError, match="daylight saving"):
        BusinessCalendar(name="x", timezone="Europe/Berlin", weekly={0: nine_to_five})
    with pytest.raises(CalendarError, match=r"datetime\.date values"):
        cn_workdays(holidays_add=[datetime(2027, 1, 1)])
    with pytest.raises(CalendarError, match="in both holidays_add and workdays_add"):
        cn_workdays(holidays_add=[date(2027, 1, 1)], workdays_add=[date(2027, 1, 1)])
    with pytest.raises(CalendarError, match="both a holiday and a make-up working day"):
        BusinessCalendar(
            name="x",
            timezone="UTC",
            weekly={0: nine_to_five},
            holidays=frozenset({date(2025, 1, 4)}),
            makeup_workdays=frozenset({date(2025, 1, 4)}),
        )


def test_a_datetime_is_not_a_calendar_day() -> None:
    with pytest.raises(CalendarError, match="Expected a calendar day"):
        CN.is_working_day(datetime(2025, 10, 1, 12, tzinfo=UTC))


def test_malformed_stored_calendar_names_the_field() -> None:
    stored = CN.to_dict()
    with pytest.raises(CalendarError, match="malformed at holidays"):
        BusinessCalendar.from_dict({**stored, "holidays": ["2025-13-01"]})
    with pytest.raises(CalendarError, match="malformed at weekly"):
        BusinessCalendar.from_dict({**stored, "weekly": {"mon": []}})
    with pytest.raises(CalendarError, match="malformed at the top level"):
        BusinessCalendar.from_dict({"name": "x"})


def test_dates_outside_the_supported_years_are_refused() -> None:
    with pytest.raises(CalendarError, match="outside the years 2000-2199"):
        CN.add_working_time(datetime(1999, 12, 31, tzinfo=UTC), timedelta(hours=1))
    with pytest.raises(CalendarError, match="outside the years 2000-2199"):
        H24.add_working_days(datetime(2199, 12, 1, tzinfo=UTC), 31)
    with pytest.raises(CalendarError, match="the result lies outside"):
        CN.add_working_time(sh(2025, 1, 2), timedelta(days=10**7))


def test_module_is_pure() -> None:
    """Only the standard library, chinese_calendar and engine.errors; no clock reads."""
    source = Path(__file__).parents[2].joinpath("engine", "core", "calendar.py").read_text("utf-8")
    tree = ast.parse(source)
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    allowed = {
        "__future__",
        "bisect",
        "collections",
        "dataclasses",
        "datetime",
        "functools",
        "itertools",
        "types",
        "typing",
        "zoneinfo",
        "chinese_calendar",
        "engine",
    }
    assert imported <= allowed
    called = {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert not called & {"now", "today", "utcnow", "time", "monotonic", "open"}


# --- properties -------------------------------------------------------------------------------

PROPERTIES = settings(max_examples=200, deadline=None)

calendars = st.sampled_from(CALENDARS)
starts = st.one_of(
    st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.datetimes(datetime(2027, 1, 1), datetime(2031, 12, 31), timezones=st.just(UTC)),
    st.datetimes(datetime(2000, 1, 2), datetime(2003, 12, 31), timezones=st.just(UTC)),
)
durations = st.timedeltas(timedelta(0), timedelta(days=400))
short_durations = st.timedeltas(timedelta(0), timedelta(days=20))
day_counts = st.integers(0, 400)


def local_date(calendar: BusinessCalendar, t: datetime) -> date:
    return t.astimezone(ZoneInfo(calendar.timezone)).date()


def reference_add(
    calendar: BusinessCalendar, start: datetime, amount: timedelta, whole_days: bool
) -> datetime:
    """Walk the days one by one: slow but obviously right (used on short spans only)."""
    day, left = local_date(calendar, start), amount
    if not left:
        return start
    zone = ZoneInfo(calendar.timezone)
    while True:
        if whole_days:
            midnight = datetime.combine(day, time(0), zone).astimezone(UTC)
            spans = (
                [(midnight, midnight + timedelta(days=1))] if calendar.is_working_day(day) else []
            )
        else:
            spans = calendar.working_intervals(day)
        for window_start, end in spans:
            begin = max(window_start, start)
            if end > begin and end - begin >= left:
                return begin + left
            left -= max(end - begin, timedelta(0))
        day += timedelta(days=1)


def touched_uncovered_years(calendar: BusinessCalendar, start: datetime, at: datetime) -> set[int]:
    """Years of the local days from the start's to the last one the deadline consumed."""
    if calendar.covered_years is None:
        return set()
    last = at - timedelta(microseconds=1) if at > start else at
    years = range(local_date(calendar, start).year, local_date(calendar, last).year + 1)
    return set(years) - calendar.covered_years


def ends_a_window(calendar: BusinessCalendar, t: datetime) -> bool:
    day = local_date(calendar, t - timedelta(microseconds=1))
    return any(end == t for _, end in calendar.working_intervals(day))


@PROPERTIES
@given(calendars, starts, durations)
def test_deadline_is_a_working_instant_or_a_window_end(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    at = calendar.add_working_time(start, duration).at
    if duration:
        assert calendar.next_working_instant(at) == at or ends_a_window(calendar, at)
    else:
        assert at == start


@PROPERTIES
@given(calendars, starts, day_counts)
def test_working_days_deadline_is_on_or_ends_a_working_day(
    calendar: BusinessCalendar, start: datetime, days: int
) -> None:
    at = calendar.add_working_days(start, days).at
    if days:
        before = local_date(calendar, at - timedelta(microseconds=1))
        assert calendar.is_working_day(local_date(calendar, at)) or (
            calendar.is_working_day(before) and local_date(calendar, at) != before
        )
    else:
        assert at == start


@PROPERTIES
@given(calendars, starts, durations, durations)
def test_adding_in_two_steps_equals_adding_once(
    calendar: BusinessCalendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    middle = calendar.add_working_time(start, a).at
    assert calendar.add_working_time(middle, b).at == calendar.add_working_time(start, a + b).at


@PROPERTIES
@given(calendars, starts, day_counts, day_counts)
def test_adding_working_days_in_two_steps_equals_adding_once(
    calendar: BusinessCalendar, start: datetime, a: int, b: int
) -> None:
    middle = calendar.add_working_days(start, a).at
    assert calendar.add_working_days(middle, b).at == calendar.add_working_days(start, a + b).at


@PROPERTIES
@given(calendars, starts, durations, day_counts)
def test_time_between_start_and_deadline_is_the_duration(
    calendar: BusinessCalendar, start: datetime, duration: timedelta, days: int
) -> None:
    at = calendar.add_working_time(start, duration).at
    assert calendar.working_time_between(start, at) == duration
    assert calendar.working_time_between(at, start) == -duration
    by_days = calendar.add_working_days(start, days).at
    assert calendar.working_days_between(start, by_days) == timedelta(days=days)


@PROPERTIES
@given(calendars, starts, durations, durations)
def test_fractional_working_days_add_up_and_measure_back(
    calendar: BusinessCalendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    # An SLA paused part-way through a working day adds its remainder in working-day time.
    middle = calendar.add_working_day_time(start, a).at
    assert calendar.working_days_between(start, middle) == a
    assert (
        calendar.add_working_day_time(middle, b).at
        == calendar.add_working_day_time(start, a + b).at
    )
    whole = calendar.add_working_days(start, a.days).at
    assert whole == calendar.add_working_day_time(start, timedelta(days=a.days)).at


@PROPERTIES
@given(calendars, starts, starts, durations)
def test_deadline_is_monotonic_in_the_start(
    calendar: BusinessCalendar, s1: datetime, s2: datetime, duration: timedelta
) -> None:
    early, late = sorted((s1, s2))
    assert (
        calendar.add_working_time(early, duration).at
        <= calendar.add_working_time(late, duration).at
    )
    days = duration.days
    assert calendar.add_working_days(early, days).at <= calendar.add_working_days(late, days).at


@PROPERTIES
@given(calendars, starts, durations, day_counts)
def test_provisional_iff_an_uncovered_year_is_touched(
    calendar: BusinessCalendar, start: datetime, duration: timedelta, days: int
) -> None:
    for deadline in (
        calendar.add_working_time(start, duration),
        calendar.add_working_days(start, days),
    ):
        expected = touched_uncovered_years(calendar, start, deadline.at)
        assert deadline.provisional == bool(expected)
        assert set(deadline.uncovered_years) == expected


@PROPERTIES
@given(calendars, starts, short_durations, st.integers(0, 20))
def test_matches_a_day_by_day_walk_on_short_spans(
    calendar: BusinessCalendar, start: datetime, duration: timedelta, days: int
) -> None:
    assert calendar.add_working_time(start, duration).at == reference_add(
        calendar, start, duration, whole_days=False
    )
    assert calendar.add_working_days(start, days).at == reference_add(
        calendar, start, timedelta(days=days), whole_days=True
    )


@PROPERTIES
@given(calendars, starts)
def test_next_working_instant_is_the_first_instant_inside_a_window(
    calendar: BusinessCalendar, t: datetime
) -> None:
    found = calendar.next_working_instant(t)
    day = local_date(calendar, found)
    assert found >= t
    assert any(begin <= found < end for begin, end in calendar.working_intervals(day))
    assert calendar.working_time_between(t, found) == timedelta(0)
