"""Durations as process owners write them: parsing, errors, working-day semantics, formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.core.durations import format_timedelta, parse_duration
from engine.errors import DurationInvalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(days=14)),
        ("1w2d3h4m5s", timedelta(days=9, hours=3, minutes=4, seconds=5)),
        ("48h", timedelta(days=2)),
        ("0h30m", timedelta(minutes=30)),
        (" 2h ", timedelta(hours=2)),
    ],
)
def test_parse_examples(text: str, expected: timedelta) -> None:
    assert parse_duration(text).timedelta == expected


def test_weeks_fold_into_days_and_hours_stay_separate() -> None:
    duration = parse_duration("1w1d36h")

    assert (duration.days, duration.seconds) == (8, 36 * 3600)
    assert duration.text == "1w1d36h"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2",
        "h",
        "2hours",
        "1.5h",
        "-1h",
        "2H",
        "30m1h",
        "1h 30m",
        "1d1d",
        "0s",
        "0d0h",
        "P1D",
    ],
)
def test_malformed_or_zero_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(DurationInvalid) as caught:
        parse_duration(text)

    assert repr(text) in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("value", [None, 2, 1.5, ["2h"], {"after": "2h"}])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(DurationInvalid) as caught:
        parse_duration(value)

    assert caught.value.code == "duration-invalid"


@pytest.mark.parametrize(
    ("text", "whole_days", "mixed"),
    [
        ("3d", True, False),
        ("2w", True, False),
        ("20h", False, False),  # working time, even though it is more than a day
        ("48h", False, False),
        ("90s", False, False),
        ("1d4h", False, True),
        ("1w30m", False, True),
    ],
)
def test_whole_days_and_mixed_tell_working_days_from_working_time(
    text: str, whole_days: bool, mixed: bool
) -> None:
    duration = parse_duration(text)

    assert (duration.whole_days, duration.mixed) == (whole_days, mixed)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=14), "14d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(minutes=-90), "-1h30m"),
        (timedelta(milliseconds=1500), "1s"),  # sub-second parts are dropped
    ],
)
def test_format_timedelta(value: timedelta, text: str) -> None:
    assert format_timedelta(value) == text


@given(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)))
def test_format_then_parse_round_trips_whole_seconds(value: timedelta) -> None:
    value = timedelta(seconds=int(value.total_seconds()))

    assert parse_duration(format_timedelta(value)).timedelta == value


@given(
    st.integers(0, 5),
    st.integers(0, 9),
    st.integers(0, 30),
    st.integers(0, 120),
    st.integers(0, 99),
)
def test_parse_then_format_then_parse_is_stable(w: int, d: int, h: int, m: int, s: int) -> None:
    text = "".join(f"{n}{unit}" for n, unit in zip((w, d, h, m, s), "wdhms", strict=True) if n)
    assume(text)
    expected = timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)

    parsed = parse_duration(text)

    assert parsed.timedelta == expected
    assert parse_duration(format_timedelta(parsed.timedelta)).timedelta == expected
