"""Instants as people read them: in the deployment's time zone, with seconds and the offset.

Inside svcflow every instant is an aware UTC datetime, and what machines read (the HTTP API,
``--json`` output) carries ISO 8601 UTC. People read the deployment's zone instead, the
setting ``SVCFLOW_TIMEZONE`` (Asia/Shanghai, Beijing time, by default), since that is the
time on the hospital's wall, in the bids and in the scenarios:

- with seconds, because promises end on them: a call at 09:59:59 is inside an hour that
  ends at 10:00:00, and a time cut to 09:59 cannot tell;
- with the UTC offset, so the text says which zone it is in and reads back as the same
  instant: ``2026-02-25 09:59:59+08:00`` is ISO 8601, and YAML and ``fromisoformat`` read it,
  so a time copied from a report can be pasted into a scenario or a payload.

What a person types is never read in this zone: an instant without an offset is refused
where it is typed (docs/simulation.md), so a file means the same instant on every machine.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import SettingInvalid

DEFAULT_TIMEZONE = "Asia/Shanghai"
SETTING = "SVCFLOW_TIMEZONE"


def display_zone(name: str | None) -> ZoneInfo:
    """The zone ``SVCFLOW_TIMEZONE`` names (the default when unset or empty)."""
    name = (name or "").strip() or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingInvalid(
            f"{name} is not a time zone svcflow knows.",
            hint=f"Set {SETTING} to an IANA zone name, e.g. Asia/Shanghai (the default) or UTC.",
            setting=SETTING,
        ) from exc


def local(instant: datetime, zone: tzinfo) -> str:
    """``2026-02-25 09:59:59+08:00``: the instant in ``zone``, to the second, with its
    offset. A naive instant is taken as UTC (what svcflow stores; SQLite can hand it back
    without its zone)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone).isoformat(sep=" ", timespec="seconds")
