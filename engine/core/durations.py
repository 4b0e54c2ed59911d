"""Durations as process owners write them in definitions, in two spellings:

- compact: ``90s``, ``15m``, ``2h``, ``1h30m``, ``3d``, ``2w``. Measured on a business
  calendar, a duration made only of days (or weeks) means *working days*, one with hours,
  minutes or seconds *working time* inside the calendar's windows; on ``24x7`` both are wall
  time. Mixing days with hours on a business calendar is ambiguous (:attr:`Duration.mixed`).
- words, as the bids say it: ``5 working days``, ``1 working day``, ``3 working hours``,
  ``30 working minutes`` (business time, so they need a business calendar), and ``12 months``,
  ``1 year`` (calendar months, month-end aware: 31 Jan + 1 month is the last day of February).

Which durations may be measured on which calendar is one rule, :func:`calendar_problem`, used
by the validator for literals and parameter defaults and by ``set-param`` for overrides (see
docs/calendars.md).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import timedelta

from engine.errors import DurationInvalid, written

#: The calendar on which every instant is working time: durations on it are wall time.
WALL_CLOCK = "24x7"
MAX_DAYS = 100 * 365
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_MONTHS = 100 * 12
_PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# One amount and one unit in words; "working" is required for days, hours and minutes, so that
# the words never carry the compact spelling's calendar-dependent meaning.
_WORDS = re.compile(r"^(\d+)\s+(?:(working)\s+)?(day|hour|minute|month|year)s?$", re.IGNORECASE)
_WORKING_UNIT_SECONDS = {"hour": 3600, "minute": 60}
_WORDS_HINT = (
    "Write an amount and a unit: '5 working days', '1 working day', '3 working hours', "
    "'30 working minutes', '12 months', '1 year', or the compact form ('2h', '3d', '1h30m')."
)


@dataclass(frozen=True)
class Duration:
    """A parsed duration. ``days`` counts whole days (weeks folded in); ``seconds`` the rest;
    ``months`` calendar months (years folded in), never mixed with the other two. ``working``
    is true when the text says so in words ("5 working days"): it is business time and must
    be measured on a business calendar."""

    days: int
    seconds: int
    text: str
    months: int = 0
    working: bool = False

    @property
    def timedelta(self) -> timedelta:
        if self.months:
            raise DurationInvalid(
                f"Duration {self.text!r} is in calendar months, which have no fixed length.",
                hint="Months are allowed for timers (after), SLA targets and in CEL "
                "(add_months); elsewhere write days or hours.",
            )
        return timedelta(days=self.days, seconds=self.seconds)

    @property
    def whole_days(self) -> bool:
        return self.seconds == 0 and self.days > 0

    @property
    def mixed(self) -> bool:
        return self.days > 0 and self.seconds > 0


def parse_duration(text: object) -> Duration:
    """Parse a duration string such as ``1h30m``; raise :class:`DurationInvalid` if malformed."""
    if not isinstance(text, str):
        raise DurationInvalid(
            f"Duration must be a string like '2h' or '3d', got {written(text)}.",
            hint="Use digits followed by a unit: w, d, h, m, s (e.g. '1h30m').",
        )
    return _parse_text(text)


# A fire reads every SLA target of its definition, most of them literals or parameters parsed
# again each time (a repair ticket: about 7 per fire and 7 more for its response); a Duration is
# immutable, and a malformed text raises every time (exceptions are not cached).
@functools.lru_cache(maxsize=1024)
def _parse_text(text: str) -> Duration:
    words = _WORDS.match(text.strip())
    if words is not None:
        return _from_words(text.strip(), int(words.group(1)), words.group(2), words.group(3))
    match = _PATTERN.match(text.strip())
    if not text.strip() or match is None:
        raise DurationInvalid(
            f"Duration {text!r} is not understood.",
            hint="Use digits followed by units in the order w, d, h, m, s, "
            "e.g. '45m', '1h30m', '3d'; or words: '5 working days', '3 working hours', "
            "'12 months'.",
        )
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total_days = weeks * 7 + days
    rest = hours * 3600 + minutes * 60 + seconds
    if total_days + rest // 86400 > MAX_DAYS:
        raise DurationInvalid(
            f"Duration {text!r} is longer than {MAX_DAYS // 365} years.",
            hint="Deadlines in service contracts are hours to months; check the units.",
        )
    if total_days == 0 and rest == 0:
        raise DurationInvalid(
            f"Duration {text!r} is zero.", hint="A timer or SLA target needs a positive duration."
        )
    return Duration(days=total_days, seconds=rest, text=text.strip())


def _from_words(text: str, amount: int, working: str | None, unit: str) -> Duration:
    unit = unit.lower()
    if unit in ("month", "year"):
        if working:
            raise DurationInvalid(
                f"Duration {text!r} is not understood: months and years are calendar months, "
                "never working time.",
                hint=_WORDS_HINT,
            )
        months = amount * 12 if unit == "year" else amount
        if months > MAX_MONTHS:
            raise DurationInvalid(
                f"Duration {text!r} is longer than {MAX_MONTHS // 12} years.",
                hint="Deadlines in service contracts are hours to months; check the units.",
            )
        if months == 0:
            raise DurationInvalid(
                f"Duration {text!r} is zero.",
                hint="A timer or SLA target needs a positive duration.",
            )
        return Duration(days=0, seconds=0, text=text, months=months)
    if not working:
        raise DurationInvalid(
            f"Duration {text!r} does not say which days count.",
            hint=f"Say '{amount} working {unit}s' for business time on a business calendar, or "
            f"write it compactly ('{amount}{unit[0]}'), which is wall time on 24x7. " + _WORDS_HINT,
        )
    if unit == "day":
        days, seconds = amount, 0
    else:
        days, seconds = 0, amount * _WORKING_UNIT_SECONDS[unit]
    if days + seconds // 86400 > MAX_DAYS:
        raise DurationInvalid(
            f"Duration {text!r} is longer than {MAX_DAYS // 365} years.",
            hint="Deadlines in service contracts are hours to months; check the units.",
        )
    if days == 0 and seconds == 0:
        raise DurationInvalid(
            f"Duration {text!r} is zero.", hint="A timer or SLA target needs a positive duration."
        )
    return Duration(days=days, seconds=seconds, text=text, working=True)


@dataclass(frozen=True)
class CalendarMismatch:
    """Why a duration cannot be measured on a calendar: a problem code, message and hint."""

    code: str
    message: str
    hint: str


def calendar_problem(duration: Duration, calendar: str | None) -> CalendarMismatch | None:
    """Whether ``duration`` can be measured on the calendar named ``calendar`` (None or
    ``24x7``: the wall clock), and if not, why. The one rule for literals, parameter defaults
    and overrides, and calendar parameters:

    - days mixed with hours on a business calendar are ambiguous (whole working days, or
      working time?);
    - working time in words ("5 working days") needs a business calendar: on the wall clock
      "working" would silently mean nothing;
    - calendar months are counted on the wall clock; on a business calendar it is unclear
      whether the end moves to a working day.
    """
    wall = calendar in (None, WALL_CLOCK)
    if duration.mixed and not wall:
        return CalendarMismatch(
            "mixed-business-duration",
            f"Duration {duration.text!r} mixes days with hours on business calendar {calendar!r}.",
            "Write whole working days ('3d', '3 working days') or working time ('20h', "
            "'20 working hours'), not both.",
        )
    if duration.working and wall:
        return CalendarMismatch(
            "working-time-on-wall-clock",
            f"Duration {duration.text!r} is business time, but it is measured on the wall "
            f"clock ({calendar or WALL_CLOCK}).",
            "Set the element's calendar to a business calendar (e.g. calendar: cn-workdays), "
            "or write wall time compactly ('5d', '3h').",
        )
    if duration.months and not wall:
        return CalendarMismatch(
            "months-on-business-calendar",
            f"Duration {duration.text!r} is in calendar months, which are counted on the wall "
            f"clock, not on business calendar {calendar!r}.",
            "Use calendar: 24x7 (or leave calendar out) for a period in months, or write "
            "working days ('250 working days').",
        )
    return None


def format_timedelta(value: timedelta) -> str:
    """Render a timedelta in the same compact notation (``1d2h3m``), ``0s`` for zero."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")
