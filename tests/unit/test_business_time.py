"""Business time as a value: durations in words, calendar months, and the CEL functions that
compute with working days, checked against the calendar module (docs/definitions.md,
"Business time").

Instants are written in Asia/Shanghai local time with ``sh()`` and compared as aware UTC.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.business_time import FUNCTION_NAMES
from engine.core.calendar import (
    BusinessCalendar,
    WorkingWindow,
    add_months,
    calendar_24x7,
    cn_workdays,
)
from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.durations import calendar_problem, parse_duration
from engine.core.expressions import Expression, compiled, make_context
from engine.core.records import EventRecord
from engine.core.sla import BREACH_AFTER, compute_clock, plan_sla_timers
from engine.core.timer_plans import plan_state_timers
from engine.core.validation import load_definition, validate_text
from engine.errors import CalendarError, DurationInvalid, ExpressionError, Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = cn_workdays()
H24 = calendar_24x7()
# A calendar only the database would have: another zone, Saturday work, a holiday.
PLANT = BusinessCalendar(
    name="plant-b",
    timezone="Asia/Kolkata",
    weekly={
        d: (WorkingWindow(time(8), time(12)), WorkingWindow(time(13), time(17))) for d in range(6)
    },
    holidays=frozenset({date(2026, 1, 26), date(2026, 8, 15)}),
    covered_years=frozenset({2026}),
)
CALENDARS: dict[str, BusinessCalendar] = {"24x7": H24, "cn-workdays": CN, "plant-b": PLANT}


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def run(source: str, now: datetime, **params: Any) -> Any:
    """Evaluate ``source`` as the engine does, on CALENDARS."""
    context = make_context({}, {}, params, now, calendars=CALENDARS)
    return compiled(source, "transitions[0].guard").evaluate(context)


# --- durations in words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days", "seconds", "months"),
    [
        ("5 working days", 5, 0, 0),
        ("1 working day", 1, 0, 0),
        ("3 working hours", 0, 3 * 3600, 0),
        ("1 working hour", 0, 3600, 0),
        ("30 working minutes", 0, 1800, 0),
        ("12 months", 0, 0, 12),
        ("1 month", 0, 0, 1),
        ("2 years", 0, 0, 24),
        ("  7  Working  Days ", 7, 0, 0),
    ],
)
def test_durations_in_words(text: str, days: int, seconds: int, months: int) -> None:
    duration = parse_duration(text)

    assert (duration.days, duration.seconds, duration.months) == (days, seconds, months)
    assert duration.working is (months == 0)
    assert duration.text == text.strip()


def test_working_days_in_words_count_as_the_compact_days_do() -> None:
    words, compact = parse_duration("5 working days"), parse_duration("5d")

    assert (words.days, words.seconds, words.whole_days) == (compact.days, compact.seconds, True)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("5 days", "does not say which days count"),
        ("3 hours", "does not say which days count"),
        ("2 working months", "never working time"),
        ("0 months", "is zero"),
        ("0 working days", "is zero"),
        ("1.5 working days", "not understood"),
        ("5 working days 3 working hours", "not understood"),
        ("1201 months", "longer than 100 years"),
        ("working days", "not understood"),
    ],
)
def test_words_that_say_too_little_or_too_much_are_refused(text: str, says: str) -> None:
    with pytest.raises(DurationInvalid) as caught:
        parse_duration(text)

    assert says in caught.value.message
    assert caught.value.hint


def test_months_have_no_fixed_length() -> None:
    with pytest.raises(DurationInvalid, match="calendar months"):
        _ = parse_duration("12 months").timedelta


@pytest.mark.parametrize(
    ("text", "calendar", "code"),
    [
        ("1d4h", "cn-workdays", "mixed-business-duration"),
        ("1d4h", "24x7", None),
        ("5 working days", "cn-workdays", None),
        ("5 working days", "24x7", "working-time-on-wall-clock"),
        ("3 working hours", None, "working-time-on-wall-clock"),
        ("12 months", "24x7", None),
        ("12 months", None, None),
        ("12 months", "cn-workdays", "months-on-business-calendar"),
        ("3d", "cn-workdays", None),
    ],
)
def test_which_durations_fit_which_calendar(
    text: str, calendar: str | None, code: str | None
) -> None:
    problem = calendar_problem(parse_duration(text), calendar)

    assert (problem.code if problem else None) == code


# --- calendar months ------------------------------------------------------------------------------


def test_a_month_after_31_january_is_the_end_of_february() -> None:
    assert add_months(sh(2027, 1, 31, 10), 1) == sh(2027, 2, 28, 10)
    assert add_months(sh(2028, 1, 31, 10), 1) == sh(2028, 2, 29, 10)


def test_twelve_months_across_29_february_2028() -> None:
    # A part issued on 29 Feb 2028 is due on 28 Feb 2029 (365 days); one issued on
    # 1 Mar 2027 on 1 Mar 2028 (366 days), where "365 days" was one day short.
    assert add_months(sh(2028, 2, 29, 15), 12) == sh(2029, 2, 28, 15)
    assert add_months(sh(2027, 3, 1, 9), 12) == sh(2028, 3, 1, 9)
    assert add_months(sh(2027, 3, 1, 9), 12) - sh(2027, 3, 1, 9) == timedelta(days=366)


def test_months_are_counted_in_local_time_not_utc() -> None:
    # 31 Jan 01:00 in Shanghai is still 30 Jan in UTC: the local month end counts. Counted
    # in UTC the month would end a day later, on 1 March in Shanghai.
    start = sh(2027, 1, 31, 1)
    assert add_months(start, 1) == sh(2027, 2, 28, 1)
    assert add_months(start, 1, "UTC") == sh(2027, 3, 1, 1)


def test_months_go_back_and_are_refused_beyond_the_supported_years() -> None:
    assert add_months(sh(2027, 3, 31), -1) == sh(2027, 2, 28)
    with pytest.raises(CalendarError, match="outside the years"):
        add_months(sh(2190, 1, 1), 240)
    with pytest.raises(CalendarError, match="whole number"):
        add_months(sh(2027, 1, 1), 1.5)  # type: ignore[arg-type]


PROPERTIES = settings(max_examples=200, deadline=None)
instants = st.datetimes(datetime(2011, 1, 1), datetime(2188, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(["Asia/Shanghai", "UTC", "Asia/Kolkata"])


@PROPERTIES
@given(instants, st.integers(-120, 120), zones)
def test_months_keep_the_local_time_and_clamp_to_the_month_end(
    start: datetime, months: int, zone: str
) -> None:
    local = start.astimezone(ZoneInfo(zone))
    moved = add_months(start, months, zone).astimezone(ZoneInfo(zone))
    index = local.year * 12 + local.month - 1 + months
    last_day = stdlib_calendar.monthrange(index // 12, index % 12 + 1)[1]

    assert (moved.year, moved.month) == (index // 12, index % 12 + 1)
    assert moved.day == min(local.day, last_day)
    assert moved.timetz().replace(tzinfo=None) == local.timetz().replace(tzinfo=None)


@PROPERTIES
@given(instants, instants, st.integers(0, 120))
def test_months_never_reorder_two_instants(a: datetime, b: datetime, months: int) -> None:
    early, late = min(a, b), max(a, b)
    assert add_months(early, months) <= add_months(late, months)


# --- CEL functions ------------------------------------------------------------------------------


def test_the_functions_are_bound_only_for_expressions_that_call_them() -> None:
    assert Expression("now > now", "p").business_functions == frozenset()
    used = Expression("is_working_day(now, 'cn-workdays') && add_months(now, 1) > now", "p")
    assert used.business_functions == {"is_working_day", "add_months"}
    assert used.business_functions <= FUNCTION_NAMES


def test_a_custom_part_promised_at_most_7_working_days_away() -> None:
    # R-SPR-06: ordered on the eve of National Day 2025 (1-8 October off, Saturday 11 October
    # worked), 7 working days run to Thursday 16 October, 10:00.
    guard = "timestamp(payload.expected) <= add_working(now, params.within, 'cn-workdays')"
    context = make_context(
        {}, {"expected": "2025-10-16T02:00:00Z"}, {"within": "7 working days"}, sh(2025, 9, 30, 10)
    )
    assert compiled(guard, "g").evaluate(context) is True
    late = {**context, "payload": {"expected": "2025-10-16T02:00:01Z"}}
    assert compiled(guard, "g").evaluate(late) is False


def test_the_calendar_can_be_a_parameter_and_a_stored_calendar() -> None:
    # 26 Jan 2026 is a holiday of plant-b but a working Monday in China.
    monday = datetime(2026, 1, 26, 6, tzinfo=UTC)
    source = "is_working_day(now, params.site_calendar)"

    assert run(source, monday, site_calendar="cn-workdays") is True
    assert run(source, monday, site_calendar="plant-b") is False


def test_unknown_calendars_and_bad_amounts_name_the_expression_and_the_fix() -> None:
    with pytest.raises(ExpressionError) as caught:
        run("add_working(now, '2h', 'cn_workdays')", sh(2026, 3, 2, 9))
    assert "transitions[0].guard" in caught.value.message
    assert "Calendar 'cn_workdays' does not exist" in caught.value.message
    assert "24x7, cn-workdays" in (caught.value.hint or "")

    with pytest.raises(ExpressionError, match="calendar months") as months:
        run("add_working(now, '12 months', 'cn-workdays')", sh(2026, 3, 2, 9))
    assert "add_months" in (months.value.hint or "")

    with pytest.raises(ExpressionError, match="not understood"):
        run("add_working(now, 'soon', 'cn-workdays')", sh(2026, 3, 2, 9))
    with pytest.raises(ExpressionError, match="must be a timestamp"):
        run("is_working_day('2026-03-02', 'cn-workdays')", sh(2026, 3, 2, 9))
    with pytest.raises(ExpressionError, match="named by a string"):
        run("is_working_day(now, 3)", sh(2026, 3, 2, 9))


def test_without_calendars_an_expression_uses_the_built_in_ones() -> None:
    context = make_context({}, {}, {}, sh(2025, 10, 1, 10))  # National Day
    assert compiled("is_working_day(now, 'cn-workdays')", "p").evaluate(context) is False
    with pytest.raises(ExpressionError, match="'plant-b' does not exist"):
        compiled("is_working_day(now, 'plant-b')", "p").evaluate(context)


cel_calendars = st.sampled_from(sorted(CALENDARS))
starts = st.datetimes(datetime(2024, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))
working_days = st.integers(1, 300)
working_minutes = st.integers(1, 60 * 24 * 60)


@PROPERTIES
@given(starts, cel_calendars, working_days)
def test_add_working_days_is_the_calendars_working_day_deadline(
    start: datetime, name: str, days: int
) -> None:
    got = run(
        "add_working(now, params.amount, params.calendar)",
        start,
        amount=f"{days} working days",
        calendar=name,
    )
    compact = run(
        "add_working(now, params.amount, params.calendar)", start, amount=f"{days}d", calendar=name
    )

    expected = (
        start + timedelta(days=days)
        if name == "24x7"
        else CALENDARS[name].add_working_days(start, days).at
    )
    assert got == compact == expected


@PROPERTIES
@given(starts, cel_calendars, working_minutes)
def test_add_working_time_is_the_calendars_working_time_deadline(
    start: datetime, name: str, minutes: int
) -> None:
    via_text = run(
        "add_working(now, params.amount, params.calendar)",
        start,
        amount=f"{minutes} working minutes",
        calendar=name,
    )
    via_duration = run(
        f"add_working(now, duration('{minutes}m'), params.calendar)", start, calendar=name
    )

    expected = CALENDARS[name].add_working_time(start, timedelta(minutes=minutes)).at
    assert via_text == via_duration == expected


@PROPERTIES
@given(starts, starts, cel_calendars)
def test_spans_between_two_instants_are_the_calendars(a: datetime, b: datetime, name: str) -> None:
    calendar = CALENDARS[name]
    context = make_context({}, {"a": a, "b": b}, {"c": name}, a, calendars=CALENDARS)
    time_between = compiled("working_time_between(payload.a, payload.b, params.c)", "p")
    days_between = compiled("working_days_between(payload.a, payload.b, params.c)", "p")

    span = calendar.working_days_between(a, b)
    assert time_between.evaluate(context) == calendar.working_time_between(a, b)
    assert days_between.evaluate(context) == int(span / timedelta(days=1))


@PROPERTIES
@given(starts, cel_calendars)
def test_is_working_day_asks_about_the_local_day(instant: datetime, name: str) -> None:
    calendar = CALENDARS[name]
    local_day = instant.astimezone(ZoneInfo(calendar.timezone)).date()

    got = run("is_working_day(now, params.c)", instant, c=name)
    assert got is calendar.is_working_day(local_day)


@PROPERTIES
@given(starts, st.integers(-24, 24), cel_calendars)
def test_add_months_in_cel_is_the_calendar_modules(start: datetime, months: int, name: str) -> None:
    zone = "Asia/Shanghai" if name == "24x7" else CALENDARS[name].timezone

    assert run(f"add_months(now, {months})", start) == add_months(start, months)
    assert run(f"add_months(now, {months}, params.c)", start, c=name) == add_months(
        start, months, zone
    )


# --- in definitions: timers, SLA targets, calendar parameters -----------------------------------

SOURCE = """
name: business_values
title: {en: Business values, zh: 工作时间取值}
initial: lent
parameters:
  turnover: {type: duration, default: 12 months}
  loaner_within: {type: duration, default: 5 working days}
  loaner_calendar: {type: calendar, default: cn-workdays}
  remind_after: {type: duration, default: 3 working hours}
