"""The bounds of a fact reported late (engine/core/reported_time.py), at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.reported_time import CLOCK_SKEW, OccurredAt, count_reported, parse_reported
from engine.errors import PayloadInvalid

RECEIVED = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PREVIOUS = RECEIVED - timedelta(hours=5)
DAY = OccurredAt(field="at", within=timedelta(hours=24))
SECOND = timedelta(seconds=1)


def count(reported: datetime, previous: datetime = PREVIOUS) -> tuple[datetime, str | None]:
    counted = count_reported(
        reported, received=RECEIVED, previous=previous, spec=DAY, trigger="contact", previous_seq=3
    )
    assert (counted.reported, counted.received) == (reported, RECEIVED)
    return counted.at, counted.why


def test_a_report_within_its_bounds_counts_when_it_happened() -> None:
    for reported in (PREVIOUS, RECEIVED - timedelta(hours=1), RECEIVED):
        assert count(reported) == (reported, None)


def test_the_future_edge_is_the_clock_skew() -> None:
    assert count(RECEIVED + CLOCK_SKEW)[0] == RECEIVED
    with pytest.raises(PayloadInvalid, match="1m1s after the time svcflow received it"):
        count(RECEIVED + CLOCK_SKEW + SECOND)


def test_the_window_edge_counts_at_the_reported_instant_and_beyond_it_when_received() -> None:
    long_ago = RECEIVED - timedelta(days=3)
    assert count(RECEIVED - DAY.within, previous=long_ago) == (RECEIVED - DAY.within, None)
    at, why = count(RECEIVED - DAY.within - SECOND, previous=long_ago)
    assert at == RECEIVED and why is not None and "more than 1d after it happened" in why


def test_nothing_counts_before_the_previous_event() -> None:
    at, why = count(PREVIOUS - SECOND)
    assert at == PREVIOUS
    assert why is not None and "previous event (seq 3)" in why
    # Too old and before the previous event: the later bound wins.
    at, _ = count(RECEIVED - timedelta(days=2), previous=RECEIVED - timedelta(minutes=1))
    assert at == RECEIVED


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-03-02T09:00:00", "payload.at 2026-03-02T09:00:00 has no UTC offset."),
        ("yesterday", 'payload.at "yesterday" is not a date and time.'),
        (1741000000, "payload.at 1741000000 is not a date and time."),
    ],
)
def test_a_reported_instant_must_say_its_offset(value: object, message: str) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        parse_reported(value, trigger="contact", field="at")
    assert refused.value.message == message


def test_a_reported_instant_in_any_offset_is_the_same_instant() -> None:
    assert parse_reported("2026-03-02T10:00:00+08:00", trigger="t", field="at") == datetime(
        2026, 3, 2, 2, 0, tzinfo=UTC
    )
    assert parse_reported("2026-03-02T02:00:00Z", trigger="t", field="at") == RECEIVED
