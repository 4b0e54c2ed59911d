"""Business-time functions for CEL expressions: deadlines and spans on a named calendar.

Guards, actions, timer instants and SLA targets may compute with working days, working time
and calendar months (docs/definitions.md, "Business time in expressions"):

``add_working(ts, amount, calendar)``          timestamp: ``amount`` of business time after
                                               ``ts``, counted as a timer counts its ``after``
``working_time_between(a, b, calendar)``       duration: working time (inside the windows)
``working_days_between(a, b, calendar)``       int: whole working days elapsed
``is_working_day(ts, calendar)``               bool: the local day of ``ts`` is a working day
``add_months(ts, n)``, ``add_months(ts, n, calendar)``
                                               timestamp: ``n`` calendar months later,
                                               month-end aware

``amount`` is a duration text (``'5 working days'``, ``'3d'``, ``'4h'``, a duration parameter)
or a CEL duration (``duration('90m')``, always working time); ``calendar`` a calendar's name,
written literally or read from a parameter (``params.delivery_calendar``).

Each function is pure: what it answers depends only on its arguments and the calendars the
evaluation is given, which the caller reads from the database once per transaction (the
engine never lets an expression read a calendar it was not handed). The expression is
compiled once (:mod:`engine.core.expressions`); the functions are bound to the calendars at
each evaluation, which costs a few microseconds and only for expressions that call them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from engine.core.calendar import (
    DEFAULT_TIMEZONE,
    BusinessCalendar,
    add_months,
    calendar_24x7,
    cn_workdays,
)
from engine.core.durations import WALL_CLOCK, Duration, parse_duration
from engine.errors import CalendarError, SvcflowError, written

#: The names expressions may call; :class:`~engine.core.expressions.Expression` binds them
#: only when the source calls one.
FUNCTION_NAMES = frozenset(
    {
        "add_working",
        "working_time_between",
        "working_days_between",
        "is_working_day",
        "add_months",
    }
)

_WALL = calendar_24x7()


@lru_cache(maxsize=1)
def builtin_calendars() -> Mapping[str, BusinessCalendar]:
    """The calendars that exist without a database (``cn-workdays`` without stored
    corrections): what a pure evaluation uses when its caller hands it none."""
    return MappingProxyType({_WALL.name: _WALL, "cn-workdays": cn_workdays()})


class _Calendars:
    """Looks calendars up by name for the functions; remembers the first domain error so the
    expression can report it as it was raised (the CEL runtime flattens exceptions raised by
    Python functions into a RuntimeError's text)."""

    def __init__(self, calendars: Mapping[str, BusinessCalendar]) -> None:
        self.calendars = calendars
        self.error: SvcflowError | None = None

    def get(self, name: Any) -> BusinessCalendar:
        if name == WALL_CLOCK:
            return _WALL
        if not isinstance(name, str):
            raise CalendarError(
                f"A calendar is named by a string, got {written(name)}.",
                hint="Write the name in quotes ('cn-workdays') or read a calendar parameter "
                "(params.delivery_calendar).",
            )
        try:
            return self.calendars[name]
        except KeyError:
            raise CalendarError(
                f"Calendar {name!r} does not exist.",
                hint="Create it (svcflow calendars set) or use a built-in one: 24x7, cn-workdays.",
                calendar=name,
            ) from None

    def guarded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            try:
                return function(*args)
            except SvcflowError as exc:
                if self.error is None:
                    self.error = exc
                raise
            except (TypeError, ValueError, OverflowError) as exc:
                error = CalendarError(
                    f"{function.__name__}() cannot use these arguments: {exc}.",
                    hint="docs/definitions.md (Business time in expressions) lists each "
                    "function's arguments.",
                )
                if self.error is None:
                    self.error = error
                raise error from exc

        call.__name__ = function.__name__
        return call


def _instant(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise CalendarError(
            f"{what} must be a timestamp, got {written(value)}.",
            hint="Pass now, or timestamp(data.some_time) for a time kept in the case data.",
        )
    return value


def _amount(value: Any) -> Duration | timedelta:
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise CalendarError(
                f"The amount of business time must be positive, got {value}.",
                hint="Use a positive duration, e.g. duration('4h').",
            )
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise CalendarError(
        f"The amount of business time must be a duration text or a CEL duration, got "
        f"{written(value)}.",
        hint="Write '5 working days', '3d', '4h', or duration('90m').",
    )


def bind(
    calendars: Mapping[str, BusinessCalendar],
) -> tuple[dict[str, Callable[..., Any]], _Calendars]:
    """The functions, bound to ``calendars``, and the holder of the first error they raise."""
    found = _Calendars(calendars)

    def add_working(ts: Any, amount: Any, calendar: Any) -> datetime:
        start = _instant(ts, "add_working's first argument")
        duration = _amount(amount)
        chosen = found.get(calendar)
        if isinstance(duration, Duration) and duration.months:
            raise CalendarError(
                f"add_working() counts business time; {duration.text!r} is calendar months.",
                hint="Use add_months(ts, n) for calendar months.",
                calendar=chosen.name,
            )
        if chosen.name == WALL_CLOCK:
            delta = duration.timedelta if isinstance(duration, Duration) else duration
            return start + delta
        if isinstance(duration, Duration) and duration.whole_days:
            return chosen.add_working_days(start, duration.days).at
        delta = duration.timedelta if isinstance(duration, Duration) else duration
        return chosen.add_working_time(start, delta).at

    def working_time_between(a: Any, b: Any, calendar: Any) -> timedelta:
        first = _instant(a, "working_time_between's first argument")
        second = _instant(b, "working_time_between's second argument")
        return found.get(calendar).working_time_between(first, second)

    def working_days_between(a: Any, b: Any, calendar: Any) -> int:
        first = _instant(a, "working_days_between's first argument")
        second = _instant(b, "working_days_between's second argument")
        span = found.get(calendar).working_days_between(first, second)
        # Whole working days elapsed, toward zero: b before a gives the negative count.
        whole = abs(span) // timedelta(days=1)
        return whole if span >= timedelta(0) else -whole

    def is_working_day(ts: Any, calendar: Any) -> bool:
        instant = _instant(ts, "is_working_day's first argument")
        chosen = found.get(calendar)
        return chosen.is_working_day(chosen.local_date(instant))

    def months_later(ts: Any, months: Any, *calendar: Any) -> datetime:
        instant = _instant(ts, "add_months's first argument")
        if len(calendar) > 1:
            raise CalendarError(
                f"add_months() takes a timestamp, a number of months and optionally a "
                f"calendar; it was given {2 + len(calendar)} arguments.",
                hint="e.g. add_months(now, 12) or add_months(now, 12, 'cn-workdays').",
            )
        zone = DEFAULT_TIMEZONE
        if calendar and calendar[0] != WALL_CLOCK:
            zone = found.get(calendar[0]).timezone
        return add_months(instant, months, zone)

    months_later.__name__ = "add_months"
    functions: dict[str, Callable[..., Any]] = {
        "add_working": add_working,
        "working_time_between": working_time_between,
        "working_days_between": working_days_between,
        "is_working_day": is_working_day,
        "add_months": months_later,
    }
    return {name: found.guarded(f) for name, f in functions.items()}, found


# --- what the validator reads of a call ---------------------------------------------------------

#: Each function's arity (the fewest and most arguments) and which argument is the calendar.
SIGNATURES: dict[str, tuple[int, int, int]] = {
    "add_working": (3, 3, 2),
    "working_time_between": (3, 3, 2),
    "working_days_between": (3, 3, 2),
    "is_working_day": (2, 2, 1),
    "add_months": (2, 3, 2),
}
USAGE = {
    "add_working": "add_working(ts, amount, calendar)",
    "working_time_between": "working_time_between(a, b, calendar)",
    "working_days_between": "working_days_between(a, b, calendar)",
    "is_working_day": "is_working_day(ts, calendar)",
    "add_months": "add_months(ts, n) or add_months(ts, n, calendar)",
}
_QUOTES = "'\""


@dataclass(frozen=True)
class Call:
    """A call of a business-time function as written: its name and argument texts."""

    name: str
    arguments: tuple[str, ...]

    @property
    def calendar(self) -> str | None:
        """The calendar argument's text, if the call has one."""
        index = SIGNATURES[self.name][2]
        return self.arguments[index] if index < len(self.arguments) else None

    @property
    def amount(self) -> str | None:
        """``add_working``'s amount argument's text."""
        return self.arguments[1] if self.name == "add_working" and len(self.arguments) > 1 else None


def calls_in(source: str) -> list[Call]:
    """The business-time calls in ``source`` (a CEL expression that compiles), with their
    arguments split at the top-level commas: enough for the validator to check a calendar or
    an amount written literally, which CEL itself sees only at run time."""
    found: list[Call] = []
    for match in _CALL.finditer(source):
        if _inside_string(source, match.start()):
            continue
        arguments = _arguments(source, match.end())
        if arguments is not None:
            found.append(Call(match.group(1), arguments))
    return found


def literal_text(argument: str) -> str | None:
    """The text of a plain quoted CEL string literal (``'cn-workdays'``), else None."""
    text = argument.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0]:
        inner = text[1:-1]
        if text[0] not in inner and "\\" not in inner:
            return inner
    return None


_CALL = re.compile(r"(?<![\w.])(" + "|".join(sorted(SIGNATURES)) + r")\s*\(")


def _inside_string(source: str, index: int) -> bool:
    quote: str | None = None
    escaped = False
    for char in source[:index]:
        if escaped:
            escaped = False
        elif char == "\\" and quote:
            escaped = True
        elif quote and char == quote:
            quote = None
        elif not quote and char in _QUOTES:
            quote = char
    return quote is not None


def _arguments(source: str, start: int) -> tuple[str, ...] | None:
    """The arguments of the call whose ``(`` ends just before ``start``."""
    depth, quote, escaped = 0, None, False
    parts: list[str] = []
    current = start
    for index in range(start, len(source)):
        char = source[index]
        if escaped:
            escaped = False
        elif quote:
            if char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in _QUOTES:
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                parts.append(source[current:index])
                return tuple(p.strip() for p in parts) if any(p.strip() for p in parts) else ()
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(source[current:index])
            current = index + 1
    return None