states:
  - name: lent
    title: {en: Lent, zh: 借出}
    timers:
      - {name: turnover, after: {param: turnover}, trigger: overdue}
      - name: remind
        after: {param: remind_after}
        calendar: {param: loaner_calendar}
        trigger: remind
      - {name: fixed, after: 1 working day, calendar: cn-workdays, trigger: remind}
  - {name: paused, title: {en: Paused, zh: 暂停}}
  - {name: back, title: {en: Back, zh: 归还}, final: true}
transitions:
  - {trigger: remind, source: lent, dest: lent}
  - {trigger: overdue, source: lent, dest: lent}
  - {trigger: pause, source: lent, dest: paused}
  - {trigger: resume, source: paused, dest: lent}
  - {trigger: give_back, source: [lent, paused], dest: back}
slas:
  - name: turnover
    target: {param: turnover}
    start: {states: [lent]}
    pause: {states: [paused]}
    stop: {states: [back]}
  - name: loaner
    target: {param: loaner_within}
    calendar: {param: loaner_calendar}
    start: {states: [lent]}
    stop: {states: [back]}
"""


def _definition() -> WorkflowDefinition:
    return load_definition(parse_source(SOURCE))


def _lent(at: datetime, *later: tuple[str, str, datetime]) -> list[EventRecord]:
    events = [
        EventRecord(1, 1, "created", None, None, "lent", "t", {}, {}, at),
    ]
    state = "lent"
    for seq, (trigger, dest, when) in enumerate(later, start=2):
        events.append(EventRecord(1, seq, "transition", trigger, state, dest, "t", {}, {}, when))
        state = dest
    return events


def test_timers_take_words_months_and_a_calendar_parameter() -> None:
    definition = _definition()
    entered = sh(2028, 2, 29, 15)  # a Tuesday
    plans = {
        p.name: p
        for p in plan_state_timers(
            definition.state("lent"),
            entered_at=entered,
            data={},
            params=definition.default_params(),
            calendars=CALENDARS,
        )
    }

    assert plans["turnover"].due_at == sh(2029, 2, 28, 15)
    assert plans["remind"].due_at == CN.add_working_time(entered, timedelta(hours=3)).at
    assert plans["remind"].calendar == "cn-workdays"
    assert plans["fixed"].due_at == sh(2028, 3, 1, 15)

    on_plant = {**definition.default_params(), "loaner_calendar": "plant-b"}
    remind = plan_state_timers(
        definition.state("lent"), entered_at=entered, data={}, params=on_plant, calendars=CALENDARS
    )[1]
    assert (remind.calendar, remind.due_at) == (
        "plant-b",
        PLANT.add_working_time(entered, timedelta(hours=3)).at,
    )


def test_a_twelve_month_sla_across_29_february_2028() -> None:
    definition = _definition()
    turnover = definition.slas[0]
    params = definition.default_params()

    def clock(events: list[Any], now: datetime) -> Any:
        return compute_clock(
            turnover,
            events,
            data={},
            params=params,
            now=now,
            calendars=CALENDARS,
            finals=definition.final_states,
        )

    leap = clock(_lent(sh(2028, 2, 29, 15)), sh(2028, 6, 1))
    assert (leap.target, leap.due_at) == (timedelta(days=365), sh(2029, 2, 28, 15))
    before = clock(_lent(sh(2027, 3, 1, 9)), sh(2027, 6, 1))
    assert (before.target, before.due_at) == (timedelta(days=366), sh(2028, 3, 1, 9))
    # Paused time moves the end, as for any wall-clock target.
    paused = _lent(
        sh(2027, 3, 1, 9), ("pause", "paused", sh(2027, 4, 1)), ("resume", "lent", sh(2027, 4, 3))
    )
    assert clock(paused, sh(2027, 6, 1)).due_at == sh(2028, 3, 3, 9)
    assert clock(_lent(sh(2027, 3, 1, 9)), sh(2028, 3, 1, 9)).status.value == "running"
    assert clock(_lent(sh(2027, 3, 1, 9)), sh(2028, 3, 1, 9, 1)).status.value == "breached"

    plans = plan_sla_timers(
        definition,
        _lent(sh(2028, 2, 29, 15)),
        data={},
        params=params,
        now=sh(2028, 3, 1),
        calendars=CALENDARS,
    )
    breach = next(p for p in plans if p.sla == "turnover")
    assert breach.due_at == sh(2029, 2, 28, 15) + BREACH_AFTER


def test_an_sla_on_a_calendar_parameter_counts_working_days_there() -> None:
    definition = _definition()
    loaner = definition.slas[1]
    start = sh(2025, 9, 30, 10)
    clock = compute_clock(
        loaner,
        _lent(start),
        data={},
        params=definition.default_params(),
        now=start,
        calendars=CALENDARS,
        finals=definition.final_states,
    )

    assert (clock.calendar, clock.unit) == ("cn-workdays", "days")
    # 9, 10, 11 (a make-up Saturday), 13 and 14 October: National Day is not counted.
    assert clock.due_at == CN.add_working_days(start, 5).at == sh(2025, 10, 14, 10)


# --- validation: the same rules for literals and defaults, at their line and column -------------


def _problems(source: str, **options: Any) -> list[tuple[str, str, int | None, int | None]]:
    _document, report = validate_text(source, "business.yaml", **options)
    return [(p.code, p.path, p.line, p.column) for p in report.problems]


def test_the_bundled_example_validates() -> None:
    assert _problems(SOURCE) == []


def test_working_time_on_the_wall_clock_is_an_error_where_it_is_written() -> None:
    source = SOURCE.replace(
        "      - {name: fixed, after: 1 working day, calendar: cn-workdays, trigger: remind}",
        "      - {name: fixed, after: 1 working day, trigger: remind}",
    )

    assert _problems(source) == [
        ("working-time-on-wall-clock", "states[0].timers[2].after", 19, 23)
    ]


def test_months_on_a_business_calendar_are_refused() -> None:
    source = SOURCE.replace(
        "      - {name: turnover, after: {param: turnover}, trigger: overdue}",
        "      - {name: turnover, after: 12 months, calendar: cn-workdays, trigger: overdue}",
    )

    assert _problems(source) == [
        ("months-on-business-calendar", "states[0].timers[0].after", 14, 26)
    ]


def test_a_default_is_checked_on_the_default_of_the_calendar_parameter() -> None:
    source = SOURCE.replace(
        "loaner_calendar: {type: calendar, default: cn-workdays}",
        "loaner_calendar: {type: calendar, default: 24x7}",
    )

    found = _problems(source)

    assert [(code, path, line) for code, path, line, _ in found] == [
        ("working-time-on-wall-clock", "parameters.loaner_within.default", 7),
        ("working-time-on-wall-clock", "parameters.remind_after.default", 9),
    ]


def test_a_calendar_parameter_must_be_declared_a_calendar_with_a_known_default() -> None:
    wrong_type = SOURCE.replace(
        "calendar: {param: loaner_calendar}\n    start", "calendar: {param: turnover}\n    start"
    )
    undeclared = SOURCE.replace(
        "calendar: {param: loaner_calendar}\n        trigger",
        "calendar: {param: loaner_calender}\n        trigger",
    )
    misspelt = SOURCE.replace("default: cn-workdays}", "default: cn_workdays}")

    assert _problems(wrong_type) == [("parameter-not-calendar", "slas[1].calendar.param", 36, 16)]
    assert _problems(undeclared)[0][:2] == (
        "undeclared-parameter",
        "states[0].timers[1].calendar.param",
    )
    offline = _problems(misspelt)
    assert offline == [("unknown-calendar", "parameters.loaner_calendar.default", 8, 37)]
    _document, report = validate_text(
        misspelt, "business.yaml", known_calendars={"plant-b"}, calendars_complete=True
    )
    assert [(p.severity, p.hint) for p in report.problems] == [
        (Severity.ERROR, "Did you mean 'cn-workdays'?")
    ]


def test_a_duration_that_does_not_say_which_days_count_is_refused_with_a_hint() -> None:
    source = SOURCE.replace("default: 5 working days", "default: 5 days")

    _document, report = validate_text(source, "business.yaml")

    (problem,) = report.problems
    assert (problem.code, problem.path, problem.line) == (
        "bad-duration",
        "parameters.loaner_within.default",
        7,
    )
    assert "5 working days" in (problem.hint or "")


@pytest.mark.parametrize(
    ("within", "code"),
    [
        ("12 months", "bad-duration"),
        ("5 working days", "working-time-on-wall-clock"),
        ("30d", None),
    ],
)
def test_how_late_a_report_may_be_is_wall_time(within: str, code: str | None) -> None:
    source = SOURCE.replace(
        "  - {trigger: give_back, source: [lent, paused], dest: back}",
        "  - trigger: give_back\n"
        "    source: [lent, paused]\n"
        "    dest: back\n"
        "    payload_schema: {type: object, properties: {at: {type: string, format: date-time}}}\n"
        f"    occurred_at: {{field: at, within: {within}}}",
    )

    found = [(c, path) for c, path, _, _ in _problems(source)]

    assert found == ([(code, "transitions[4].occurred_at.within")] if code else [])


def _with_guard(guard: str) -> str:
    return SOURCE.replace(
        "  - {trigger: pause, source: lent, dest: paused}",
        f'  - {{trigger: pause, source: lent, dest: paused, guard: "{guard}"}}',
    )


@pytest.mark.parametrize(
    ("guard", "code"),
    [
        ("is_working_day(now, 'cn-workdays')", None),
        ("add_working(now, params.loaner_within, params.loaner_calendar) > now", None),
        ("add_months(now, 12) > now && add_months(now, 1, 'cn-workdays') > now", None),
        ("is_working_day(now, 'cn_workdays')", "unknown-calendar"),
        ("is_working_day(now)", "business-function-arguments"),
        ("add_working(now, '5 days', 'cn-workdays') > now", "bad-duration"),
        ("add_working(now, '12 months', 'cn-workdays') > now", "bad-duration"),
        ("add_working(now, params.loaner_calendar, 'cn-workdays') > now", "parameter-not-duration"),
        ("is_working_day(now, params.turnover)", "parameter-not-calendar"),
        ("'is_working_day(now)' != ''", None),  # inside a string: not a call
    ],
)
def test_business_time_calls_are_checked_where_they_are_written(
    guard: str, code: str | None
) -> None:
    found = _problems(_with_guard(guard))

    assert [(c, path, line) for c, path, line, _ in found] == (
        [(code, "transitions[2].guard", 25)] if code else []
    )
