"""Business calendars and the deadline arithmetic done on them.

A :class:`BusinessCalendar` says when work happens: working windows per weekday (09:00-12:00 and
13:00-18:00, say), holidays, and make-up working days on weekends (调休). Two kinds of SLA are
measured on it (docs/calendars.md has worked examples):

- *working time* ("8 working hours"): time inside working windows, see
  :meth:`BusinessCalendar.add_working_time`;
- *working days* ("3 working days"): whole local days 00:00-24:00 of every working day, windows
  ignored, see :meth:`BusinessCalendar.add_working_days`.

The module is pure: it imports only the standard library and ``chinese_calendar`` (static data),
never reads the clock and does no I/O. Instants go in and come out as aware UTC datetimes; the
calendar's zone is used only inside. Zones must keep one UTC offset (no daylight saving) over
:data:`SUPPORTED_YEARS`, which holds for Asia/Shanghai and UTC; this keeps every working day the
same length in real time, so the weekly pattern can be skipped a whole week at a time.

Cost does not grow with the length of a duration: each calendar keeps, per mode, a sorted list
of its *exception days* (holidays, make-up days) with prefix sums of how much working time they
add or remove against the weekly pattern. A position on the working-time axis is then whole-week
arithmetic plus one bisect, and so is its inverse.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import accumulate, pairwise
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chinese_calendar import constants as _cn_data

from engine.errors import CalendarError, written

#: Years of local time the arithmetic accepts and produces; zones are checked over them.
SUPPORTED_YEARS = range(2000, 2200)
#: The zone the wall clock (``24x7``, whose own zone is UTC) counts calendar months and cron
#: schedules in: the local dates of the service contracts, not Greenwich's.
DEFAULT_TIMEZONE = "Asia/Shanghai"

_DAY = 86_400_000_000  # microseconds; all arithmetic is on exact integer microseconds
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_FIRST_ORDINAL = date(SUPPORTED_YEARS.start, 1, 1).toordinal()
_STOP_ORDINAL = date(SUPPORTED_YEARS.stop, 1, 1).toordinal()
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORMAT = 1

_Span = tuple[int, int]  # [start, end) in microseconds since local midnight, end <= _DAY
_Mode = Literal["window", "day"]


# --- model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingWindow:
    """Working time within one local day, the half-open interval ``[start, end)``.

    ``end == time(0, 0)`` means the midnight that *ends* the day (24:00), so
    ``WorkingWindow(time(0), time(0))`` is the whole day; it is written ``"24:00"`` in
    :meth:`BusinessCalendar.to_dict`. A window never crosses midnight: split a night shift into
    two days. Times are naive local wall-clock times of the calendar's zone.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise CalendarError(
                    f"Working window {name} {value!r} is not a naive datetime.time.",
                    hint="Give local wall-clock times such as time(9, 0); the zone belongs to "
                    "the calendar.",
                )
        if self.start_us >= self.end_us:
            raise CalendarError(
                f"Working window {self} is empty or reversed: start must be before end.",
                hint="Use end=time(0, 0) for a window that runs to midnight (24:00); split a "
                "window that crosses midnight into one window on each day.",
            )

    @property
    def start_us(self) -> int:
        return _time_us(self.start)

    @property
    def end_us(self) -> int:
        return _DAY if self.end == time(0) else _time_us(self.end)

    def __str__(self) -> str:
        return f"{_format_time(self.start_us)}-{_format_time(self.end_us)}"


@dataclass(frozen=True)
class Deadline:
    """A computed deadline.

    ``provisional`` is true when the computation crossed a year whose holiday schedule the
    calendar does not hold (``uncovered_years``): the result follows the weekly pattern there and
    must be recomputed once that year's schedule is loaded. It is never refused.
    """

    at: datetime
    provisional: bool = False
    uncovered_years: tuple[int, ...] = ()


class _Malformed(ValueError):
    """A stored calendar's defect found by :meth:`BusinessCalendar.from_dict` itself."""


