"""An outage is logged once, not once per failed call: a warning when it begins, a reminder at
most once per interval while it lasts, the recovery with its length when a call succeeds."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from engine.runtime.outages import OutageLog

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
LOGGER = "engine.runtime.outages"


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def test_one_warning_for_the_outage_and_one_line_for_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog("database")

    outages.failed("connection refused", T0)
    for n in range(1, 500):
        outages.failed("connection refused", T0 + timedelta(milliseconds=n))
    outages.succeeded(T0 + timedelta(seconds=4.2))
    outages.succeeded(T0 + timedelta(seconds=5))

    assert _lines(caplog) == [
        ("WARNING", "database unavailable since 2025-09-30T02:00:00+00:00: connection refused"),
        (
            "INFO",
            "database available again after 4.2 s (unavailable since 2025-09-30T02:00:00+00:00, "
            "first with: connection refused); 500 calls failed meanwhile",
        ),
    ]
    assert outages.since is None


def test_a_long_outage_is_recalled_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog("database", remind_every=timedelta(minutes=1))

    for second in range(0, 150):  # one failure a second for two and a half minutes
        outages.failed("the database system is shutting down", T0 + timedelta(seconds=second))

    warnings = [message for level, message in _lines(caplog) if level == "WARNING"]
    assert len(warnings) == 3
    assert warnings[1] == (
        "database still unavailable since 2025-09-30T02:00:00+00:00 (60 s): 60 calls failed "
        "since the last report, the latest with: the database system is shutting down"
    )
    assert warnings[2].startswith(
        "database still unavailable since 2025-09-30T02:00:00+00:00 (120 s)"
    )


def test_a_call_that_began_before_the_latest_failure_does_not_end_the_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A statement that completed on a connection the stopping server had not closed yet says
    nothing about the server now: it must not end the outage for the next call to start
    another."""
    outages = OutageLog("database")
    began = outages.epoch
    outages.failed("terminating connection due to administrator command", T0, outages.epoch)

    outages.succeeded(T0 + timedelta(seconds=1), began)
    assert outages.since == T0

    began = outages.epoch  # a call that began after the failure
    outages.succeeded(T0 + timedelta(seconds=2), began)
    assert outages.since is None
    assert [level for level, _ in _lines(caplog)] == ["WARNING", "INFO"]


def test_a_call_that_began_before_the_recovery_does_not_start_another_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection attempt the starting server turned away, reported after another call got
    through: the outage it belongs to is over."""
    outages = OutageLog("database")
    outages.failed("connection refused", T0, outages.epoch)
    began = outages.epoch
    outages.succeeded(T0 + timedelta(seconds=3), outages.epoch)

    outages.failed("the database system is starting up", T0 + timedelta(seconds=3.1), began)
    assert outages.since is None

    outages.failed("connection refused", T0 + timedelta(seconds=9), outages.epoch)
    assert outages.since == T0 + timedelta(seconds=9)  # a call that began later: out again
    assert [level for level, _ in _lines(caplog)] == ["WARNING", "INFO", "WARNING"]


def test_the_next_outage_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    outages = OutageLog("database")

    outages.failed("connection refused", T0)
    outages.succeeded(T0 + timedelta(seconds=3))
    outages.failed("server closed the connection unexpectedly", T0 + timedelta(hours=1))

    assert [message for _, message in _lines(caplog)][-1] == (
        "database unavailable since 2025-09-30T03:00:00+00:00: "
        "server closed the connection unexpectedly"
    )
    assert outages.since == T0 + timedelta(hours=1)


def test_many_threads_failing_and_recovering_at_once_log_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog("database")
    start = threading.Barrier(8)

    def fail_then_succeed() -> None:
        start.wait()
        for n in range(200):
            outages.failed("connection refused", T0 + timedelta(milliseconds=n))
        start.wait()
        outages.succeeded(T0 + timedelta(seconds=1))

    threads = [threading.Thread(target=fail_then_succeed) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    lines = _lines(caplog)
    assert [level for level, _ in lines] == ["WARNING", "INFO"]
    assert lines[1][1].endswith("1600 calls failed meanwhile")
