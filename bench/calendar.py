"""Deadline arithmetic cost on cn-workdays: short (1 day) against long (1000 days) durations.

Run ``python bench/calendar.py``. The baseline is the short-duration run of the same operation
in the same process; a long/short ratio near 1 shows that the cost does not grow with the
length of the duration (docs/calendars.md, "Cost").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Python put bench/ first on the path, where this file would shadow the standard library's
# ``calendar`` module for anything imported later: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from engine.core.calendar import BusinessCalendar, cn_workdays  # noqa: E402

ITERATIONS = 20_000
# Starts spread over 2024-2026 (every 37 hours, so all times of day and weekdays occur).
STARTS = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=37 * i) for i in range(700)]


def per_call_us(call: Callable[[datetime], object]) -> float:
    """Best of three runs of ITERATIONS calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for i in range(ITERATIONS):
            call(STARTS[i % len(STARTS)])
        best = min(best, time.perf_counter() - began)
    return best / ITERATIONS * 1e6


def measure(calendar: BusinessCalendar) -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    cases: list[tuple[str, Callable[[int], Callable[[datetime], object]]]] = [
        (
            "add_working_time",
            lambda n: lambda s: calendar.add_working_time(s, timedelta(days=n)),
        ),
        ("add_working_days", lambda n: lambda s: calendar.add_working_days(s, n)),
    ]
    for name, make in cases:
        short = per_call_us(make(1))
        long = per_call_us(make(1000))
        rows.append((name, "1 day", short, 1.0))
        rows.append((name, "1000 days", long, long / short))
    return rows


def main() -> None:
    calendar = cn_workdays()
    calendar.add_working_time(STARTS[0], timedelta(hours=1))  # build the index outside timing
    calendar.add_working_days(STARTS[0], 1)
    print(f"cn-workdays, {ITERATIONS} calls per row, best of 3")
    print(f"{'operation':<18} {'duration':>10} {'us/call':>9} {'long/short':>11}")
    for name, duration, cost, ratio in measure(calendar):
        print(f"{name:<18} {duration:>10} {cost:>9.2f} {ratio:>11.2f}")


if __name__ == "__main__":
    main()