@dataclass(frozen=True)
class BusinessCalendar:
    """When work happens, in one IANA time zone.

    ``weekly`` maps a weekday (0 = Monday .. 6 = Sunday) to its windows; a missing weekday has
    none. A day in ``holidays`` has no windows; a day in ``makeup_workdays`` (调休) uses
    ``makeup_windows`` (default: Monday's). ``covered_years`` are the years whose holiday data is
    authoritative (``None``: every year); elsewhere the weekly pattern is used and deadlines come
    out provisional. The value is immutable; its arithmetic index is built on first use.
    """

    name: str
    timezone: str
    weekly: Mapping[int, tuple[WorkingWindow, ...]]
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    makeup_windows: tuple[WorkingWindow, ...] | None = None
    covered_years: frozenset[int] | None = None
    _offset_us: int = field(init=False, repr=False, compare=False, default=0)
    _axes: dict[str, _Axis] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CalendarError(
                "A calendar needs a non-empty name.", hint="Name it, e.g. 'plant-b'."
            )
        weekly = _normalize_weekly(self.weekly)
        makeup = weekly[0] if self.makeup_windows is None else _sorted_windows(self.makeup_windows)
        holidays = _date_set(self.holidays, "holidays")
        makeup_days = _date_set(self.makeup_workdays, "makeup_workdays")
        _check_days(holidays, makeup_days, makeup)
        covered = None if self.covered_years is None else _year_set(self.covered_years)
        object.__setattr__(self, "weekly", MappingProxyType(weekly))
        object.__setattr__(self, "makeup_windows", makeup)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "makeup_workdays", makeup_days)
        object.__setattr__(self, "covered_years", covered)
        object.__setattr__(self, "_offset_us", _fixed_offset_us(self.timezone))

    def __hash__(self) -> int:
        return hash((self.name, self.timezone, tuple(self.weekly.items()), self.holidays))

    # --- queries ------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """True when ``day`` has at least one working window (holidays and 调休 applied)."""
        return bool(self._windows(day))

    def local_date(self, t: datetime) -> date:
        """The day the instant ``t`` falls on in the calendar's zone."""
        return _local_date(self._local_us(t, "t"))

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working windows of local ``day`` as aware UTC ``[start, end)`` pairs."""
        midnight = (day.toordinal() - _EPOCH_ORDINAL) * _DAY
        _check_supported(midnight, f"day {day}")
        base = midnight - self._offset_us
        return [(_utc(base + w.start_us), _utc(base + w.end_us)) for w in self._windows(day)]

    def next_working_instant(self, t: datetime) -> datetime:
        """The earliest instant >= ``t`` inside a window (``t`` itself when it is inside one).

        Window ends are not working instants: windows are half-open. Outside covered years the
        weekly pattern is used, without a provisional flag.
        """
        axis = self._axis("window")
        position = axis.position(self._local_us(t, "t"))
        return self._from_local(axis.locate(position + 1) - 1)

    # --- arithmetic ---------------------------------------------------------------------------

    def add_working_time(self, start: datetime, duration: timedelta) -> Deadline:
        """The earliest instant at which ``duration`` of working time has elapsed since ``start``.

        Counting begins at the next window when ``start`` is outside one. For a positive
        duration the result is a working instant or the end of a window (never a later window
        start: 8 working hours from Monday 09:00 on 09-12/13-18 is Monday 18:00). A zero duration
        returns ``start`` unchanged, so ``add(add(s, a), b) == add(s, a + b)`` always holds.
        """
        return self._add("window", start, _duration_us(duration, "duration"))

    def add_working_days(self, start: datetime, days: int) -> Deadline:
        """The earliest instant at which ``days`` whole working days have elapsed since ``start``.

        Every working day counts 00:00-24:00 local, windows ignored. From a working day at local
        time T the result is T on the ``days``-th following working day; from a non-working day,
        counting begins at 00:00 of the next working day and the result is 24:00 (the next
        day's 00:00) of the last counted working day. Zero days returns ``start``.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise CalendarError(
                f"days must be a whole number >= 0, got {days!r}.",
                hint="A deadline cannot lie before its start; pass 0 or more working days.",
            )
        return self._add("day", start, days * _DAY)

    def add_working_day_time(self, start: datetime, amount: timedelta) -> Deadline:
        """Like :meth:`add_working_days` for a fraction of working days (an SLA's remainder).

        ``amount`` is working-day time as :meth:`working_days_between` measures it, so
        ``add_working_days(s, n) == add_working_day_time(s, timedelta(days=n))``.
        """
        return self._add("day", start, _duration_us(amount, "amount"))

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time (inside windows) from ``a`` to ``b``; negative when ``b`` is before ``a``.

        Consistent with :meth:`add_working_time`: between(s, add(s, d).at) == d.
        """
        return self._between("window", a, b)

    def working_days_between(self, a: datetime, b: datetime) -> timedelta:
        """Working-day time from ``a`` to ``b``: one day per full working day, fractions inside.

        ``result.days`` is the number of whole working days elapsed; consistent with
        :meth:`add_working_days`: between(s, add(s, n).at) == timedelta(days=n).
        """
        return self._between("day", a, b)

    # --- serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly, stable representation (sorted lists, ISO dates, "HH:MM" times)."""
        return {
            "format": _FORMAT,
            "name": self.name,
            "timezone": self.timezone,
            "weekly": {_WEEKDAYS[d]: _windows_out(self.weekly[d]) for d in range(7)},
            "makeup_windows": _windows_out(self.makeup_windows or ()),
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "makeup_workdays": sorted(d.isoformat() for d in self.makeup_workdays),
            "covered_years": None if self.covered_years is None else sorted(self.covered_years),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BusinessCalendar:
        """Rebuild a calendar from :meth:`to_dict` output; every defect raises CalendarError."""
        path = "the top level"
        try:
            if set(raw) != _KEYS or raw["format"] != _FORMAT:
                raise _Malformed(
                    f"expected exactly the keys {', '.join(sorted(_KEYS))}, format {_FORMAT}"
                )
            path = "weekly"
            if set(raw["weekly"]) != set(_WEEKDAYS):
                raise _Malformed(f"expected exactly the keys {', '.join(_WEEKDAYS)}")
            weekly = {i: _windows_in(raw["weekly"][day]) for i, day in enumerate(_WEEKDAYS)}
            path = "makeup_windows"
            makeup_windows = _windows_in(raw["makeup_windows"])
            path = "holidays"
            holidays = frozenset(map(date.fromisoformat, raw["holidays"]))
            path = "makeup_workdays"
            makeup_days = frozenset(map(date.fromisoformat, raw["makeup_workdays"]))
            path = "covered_years"
            covered = raw["covered_years"]
            covered_years = None if covered is None else frozenset(covered)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # Past our own checks, the exception is in Python's words ("not enough values
            # to unpack", "'NoneType' object is not iterable"): quote the value instead.
            found = written(raw.get(path))
            detail = (
                str(exc)
                if isinstance(exc, _Malformed)
                else f"{found[:120]}{'...' if len(found) > 120 else ''} cannot be read there"
            )
            raise CalendarError(
                f"Stored calendar is malformed at {path}: {detail}.",
                hint="Give the whole calendar in the form svcflow shows it (the calendar of "
                'GET /api/v1/calendars/NAME): times "HH:MM" ("24:00" ends the day), dates '
                '"YYYY-MM-DD".',
            ) from exc
        return cls(
            name=raw["name"],
            timezone=raw["timezone"],
            weekly=weekly,
            holidays=holidays,
            makeup_workdays=makeup_days,
            makeup_windows=makeup_windows,
            covered_years=covered_years,
        )

    # --- internals ----------------------------------------------------------------------------

    def _windows(self, day: date) -> tuple[WorkingWindow, ...]:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise CalendarError(
                f"Expected a calendar day (datetime.date), got {day!r}.",
                hint="Pass the local date, e.g. date(2025, 10, 1); for an instant use "
                "next_working_instant().",
            )
        if day in self.holidays:
            return ()
        if day in self.makeup_workdays:
            return self.makeup_windows or ()
        return self.weekly[day.weekday()]

    def _axis(self, mode: _Mode) -> _Axis:
        # Built lazily and kept on the (immutable) calendar; a race builds two equal axes.
        axis = self._axes.get(mode)
        if axis is None:
            axis = self._build_axis(mode)
            self._axes[mode] = axis
        return axis

    def _build_axis(self, mode: _Mode) -> _Axis:
        def spans(windows: Sequence[WorkingWindow]) -> tuple[_Span, ...]:
            if mode == "day":
                return ((0, _DAY),) if windows else ()
            return tuple((w.start_us, w.end_us) for w in windows)

        pattern = tuple(spans(self.weekly[d]) for d in range(7))
        exceptions: dict[int, tuple[_Span, ...]] = {d.toordinal(): () for d in self.holidays}
        makeup = spans(self.makeup_windows or ())
        exceptions.update({d.toordinal(): makeup for d in self.makeup_workdays})
        return _Axis(pattern, exceptions)

    def _add(self, mode: _Mode, start: datetime, amount: int) -> Deadline:
        begin = self._local_us(start, "start")
        if amount == 0:
            return self._deadline(begin, begin)
        axis = self._axis(mode)
        return self._deadline(begin, axis.locate(axis.position(begin) + amount))

    def _between(self, mode: _Mode, a: datetime, b: datetime) -> timedelta:
        axis = self._axis(mode)
        start, end = self._local_us(a, "a"), self._local_us(b, "b")
        return timedelta(microseconds=axis.position(end) - axis.position(start))

    def _deadline(self, begin: int, end: int) -> Deadline:
        at = self._from_local(end)
        # A deadline at local 24:00 ends the previous day: that day is the last one consulted.
        last = end - 1 if end > begin else end
        first_year, last_year = _local_date(begin).year, _local_date(last).year
        covered = self.covered_years
        missing = (
            ()
            if covered is None
            else tuple(y for y in range(first_year, last_year + 1) if y not in covered)
        )
        return Deadline(at, bool(missing), missing)

    def _local_us(self, t: datetime, name: str) -> int:
        if not isinstance(t, datetime) or t.utcoffset() is None:
            raise CalendarError(
                f"{name} is {t!r}, not an aware datetime: the calendar cannot tell which instant "
                "it is.",
                hint="Pass an aware UTC datetime, e.g. datetime(2025, 9, 30, 2, 0, tzinfo=UTC).",
                calendar=self.name,
            )
        local = (t - _EPOCH) // timedelta(microseconds=1) + self._offset_us
        _check_supported(local, f"{name} {t.isoformat()}")
        return local

    def _from_local(self, local: int) -> datetime:
        _check_supported(local, "the result")
        return _utc(local - self._offset_us)


class _Axis:
    """The working-time axis of one calendar in one mode ("window" or "day").

    ``position(t)`` is the working time from 0001-01-01 00:00 local to local instant ``t``.
    Days follow the weekly ``pattern`` except the ``exceptions`` (holidays, make-up days); their
    differences against the pattern are prefix-summed, so both ``position`` and its inverse
    ``locate`` cost whole-week arithmetic plus one bisect, whatever the distance.
    """

    def __init__(
        self, pattern: tuple[tuple[_Span, ...], ...], exceptions: Mapping[int, tuple[_Span, ...]]
    ) -> None:
        self.pattern = pattern
        self.exceptions = dict(exceptions)
        week = [_total(spans) for spans in pattern]
        self.week_prefix = tuple(accumulate(week, initial=0))
        self.ordinals = sorted(self.exceptions)
        self.corrections = [0]  # corrections[i]: sum of differences of exceptions before i
        self.starts: list[int] = []  # position at 00:00 of exception day i
        self.ends: list[int] = []  # position at 24:00 of exception day i
        for o in self.ordinals:
            own = _total(self.exceptions[o])
            self.starts.append(self._pattern_prefix(o - 1) + self.corrections[-1])
            self.ends.append(self.starts[-1] + own)
            self.corrections.append(self.corrections[-1] + own - week[(o - 1) % 7])

    def _pattern_prefix(self, days: int) -> int:
        """Pattern working time of the first ``days`` days (ordinal 1 is a Monday)."""
        weeks, rest = divmod(days, 7)
        return weeks * self.week_prefix[7] + self.week_prefix[rest]

    def day_start(self, ordinal: int) -> int:
        index = bisect.bisect_left(self.ordinals, ordinal)
        return self._pattern_prefix(ordinal - 1) + self.corrections[index]

    def spans(self, ordinal: int) -> tuple[_Span, ...]:
        found = self.exceptions.get(ordinal)
        return self.pattern[(ordinal - 1) % 7] if found is None else found

    def position(self, local: int) -> int:
        days, time_of_day = divmod(local, _DAY)
        ordinal = days + _EPOCH_ORDINAL
        elapsed = sum(max(0, min(time_of_day, e) - s) for s, e in self.spans(ordinal))
        return self.day_start(ordinal) + elapsed

    def locate(self, target: int) -> int:
        """The earliest local instant whose position reaches ``target``."""
        index = bisect.bisect_left(self.ends, target)
        if index < len(self.ordinals) and self.starts[index] < target:
            ordinal = self.ordinals[index]
        else:  # between two exception days, where only the pattern applies
            ordinal = self._pattern_day(target - self.corrections[index])
        remaining = target - self.day_start(ordinal)
        for s, e in self.spans(ordinal):
            if remaining <= e - s:
                return (ordinal - _EPOCH_ORDINAL) * _DAY + s + remaining
            remaining -= e - s
        raise AssertionError(f"working-time axis is inconsistent at day {ordinal}")

    def _pattern_day(self, target: int) -> int:
        """The smallest ordinal whose pattern prefix reaches ``target`` (> 0)."""
        week = self.week_prefix[7]
        # The prefix after 7(q-1) days is below target and after 7(q+1) days above it: at most
        # 14 steps, whatever the distance.
        days = max(0, 7 * (target // week - 1))
        while self._pattern_prefix(days) < target:
            days += 1
        return days


# --- calendar months --------------------------------------------------------------------------


def add_months(start: datetime, months: int, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """``start`` moved by ``months`` calendar months (back for a negative number) in the local
    time of ``timezone``: the same local time of day on the same day of the month, or on the
    month's last day when it has no such day (31 January + 1 month = 28 or 29 February; 29
    February 2028 + 12 months = 28 February 2029). Months are not additive at month ends
    (31 Jan + 1 + 1 = 28 Mar, 31 Jan + 2 = 31 Mar): a period is always added to its start.

    Pure, like the rest of the module; the result is an aware UTC datetime."""
    if isinstance(months, bool) or not isinstance(months, int):
        raise CalendarError(
            f"months must be a whole number, got {written(months)}.",
            hint="Give a number of calendar months, e.g. 12.",
        )
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise CalendarError(
            f"start is {start!r}, not an aware datetime.",
            hint="Pass an aware UTC datetime, e.g. datetime(2028, 2, 29, tzinfo=UTC).",
        )
    offset = timedelta(microseconds=_fixed_offset_us(timezone))
    local = start.astimezone(UTC).replace(tzinfo=None) + offset
    year, month0 = divmod(local.year * 12 + local.month - 1 + months, 12)
    if year not in SUPPORTED_YEARS:
        raise CalendarError(
            f"{start.isoformat()} + {months} months lies outside the years "
            f"{SUPPORTED_YEARS.start}-{SUPPORTED_YEARS.stop - 1} that calendars support.",
            hint="Check the number of months for a typo.",
        )
    first = date(year, month0 + 1, 1)
    month_days = (date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1) - first).days
    day = min(local.day, month_days)
    moved = local.replace(year=year, month=month0 + 1, day=day)
    return (moved - offset).replace(tzinfo=UTC)


# --- constructors -----------------------------------------------------------------------------


def calendar_24x7() -> BusinessCalendar:
    """Every instant is working time, every day a working day; there is no holiday data to
    miss, so nothing it computes is provisional. The zone (UTC) does not affect any result."""
    whole_day = (WorkingWindow(time(0), time(0)),)
    return BusinessCalendar(name="24x7", timezone="UTC", weekly=dict.fromkeys(range(7), whole_day))


def cn_workdays(
    windows: Sequence[WorkingWindow] | None = None,
    *,
    holidays_add: Iterable[date] = (),
    holidays_remove: Iterable[date] = (),
    workdays_add: Iterable[date] = (),
    workdays_remove: Iterable[date] = (),
    covered_years_add: Iterable[int] = (),
) -> BusinessCalendar:
    """The mainland China statutory calendar in Asia/Shanghai, named "cn-workdays".

    ``windows`` apply Monday to Friday and on make-up working days; by default 09:00-12:00 and
    13:00-18:00, 8 working hours a day. Holidays and make-up days
    come from ``chinese_calendar``, covering the years its data covers; the overrides (see
    :func:`apply_overrides`) load a State Council schedule the library does not ship yet.
    """
    holidays, workdays, covered = _cn_schedule()
    base = BusinessCalendar(
        name="cn-workdays",
        timezone="Asia/Shanghai",
        weekly=dict.fromkeys(range(5), tuple(windows or _cn_default_windows())),
        holidays=holidays,
        makeup_workdays=workdays,
        covered_years=covered,
    )
    return apply_overrides(
        base,
        holidays_add=holidays_add,
        holidays_remove=holidays_remove,
        workdays_add=workdays_add,
        workdays_remove=workdays_remove,
        covered_years_add=covered_years_add,
    )


def apply_overrides(
    base: BusinessCalendar,
    *,
    holidays_add: Iterable[date] = (),
    holidays_remove: Iterable[date] = (),
    workdays_add: Iterable[date] = (),
    workdays_remove: Iterable[date] = (),
    covered_years_add: Iterable[int] = (),
) -> BusinessCalendar:
    """``base`` with an administrator's corrections; removals apply first, then additions.

    An added holiday stops being a make-up day and an added make-up day stops being a holiday.
    Loading dates never marks a year as covered: list it in ``covered_years_add`` once its whole
    schedule is in, which makes deadlines in that year final instead of provisional.
    """
    add_off = _date_set(holidays_add, "holidays_add")
    add_on = _date_set(workdays_add, "workdays_add")
    remove_off = _date_set(holidays_remove, "holidays_remove")
    remove_on = _date_set(workdays_remove, "workdays_remove")
    conflicts = {
        "holidays_add and workdays_add": add_off & add_on,
        "holidays_add and holidays_remove": add_off & remove_off,
        "workdays_add and workdays_remove": add_on & remove_on,
    }
    for label, dates in conflicts.items():
        if dates:
            raise CalendarError(
                f"Overrides list {_join_dates(dates)} in both {label}.",
                hint="Say once what each day is: a holiday or a make-up working day.",
                calendar=base.name,
            )
    holidays = (base.holidays - remove_off - add_on) | add_off
    workdays = (base.makeup_workdays - remove_on - add_off) | add_on
    covered = base.covered_years
    if covered is not None:
        covered = covered | _year_set(covered_years_add)
    return dataclasses.replace(
        base, holidays=holidays, makeup_workdays=workdays, covered_years=covered
    )


def _cn_default_windows() -> tuple[WorkingWindow, ...]:
    return (WorkingWindow(time(9), time(12)), WorkingWindow(time(13), time(18)))


@lru_cache(maxsize=1)
def _cn_schedule() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    holidays: frozenset[date] = frozenset(_cn_data.holidays)
    workdays: frozenset[date] = frozenset(_cn_data.workdays)
    years = [d.year for d in holidays]
    return holidays, workdays, frozenset(range(min(years), max(years) + 1))


# --- validation and conversion helpers --------------------------------------------------------


@lru_cache(maxsize=64)
def _fixed_offset_us(name: str) -> int:
    """The zone's one UTC offset over SUPPORTED_YEARS (sampled weekly), or CalendarError."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(
            f"Unknown time zone {name!r}.",
            hint="Use an IANA zone name such as 'Asia/Shanghai' or 'UTC'.",
        ) from exc
    first = datetime(SUPPORTED_YEARS.start, 1, 1, tzinfo=UTC)
    weeks = (SUPPORTED_YEARS.stop - SUPPORTED_YEARS.start) * 53
    offsets = {(first + timedelta(weeks=i)).astimezone(zone).utcoffset() for i in range(weeks)}
    if len(offsets) != 1:
        raise CalendarError(
            f"Time zone {name!r} changes its UTC offset (daylight saving time or a rule change) "
            f"between {SUPPORTED_YEARS.start} and {SUPPORTED_YEARS.stop - 1}.",
            hint="Business calendars need a zone with one fixed offset, such as 'Asia/Shanghai'.",
        )
    (offset,) = offsets
    assert offset is not None
    return offset // timedelta(microseconds=1)


def _normalize_weekly(
    weekly: Mapping[int, Sequence[WorkingWindow]],
) -> dict[int, tuple[WorkingWindow, ...]]:
    if not isinstance(weekly, Mapping) or any(
        isinstance(k, bool) or k not in range(7) for k in weekly
    ):
        raise CalendarError(
            f"weekly must map weekdays 0 (Monday) .. 6 (Sunday) to windows, got keys "
            f"{sorted(map(repr, weekly)) if isinstance(weekly, Mapping) else weekly!r}.",
            hint="Use weekday numbers as datetime.date.weekday() returns them.",
        )
    out = {d: _sorted_windows(weekly.get(d, ())) for d in range(7)}
    if not any(out.values()):
        raise CalendarError(
            "The weekly pattern has no working window on any weekday.",
            hint="Give at least one weekday a window; a calendar without working time cannot "
            "produce a deadline.",
        )
    return out


def _sorted_windows(windows: Iterable[WorkingWindow]) -> tuple[WorkingWindow, ...]:
    given = tuple(windows) if isinstance(windows, Iterable) else (windows,)
    for w in given:
        if not isinstance(w, WorkingWindow):
            raise CalendarError(
                f"{w!r} is not a WorkingWindow.", hint="Wrap times in WorkingWindow(start, end)."
            )
    ordered = tuple(sorted(given, key=lambda w: w.start_us))
    for before, after in pairwise(ordered):
        if after.start_us < before.end_us:
            raise CalendarError(
                f"Working windows {before} and {after} overlap.",
                hint="Merge them into one window or make one end before the other starts.",
            )
    return ordered


def _date_set(values: Iterable[date], name: str) -> frozenset[date]:
    out = frozenset(values)
    wrong = [v for v in out if isinstance(v, datetime) or not isinstance(v, date)]
    if wrong:
        raise CalendarError(
            f"{name} must hold datetime.date values, got {wrong[0]!r}.",
            hint="Pass calendar days such as date(2025, 10, 1), not datetimes or strings.",
        )
    return out


def _year_set(values: Iterable[int]) -> frozenset[int]:
    out = frozenset(values)
    if not all(isinstance(y, int) and not isinstance(y, bool) for y in out):
        raise CalendarError(
            f"Covered years must be whole years, got {sorted(map(repr, out))}.",
            hint="Give years as numbers, e.g. {2026, 2027}.",
        )
    return out


def _check_days(
    holidays: frozenset[date], makeup_days: frozenset[date], windows: tuple[WorkingWindow, ...]
) -> None:
    both = holidays & makeup_days
    if both:
        raise CalendarError(
            f"{_join_dates(both)} is both a holiday and a make-up working day.",
            hint="Remove it from one of the two sets (apply_overrides does this for you).",
        )
    if makeup_days and not windows:
        raise CalendarError(
            "The calendar has make-up working days but no windows for them (Monday has none).",
            hint="Set makeup_windows.",
        )


def _check_supported(local: int, what: str) -> None:
    if not _FIRST_ORDINAL <= local // _DAY + _EPOCH_ORDINAL < _STOP_ORDINAL:
        raise CalendarError(
            f"{what} lies outside the years {SUPPORTED_YEARS.start}-{SUPPORTED_YEARS.stop - 1} "
            "that business calendars support.",
            hint="Check the date for a typo; deadlines that far out are not meaningful.",
        )


def _duration_us(duration: timedelta, name: str) -> int:
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise CalendarError(
            f"{name} must be a timedelta >= 0, got {duration!r}.",
            hint="A deadline cannot lie before its start; pass a zero or positive duration.",
        )
    return duration // timedelta(microseconds=1)


def _local_date(local: int) -> date:
    return date.fromordinal(local // _DAY + _EPOCH_ORDINAL)


def _utc(utc_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=utc_us)


def _total(spans: Iterable[_Span]) -> int:
    return sum(e - s for s, e in spans)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _format_time(us: int) -> str:
    seconds, micro = divmod(us, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{hours:02d}:{rest // 60:02d}"
    if rest % 60 or micro:
        text += f":{rest % 60:02d}" + (f".{micro:06d}" if micro else "")
    return text


def _join_dates(dates: Iterable[date]) -> str:
    return ", ".join(sorted(d.isoformat() for d in dates))


# --- to_dict / from_dict helpers --------------------------------------------------------------

_KEYS = frozenset(
    {
        "format",
        "name",
        "timezone",
        "weekly",
        "makeup_windows",
        "holidays",
        "makeup_workdays",
        "covered_years",
    }
)


def _windows_out(windows: Iterable[WorkingWindow]) -> list[list[str]]:
    return [[_format_time(w.start_us), _format_time(w.end_us)] for w in windows]


def _windows_in(raw: list[list[str]]) -> tuple[WorkingWindow, ...]:
    def read(text: str) -> time:
        return time(0) if text == "24:00" else time.fromisoformat(text)

    return tuple(WorkingWindow(read(start), read(end)) for start, end in raw)
