"""Durations as process owners write them in definitions: ``90s``, ``15m``, ``2h``, ``1h30m``,
``3d``, ``2w``.

A duration made only of days (or weeks) means *working days* when it is measured on a business
calendar; one with hours, minutes or seconds means *working time* inside the calendar's working
windows. Mixing the two on a business calendar is ambiguous, so :attr:`Duration.mixed` lets the
validator refuse it (see docs/calendars.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from engine.errors import DurationInvalid, written

MAX_DAYS = 100 * 365
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class Duration:
    """A parsed duration. ``days`` counts whole days (weeks folded in); ``seconds`` the rest."""

    days: int
    seconds: int
    text: str

    @property
    def timedelta(self) -> timedelta:
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
    match = _PATTERN.match(text.strip())
    if not text.strip() or match is None:
        raise DurationInvalid(
            f"Duration {text!r} is not understood.",
            hint="Use digits followed by units in the order w, d, h, m, s, "
            "e.g. '45m', '1h30m', '3d'.",
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
